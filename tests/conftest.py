"""Test-session set-up shared by every test folder.

The library's differential suites (tests/chainrule, tests/func) run once per device: every test
there is parametrised with ``default_device`` in ("cpu", "cuda"), which makes chainrule's factories
put tensors on that device; the CUDA cases skip, saying why, where there is no GPU with CuPy.
``CHAINRULE_CPU_NAMESPACE=array_api_strict`` (read by chainrule itself) makes the CPU hold
array_api_strict arrays.
"""
from pathlib import Path

import pytest

import chainrule

DEVICE_PARAMETRISED = ("chainrule", "func")
TESTS = Path(__file__).parent


def pytest_generate_tests(metafunc):
    folder = Path(metafunc.definition.fspath).relative_to(TESTS).parts[0]
    if folder in DEVICE_PARAMETRISED:
        metafunc.parametrize("default_device", ["cpu", "cuda"], indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def default_device(request):
    device = getattr(request, "param", "cpu")  # folders not parametrised stay on the CPU
    if device == "cuda" and not chainrule.cuda.is_available():
        pytest.skip(f"no CUDA here: {chainrule.cuda._probe()}")
    chainrule.set_default_device(device)
    yield device
    chainrule.set_default_device(None)


def pytest_report_header(config):
    from chainrule import backends
    return (f"chainrule: CPU arrays from {backends.cpu().xp.__name__}; "
            f"CUDA available: {chainrule.cuda.is_available()}")


def pytest_terminal_summary(terminalreporter):
    """One line per reason for skipping, with a count: skips are said, never silent."""
    reasons = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"skipped {count}: {reason}")

"""Test-session set-up shared by every test folder.

``CHAINRULE_CPU_NAMESPACE=array_api_strict`` (read by chainrule itself) makes the CPU hold
array_api_strict arrays; ``CHAINRULE_TEST_DEVICE=cuda`` runs the suite with CUDA as the
default device (on a machine with a GPU and CuPy; see benchmarks/gpu.sh).
"""
import os

import chainrule

TEST_DEVICE = os.environ.get("CHAINRULE_TEST_DEVICE", "cpu")


def pytest_configure(config):
    if TEST_DEVICE != "cpu":
        chainrule.set_default_device(TEST_DEVICE)


def pytest_report_header(config):
    from chainrule import backends
    return (f"chainrule: CPU arrays from {backends.cpu().xp.__name__}, default device "
            f"{chainrule.get_default_device()}, CUDA available: {chainrule.cuda.is_available()}")

"""The student's JupyterLab: starts on 127.0.0.1 in course/, nbgrader's Validate works, the
create-assignment panel (and the other instructor and exchange panels) are disabled and locked.

The command under test is the one documented in README.md ("For students", and `make start`):

    JUPYTER_CONFIG_PATH="$PWD/course/.jupyter" .venv/bin/jupyter lab \
        --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=course
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STUDENT_CONFIG = ROOT / "course" / ".jupyter"
# The instructor's panels, and the exchange's assignment list (the course hands work in through the
# LMS, so the panel could only say "exchange directory does not exist"), with the menu that opens them.
HIDDEN_PANELS = ["@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader",
                 "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:menu"]

pytestmark = pytest.mark.slow


def test_student_page_config_disables_and_locks_instructor_panels():
    config = json.loads((STUDENT_CONFIG / "labconfig" / "page_config.json").read_text())
    for plugin in HIDDEN_PANELS:
        assert config["disabledExtensions"][plugin] is True
        assert config["lockedExtensions"][plugin] is True
    assert "@jupyter/nbgrader:validate-assignment" not in config["disabledExtensions"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, data: bytes | None = None, headers: dict | None = None) -> str:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return resp.read().decode()


@pytest.fixture(scope="module")
def lab():
    """JupyterLab as the course starts it, with a throwaway HOME; stopped afterwards."""
    port, token = _free_port(), "course-test-token"
    home = tempfile.mkdtemp(prefix="course-home-")
    env = dict(os.environ, HOME=home, JUPYTER_CONFIG_PATH=str(STUDENT_CONFIG),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env.pop(var, None)
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.root_dir=course", f"--ServerApp.port={port}", "--no-browser",
           f"--IdentityProvider.token={token}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(Path(home) / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                _get(f"{base}/api/status?token={token}")
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(Path(home, "lab.log").read_text())
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not start:\n" + Path(home, "lab.log").read_text())
        yield base, token, port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_lab_listens_on_localhost_only(lab):
    _, _, port = lab
    listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
    lines = [line for line in listening.splitlines() if f":{port} " in line]
    assert lines and all("127.0.0.1:" in line for line in lines), lines


def test_lab_page_has_instructor_panels_disabled(lab):
    base, token, _ = lab
    html = _get(f"{base}/lab?token={token}")
    data = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', html, re.S).group(1))
    for plugin in HIDDEN_PANELS:
        assert plugin in data["disabledExtensions"]
    names = {ext["name"] for ext in data.get("federated_extensions", [])}
    assert "@jupyter/nbgrader" in names  # the nbgrader extension itself is there (Validate button)


def test_validate_button_backend_runs_on_a_released_notebook(lab):
    base, token, _ = lab
    path = "01_chain_rule/01_chain_rule.ipynb"
    body = urllib.parse.urlencode({"path": path}).encode()
    xsrf = {"Authorization": f"token {token}"}
    result = json.loads(_get(f"{base}/assignments/validate", data=body, headers=xsrf))
    # the untouched release fails its tests: Validate reports the failures, not a crash
    assert result["success"] is True, result
    assert "failed" in json.dumps(result["value"]), result


def test_validate_speaks_the_chinese_editions_language(lab):
    """Validate on the Chinese edition: each failed test is its Chinese message, without the checks'
    traceback, its last line (the diagnosis) included."""
    base, token, _ = lab
    body = urllib.parse.urlencode({"path": "01_chain_rule/01_chain_rule.zh-CN.ipynb"}).encode()
    result = json.loads(_get(f"{base}/assignments/validate", data=body,
                             headers={"Authorization": f"token {token}"}))
    assert result["success"] is True, result
    failed = result["value"]["failed"]
    assert len(failed) == 3
    for cell in failed:
        error = cell["raw_error"]
        assert "检查未通过" in error and "诊断：尚未作答" in error, error
        assert "Traceback" not in error and "checks/_core.py" not in error, error


def test_jupyterlab_offers_its_interface_in_chinese(lab):
    """README: Settings > Language > 中文 (简体, 中国) comes from jupyterlab-language-pack-zh-CN."""
    base, token, _ = lab
    listing = json.loads(_get(f"{base}/lab/api/translations/?token={token}"))
    assert "zh_CN" in listing["data"], sorted(listing["data"])
    menus = json.loads(_get(f"{base}/lab/api/translations/zh_CN?token={token}"))
    assert menus["data"], "the zh_CN language pack has no strings"

"""A student in JupyterLab, driven through headless Debian Chromium by Playwright.

1. Opens a lesson, runs all its cells, moves a widget's slider and checks that
   the shown gradient and the plot change.
2. Opens an assignment, fills in a solution, presses nbgrader's Validate button
   and sees "Success! Your notebook passes all the tests."
3. Opens lesson 1's Simplified Chinese edition: its widget speaks Chinese and follows
   a slider; Validate shows a failed check as its Chinese message, then passes.

The lesson and the assignment come from ``course/`` when the release there has
them (a notebook showing a widget whose slider moves a gradient and a plot,
lesson 3's first; an nbgrader notebook whose solution lies in the matching
``solutions/`` notebook); until then, from small notebooks written by this
test. When a course lesson shows lesson 1's graph widget, a third test moves a
leaf there and checks that the drawn graphs follow. Screenshots go to ``artifacts/browser/``
(``$ARTIFACTS_DIR/browser`` when set).

Chromium: /usr/bin/chromium (Debian's package). When it is missing and the
test runs as root with CI set (or CHAINRULE_INSTALL_BROWSER=1), the fixture
installs it with apt-get; otherwise the tests are skipped. Never
``playwright install``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", REPO / "artifacts")) / "browser"
SUCCESS = "Success! Your notebook passes all the tests."


# ----------------------------------------------------------------------------- fixtures


def _may_install() -> bool:
    opt_in = os.environ.get("CHAINRULE_INSTALL_BROWSER", "").lower() in ("1", "true", "yes")
    ci = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    return hasattr(os, "geteuid") and os.geteuid() == 0 and (ci or opt_in) and shutil.which("apt-get")


@pytest.fixture(scope="session")
def chromium() -> str:
    if not CHROMIUM.exists():
        if not _may_install():
            pytest.skip(f"{CHROMIUM} is missing; install Debian's chromium (see tests/browser/NEEDS.md) "
                        "or run as root with CI=1 or CHAINRULE_INSTALL_BROWSER=1")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"],
                       check=True, env=env, capture_output=True)
    assert CHROMIUM.exists()
    return str(CHROMIUM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _code(src, **nbgrader):
    import nbformat

    cell = nbformat.v4.new_code_cell(src)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, "task": False, **nbgrader}
    return cell


def _notebook(cells):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _builtin_lesson():
    import nbformat

    return _notebook([
        nbformat.v4.new_markdown_cell("# Lesson 3 (test copy): one layer used twice\nMove `w`."),
        _code("from coursework.widgets import lesson3_reuse, lesson1_graph\npanel = lesson3_reuse()\npanel"),
        _code("lesson1_graph()"),
    ])


BUILTIN_SOLUTION = "def dL_dw(w, x, y):\n    return 4 * (w * w * x - y) * w * x\n"


def _builtin_assignment():
    import nbformat

    return _notebook([
        nbformat.v4.new_markdown_cell("Write `dL_dw(w, x, y)` for `L = (w²x − y)²`."),
        _code("def dL_dw(w, x, y):\n    # YOUR CODE HERE\n    raise NotImplementedError()",
              grade=False, grade_id="dL_dw", locked=False, solution=True),
        _code("assert abs(dL_dw(0.9472, 10.0, 5.0) - 150.4865) < 1e-3",
              grade=True, grade_id="test_dL_dw", locked=True, points=1, solution=False),
    ])


# widgets whose slider changes both a shown gradient (.cw-grad) and a plot (an <img>), best first
# (lesson 1's panel draws graphs instead of a plot, and its gradients do not depend on the leaves)
SLIDER_WIDGETS = ("lesson3_reuse", "lesson2_seeds", "lesson4_per_sample")


def _course_notebooks():
    for nb in sorted((REPO / "course").rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in nb.parts:
            yield nb, nb.read_text(encoding="utf-8")


def _course_lesson(widgets=SLIDER_WIDGETS) -> tuple[Path, str] | None:
    """(notebook, widget) of the student release that shows one of `widgets`, the first widget first."""
    for widget in widgets:
        for nb, text in _course_notebooks():
            if "coursework.widgets" in text and re.search(rf"\b{widget}\(", text):
                return nb, widget
    return None


def _solution_text(src: str) -> str | None:
    m = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", src, re.S)
    return m.group(1) if m else None


def _fills(nb_path: Path, src_path: Path):
    """[(cell index, source to type), ...]: every solution cell of the release notebook, filled with
    the solution of the cell with the same grade_id in the source notebook (None if one is missing)."""
    import nbformat

    release, source = nbformat.read(nb_path, 4), nbformat.read(src_path, 4)
    sol = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in source.cells
           if c.metadata.get("nbgrader", {}).get("solution")}
    fills = []
    for i, cell in enumerate(release.cells):
        meta = cell.metadata.get("nbgrader", {})
        if not (cell.cell_type == "code" and meta.get("solution")):
            continue
        full = sol.get(meta.get("grade_id"))
        if full is None:
            return None
        filled = re.sub(r"[ \t]*### BEGIN SOLUTION\n(.*?)[ \t]*### END SOLUTION\n?", r"\1", full, flags=re.S)
        fills.append((i, filled))
    return fills


def _course_assignment():
    """(release notebook, [(cell index, source to type), ...]) from course/ and solutions/, or None.

    Validate runs the whole notebook, so every solution cell is filled, with the
    solution of the cell with the same grade_id in the matching solutions/ notebook.
    """
    for nb_path in sorted((REPO / "course").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb_path.parts:
            continue
        rel = nb_path.relative_to(REPO / "course")
        candidates = [REPO / "solutions" / rel, *sorted((REPO / "solutions").rglob(nb_path.name))]
        src_path = next((p for p in candidates if p.exists()), None)
        if src_path is None:
            continue
        fills = _fills(nb_path, src_path)
        if fills:
            return nb_path, fills
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium):
    """JupyterLab on 127.0.0.1 with a temporary HOME; yields (base url, token, root dir)."""
    import nbformat

    tmp = tmp_path_factory.mktemp("lab")
    home, root = tmp / "home", tmp / "root"
    home.mkdir()
    root.mkdir()
    # the course release (if any) and our own small notebooks side by side
    if (REPO / "course").is_dir():
        shutil.copytree(REPO / "course", root / "course", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    nbformat.write(_builtin_lesson(), root / "widget_lesson.ipynb")
    nbformat.write(_builtin_assignment(), root / "assignment.ipynb")
    # no news/update toasts over the notebook
    settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    nb_settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    nb_settings.mkdir(parents=True)
    (nb_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"autoStartDefaultKernel": True, "windowingMode": "none"}))
    token = "chainrule-browser-test"
    port = _free_port()
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join([str(REPO / "lib"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("MPLBACKEND", None)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.open_browser=False", "--LabApp.news_url=", "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    break
        except Exception:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("JupyterLab did not start:\n" + (tmp / "jupyterlab.log").read_text()[-3000:])
        time.sleep(0.5)
    try:
        yield {"url": url, "token": token, "root": root, "home": home, "log": tmp / "jupyterlab.log"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / "jupyterlab.log", ARTIFACTS / "jupyterlab.log")


@pytest.fixture(scope="module")
def browser(lab, chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                              env={**os.environ, "HOME": str(lab["home"])})
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rep = getattr(request.node, "rep_call", None)  # set by tests/browser/conftest.py
    if rep is not None and rep.failed:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"))
    ctx.close()


# ----------------------------------------------------------------------------- helpers


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def idle(page, timeout):
    """Wait until the visible notebook's kernel is idle."""
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]:visible').first.wait_for(timeout=timeout)


def open_notebook(page, lab, rel: str):
    page.goto(f"{lab['url']}/lab/tree/{rel}?reset&token={lab['token']}")  # reset: no restored tabs
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="visible")
    # the kernel is started and idle
    idle(page, 120_000)
    # should a "Select Kernel" dialog still come up, take the preferred kernel, as a student would
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:
        dialog.wait_for(state="visible", timeout=3_000)
        dialog.locator(".jp-mod-accept").click()
    except Exception:
        pass


def wait_in_panel(page, panel, predicate: str, old, timeout=60_000):
    """Wait until `predicate(panel element, old)` (a JS arrow function) is true."""
    page.wait_for_function(f"([p, old]) => ({predicate})(p, old)", arg=[panel.element_handle(), old],
                           timeout=timeout)


def run_all(page):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


# ----------------------------------------------------------------------------- tests


def test_a_course_lesson_is_used_once_it_shows_widgets():
    """The fallback notebook is only for a release without widgets: a course lesson with them is found."""
    if any("coursework.widgets" in text for _, text in _course_notebooks()):
        assert _course_lesson() is not None, "course/ uses coursework.widgets but no lesson has a slider widget"


def test_lesson_slider_changes_gradient_and_plot(page, lab):
    found = _course_lesson()
    course_nb, widget = found if found else (None, "lesson3_reuse")
    rel = str(Path("course") / course_nb.relative_to(REPO / "course")) if course_nb else "widget_lesson.ipynb"
    open_notebook(page, lab, rel)
    run_all(page)
    # a panel with a slider, a shown gradient and a plot
    panel = page.locator(".coursework-panel").filter(has=page.locator(".cw-grad")).filter(
        has=page.locator(".widget-slider")).filter(has=page.locator("img")).first
    panel.wait_for(state="visible", timeout=180_000)
    idle(page, 180_000)
    panel.scroll_into_view_if_needed()
    grad = panel.locator(".cw-grad").first
    img = panel.locator("img").first
    before_grad, before_src = grad.inner_text(), img.get_attribute("src")
    before_png = img.screenshot()
    shot(page, "lesson-before-slider")

    # as a student: click on the slider's track, a good way left of the handle
    track = panel.locator(".widget-slider .noUi-base").first
    box = track.bounding_box()
    track.click(position={"x": box["width"] * 0.2, "y": box["height"] / 2})
    # the readout's HTML is replaced on update: query inside the (stable) panel at every poll, never
    # through a handle on the old span, which would keep its old text once detached
    wait_in_panel(page, panel, "(p, old) => { const g = p.querySelector('.cw-grad'); return g && g.innerText !== old; }",
                  before_grad)
    wait_in_panel(page, panel, "(p, old) => { const i = p.querySelector('img'); "
                  "return i && i.getAttribute('src') !== old && i.complete; }", before_src)
    after_grad = grad.inner_text()
    shot(page, "lesson-after-slider")
    assert after_grad != before_grad
    assert img.screenshot() != before_png  # the plot on screen changed
    if widget == "lesson3_reuse":
        # lesson 3 at w = 0.9472: 150.49; the slider now sits near w = -0.78, a negative slope
        assert float(before_grad) == pytest.approx(150.49, abs=0.02)
        assert float(after_grad) < 0
    if widget == "lesson3_reuse" or not course_nb:
        # a graph drawing is on the page too (lesson 3's two uses; the test copy's lesson-1 panel)
        graph = page.locator(".chainrule-side-by-side svg.chainrule-graph").first
        graph.scroll_into_view_if_needed()
        assert graph.locator("g.node").count() >= 8
        shot(page, "lesson-graph")


def test_lesson1_graph_follows_the_leaves(page, lab):
    found = _course_lesson(widgets=("lesson1_graph",))
    if not found:
        pytest.skip("no course lesson shows lesson1_graph() yet")
    rel = str(Path("course") / found[0].relative_to(REPO / "course"))
    open_notebook(page, lab, rel)
    run_all(page)
    # the static drawing after backward(): chainrule and PyTorch side by side
    static = page.locator(".jp-OutputArea-output > .chainrule-side-by-side, "
                          ".jp-RenderedHTMLCommon > .chainrule-side-by-side").first
    static.wait_for(state="visible", timeout=180_000)
    assert static.locator("svg.chainrule-graph").count() == 2
    # the live panel: leaf sliders, values, gradients and both graphs
    panel = page.locator(".coursework-panel").filter(has=page.locator(".chainrule-side-by-side")).first
    panel.wait_for(state="visible", timeout=180_000)
    idle(page, 180_000)
    panel.scroll_into_view_if_needed()
    graphs = panel.locator(".chainrule-side-by-side svg.chainrule-graph")
    assert graphs.count() == 2  # chainrule and PyTorch
    value, grad = panel.locator(".cw-a").first, panel.locator(".cw-grad-x").first
    before_value, before_grad = value.inner_text(), grad.inner_text()
    before_svg = graphs.first.inner_html()
    shot(page, "lesson1-graph-before-slider")
    track = panel.locator(".widget-slider .noUi-base").first  # x[0]
    box = track.bounding_box()
    track.click(position={"x": box["width"] * 0.2, "y": box["height"] / 2})
    wait_in_panel(page, panel, "(p, old) => { const a = p.querySelector('.cw-a'); return a && a.innerText !== old; }",
                  before_value)
    shot(page, "lesson1-graph-after-slider")
    assert value.inner_text() != before_value  # a = x + 2y follows x
    assert grad.inner_text() == before_grad == "[1, 1]"  # the graph is linear: x.grad does not move
    assert panel.locator(".chainrule-side-by-side svg.chainrule-graph").first.inner_html() != before_svg


def fill_solutions(page, fills):
    for cell_index, solution in fills:
        cell = page.locator(".jp-Notebook:visible .jp-Cell").nth(cell_index)
        cell.scroll_into_view_if_needed()
        cell.locator(".cm-content").click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(solution)


def validate(page, name) -> str:
    """Press nbgrader's Validate; the text of the dialog that reports the result (then closed)."""
    page.locator(".validate-button").first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(state="visible", timeout=240_000)
    page.wait_for_selector(".jp-Dialog .validation-success, .jp-Dialog .validation-failed, "
                           ".jp-Dialog:has-text('Validation failed'), .jp-Dialog:has-text('Success!')",
                           timeout=240_000)
    shot(page, name)
    text = dialog.inner_text()
    dialog.locator(".jp-mod-accept, .jp-Dialog-button").first.click()
    dialog.wait_for(state="hidden", timeout=30_000)
    return text


def test_assignment_validate_passes(page, lab):
    found = _course_assignment()
    if found:
        nb_path, fills = found
        rel = str(Path("course") / nb_path.relative_to(REPO / "course"))
    else:
        rel, fills = "assignment.ipynb", [(1, BUILTIN_SOLUTION)]
    open_notebook(page, lab, rel)
    fill_solutions(page, fills)
    shot(page, "assignment-filled")
    text = validate(page, "assignment-validated")
    assert SUCCESS in text, text
    # the solution was saved into the file the server validated
    import nbformat

    saved = nbformat.read(lab["root"] / rel, 4)
    for cell_index, solution in fills:
        assert saved.cells[cell_index].source.strip() == solution.strip()


def test_chinese_lesson_slider_and_validate(page, lab):
    """A student of the Chinese edition: lesson 1's widget speaks Chinese and follows its slider;
    Validate shows a failed check as its Chinese message alone, then passes once the exercises are done."""
    lesson = "01_chain_rule"
    nb_path = REPO / "course" / lesson / f"{lesson}.zh-CN.ipynb"
    fills = _fills(nb_path, REPO / "solutions" / lesson / f"{lesson}.ipynb")
    assert fills, "the Chinese edition has the English edition's solution cells"
    rel = f"course/{lesson}/{lesson}.zh-CN.ipynb"
    open_notebook(page, lab, rel)
    assert page.locator(".jp-RenderedMarkdown h1", has_text="第 1 课").count() == 1
    run_all(page)
    panel = page.locator(".coursework-panel").filter(has=page.locator(".chainrule-side-by-side")).first
    panel.wait_for(state="visible", timeout=180_000)
    idle(page, 180_000)
    panel.scroll_into_view_if_needed()
    assert "第 1 课" in panel.inner_text() and "计算图是线性的" in panel.inner_text()
    assert "在 backward 之前调用 a.retain_grad()" in panel.inner_text()
    value = panel.locator(".cw-a").first
    before = value.inner_text()
    track = panel.locator(".widget-slider .noUi-base").first
    box = track.bounding_box()
    track.click(position={"x": box["width"] * 0.2, "y": box["height"] / 2})
    wait_in_panel(page, panel, "(p, old) => { const a = p.querySelector('.cw-a'); return a && a.innerText !== old; }",
                  before)
    shot(page, "zh-CN-lesson1-after-slider")
    assert value.inner_text() != before

    failed = validate(page, "zh-CN-validate-unanswered")
    assert "检查未通过" in failed and "尚未作答" in failed, failed
    assert "Traceback" not in failed and "_core.py" not in failed, failed

    fill_solutions(page, fills)
    text = validate(page, "zh-CN-validate-answered")
    assert SUCCESS in text, text

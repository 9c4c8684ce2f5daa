"""The course speaks English and Simplified Chinese: the message catalogue, the diagnoses, and
what a student sees of a failed check in a real kernel."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from babel.messages.pofile import read_po
from nbclient import NotebookClient

from coursework import checks, i18n
from coursework.checks import _core

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "lib" / "coursework" / "locale"
PLACEHOLDER = re.compile(r"\{[a-z_]*\}")


def _catalog(path: Path):
    with open(path, "rb") as fh:
        return read_po(fh)


def test_template_is_what_the_code_says(tmp_path):
    """locale/coursework.pot holds exactly the messages the code marks (re-extract after editing one)."""
    out = tmp_path / "fresh.pot"
    subprocess.run([str(Path(sys.executable).parent / "pybabel"), "extract", "--no-location", "--omit-header",
                    "-k", "_", "-k", "N_", "--sort-output", "--ignore-dirs=locale", "-o", str(out),
                    "lib/coursework", "autograder/grading/feedback.py", "autograder/grading/notes.py",
                    "autograder/grading/preflight.py"],
                   cwd=ROOT, check=True, capture_output=True)
    fresh = {m.id for m in _catalog(out) if m.id}
    committed = {m.id for m in _catalog(LOCALE / "coursework.pot") if m.id}
    assert fresh == committed, {"not in the .pot": sorted(fresh - committed)[:5],
                                "no longer in the code": sorted(committed - fresh)[:5]}
    assert len(fresh) > 150


def test_chinese_catalogue_translates_every_message_with_the_same_placeholders():
    template = {m.id for m in _catalog(LOCALE / "coursework.pot") if m.id}
    zh = {m.id: m for m in _catalog(LOCALE / "zh_CN" / "LC_MESSAGES" / "coursework.po") if m.id}
    assert template <= set(zh), sorted(template - set(zh))[:5]
    for msgid in template:
        m = zh[msgid]
        assert m.string and not m.fuzzy, msgid
        assert sorted(PLACEHOLDER.findall(m.string)) == sorted(PLACEHOLDER.findall(msgid)), msgid
        assert re.search(r"[\u4e00-\u9fff]", m.string), f"not translated: {msgid!r}"


def test_glossary_renderings_the_course_does_not_use():
    """GLOSSARY.zh-CN.md's third column: none of those words in any Chinese text of the course."""
    rows = [line.split("|") for line in (ROOT / "GLOSSARY.zh-CN.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| English")]
    avoid = [w.strip() for r in rows for w in r[3].split(",") if w.strip() and not w.strip().startswith("(")]
    avoid = [w.split(" (")[0] for w in avoid]
    assert "叶节点" in avoid and "雅克比矩阵" in avoid
    texts = [LOCALE / "zh_CN" / "LC_MESSAGES" / "coursework.po", ROOT / "README.zh-CN.md",
             *sorted((ROOT / "solutions").glob("*/*.zh-CN.md"))]
    for path in texts:
        text = path.read_text()
        found = [w for w in avoid if w in text]
        assert not found, f"{path.relative_to(ROOT)} uses {found}: see GLOSSARY.zh-CN.md"


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_every_diagnosis_has_a_readable_label_and_is_recognised(lang, monkeypatch):
    monkeypatch.setenv(i18n.ENV, lang)
    assert "retain_grad_forgotten" in checks.DIAGNOSES  # lesson 1's forgotten retain_grad() is counted
    for key, label in checks.DIAGNOSIS_LABELS.items():
        assert label != key and " " in label, key
        message = "f(x): wrong values.\n  " + i18n._("Diagnosis: {text}").format(
            text=i18n._(checks.DIAGNOSES[key]))
        assert checks.diagnosis_in(message) == key


def test_language_from_the_environment_or_the_notebook_name(monkeypatch):
    monkeypatch.setenv(i18n.ENV, "")  # unset for the test; use_language's value is undone after it
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/s/01_chain_rule/01_chain_rule.zh-CN.ipynb")
    assert i18n.current_language() == "zh_CN"
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/s/01_chain_rule/01_chain_rule.ipynb")
    assert i18n.current_language() == "en"
    i18n.use_language("zh-CN")
    assert i18n.current_language() == "zh_CN" and i18n._("passed") == "通过"
    i18n.use_language("en")
    assert i18n._("passed") == "passed"


def test_a_failed_check_shows_its_message_not_the_machinery_in_a_kernel():
    """In a real IPython kernel the error output is the message alone, in the notebook's language."""
    failing = ("from coursework import checks\n"
               "checks.check_hand_gradients(lambda x, y, z: (x, y), [2.0, 1.0], [1.0, 3.0], [5.0, 2.0])")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(failing),
                nbformat.v4.new_code_cell("from coursework import use_language\nuse_language('zh-CN')"),
                nbformat.v4.new_code_cell(failing)]
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    english, chinese = nb.cells[0].outputs[0], nb.cells[2].outputs[0]
    texts = []
    for out in (english, chinese):
        assert out.output_type == "error" and out.ename == "CheckFailure"
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in out.traceback]
        text = "\n".join(lines)
        assert "File " not in text and "_core.py" not in text and "Traceback" not in text, text
        assert len(lines) <= 3, text
        # wrapped to fit nbgrader's Validate dialog, which shows lines as they are
        assert all(_core._columns(line) <= _core.RENDER_WIDTH for line in lines), text
        texts.append(re.sub(r"\n +", " ", text))
    assert texts[0] == "Check failed: hand_gradients(x, y, z) must return 3 results (dc/dx, dc/dy, dc/dz); it returned 2."
    assert texts[1].startswith("检查未通过: hand_gradients(x, y, z) 必须返回 3 个结果") and "它返回了 2 个" in texts[1]


def test_long_lines_wrap_by_display_width():
    zh = "诊断：" + "梯度" * 50 + "。"
    lines = _core.wrap_lines("  " + zh, 40)
    assert all(_core._columns(line) <= 40 for line in lines) and len(lines) > 3
    assert "".join(line.strip() for line in lines) == zh
    assert not any(line.strip().startswith("。") for line in lines)  # never before closing punctuation
    en = _core.wrap_lines("word " * 30, 40)
    assert all(len(line) <= 40 for line in en) and " ".join(w.strip() for w in en).split() == ["word"] * 30


def test_a_misconception_may_carry_its_own_text():
    """An instructor's own check can name a misconception in words instead of a registered key."""
    with pytest.raises(checks.CheckFailure) as info:
        checks.assert_matches([2.0], [1.0], what="f(1)", misconceptions=[
            checks.Misconception("you doubled it.", [2.0])])
    assert str(info.value).endswith("Diagnosis: you doubled it.") and info.value.diagnosis == "you doubled it."

"""The Simplified Chinese edition: one source of truth per lesson, the same graded cells, and a build
that says when a translation is behind its English text."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("course_release_editions", ROOT / "autograder" / "release.py")
release = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = release
_spec.loader.exec_module(release)

LESSONS = release.lessons()


def _english(lesson):
    return nbformat.reads(release.notebook_from_script(lesson), as_version=4)


@pytest.mark.parametrize("lesson", LESSONS)
def test_translation_is_complete_and_current(lesson):
    _, behind = release.translated_notebook(lesson, "zh-CN")
    assert behind == [], "\n".join(behind)


@pytest.mark.parametrize("lesson", LESSONS)
def test_chinese_edition_has_the_english_code_and_the_same_graded_cells(lesson):
    """Same cells in the same order; graded cells (tests, hidden tests, points, ids) byte-identical;
    every markdown cell translated; code cells differ at most in comments and printed labels."""
    en = _english(lesson)
    zh = nbformat.reads(release.translated_notebook(lesson, "zh-CN")[0], as_version=4)
    assert [(c.id, c.cell_type) for c in en.cells] == [(c.id, c.cell_type) for c in zh.cells]
    first_code = True
    for e, z in zip(en.cells, zh.cells):
        assert e.metadata == z.metadata, e.id
        if e.metadata.get("nbgrader", {}).get("grade"):
            assert e.source == z.source, f"{e.id}: a test cell must be the same in both editions"
        if e.cell_type == "markdown":
            translated = any("\u4e00" <= ch <= "\u9fff" for ch in z.source)
            assert translated or e.source.strip() in ("", "---"), f"{e.id} not translated"
        else:
            z_source = z.source
            if first_code:
                assert z_source.startswith(release.LANGUAGE_LINES["zh-CN"])
                z_source = z_source[len(release.LANGUAGE_LINES["zh-CN"]):]
                first_code = False
            assert len(e.source.splitlines()) == len(z_source.splitlines()), e.id
            compile(z_source, e.id, "exec")  # still valid Python


def _fake_lesson(tmp_path, monkeypatch, translation: str):
    """A one-lesson course in tmp_path: a markdown cell and a code cell, and its zh-CN translation."""
    lesson = "01_demo"
    (tmp_path / lesson).mkdir()
    (tmp_path / lesson / f"{lesson}.py").write_text(
        "# %% [markdown]\n# # Title\n#\n# Some text.\n\n# %%\nx = 1  # one\nprint('x is', x)\n")
    (tmp_path / lesson / f"{lesson}.zh-CN.md").write_text(translation)
    monkeypatch.setattr(release, "SOLUTIONS", tmp_path)
    monkeypatch.setattr(release, "ROOT", tmp_path)
    nb = nbformat.reads(release.notebook_from_script(lesson), as_version=4)
    return lesson, nb


def test_build_says_when_a_translation_is_behind(tmp_path, monkeypatch):
    lesson, nb = _fake_lesson(tmp_path, monkeypatch, "")
    md, code = nb.cells
    current = (f"<!-- cell-000 en:{release.english_hash(md.source)} -->\n# 标题\n\n一些文字。\n\n"
               f"<!-- cell-001 en:{release.english_hash(code.source)} code -->\n```\n# one => # 一\n"
               "'x is' => 'x 是'\n```\n")
    (tmp_path / lesson / f"{lesson}.zh-CN.md").write_text(current)
    text, behind = release.translated_notebook(lesson, "zh-CN")
    zh = nbformat.reads(text, as_version=4)
    assert behind == []
    assert zh.cells[0].source == "# 标题\n\n一些文字。"
    assert zh.cells[1].source.endswith("x = 1  # 一\nprint('x 是', x)")

    # The English text changes: the old translation is still used, and the build says it is behind.
    script = tmp_path / lesson / f"{lesson}.py"
    script.write_text(script.read_text().replace("Some text.", "Some better text."))
    text, behind = release.translated_notebook(lesson, "zh-CN")
    assert len(behind) == 1 and "cell-000 is behind its English text" in behind[0]
    assert nbformat.reads(text, as_version=4).cells[0].source == "# 标题\n\n一些文字。"

    # A new markdown cell has no translation yet; a code change reaches the edition as it is.
    script.write_text(script.read_text().replace("x = 1", "x = 2") + "\n# %% [markdown]\n# New.\n")
    text, behind = release.translated_notebook(lesson, "zh-CN")
    zh = nbformat.reads(text, as_version=4)
    assert "x = 2  # 一" in zh.cells[1].source and zh.cells[2].source == "New."
    assert any("cell-002 is not translated yet" in b for b in behind)


def test_a_fragment_missing_from_its_cell_stops_the_build(tmp_path, monkeypatch):
    lesson, nb = _fake_lesson(tmp_path, monkeypatch, "")
    code = nb.cells[1]
    (tmp_path / lesson / f"{lesson}.zh-CN.md").write_text(
        f"<!-- cell-001 en:{release.english_hash(code.source)} code -->\n# two => # 二\n")
    with pytest.raises(SystemExit, match="'# two' is not in cell-001"):
        release.translated_notebook(lesson, "zh-CN")


def test_a_test_cell_cannot_be_translated(tmp_path, monkeypatch):
    lesson, _ = _fake_lesson(tmp_path, monkeypatch, "")
    script = tmp_path / lesson / f"{lesson}.py"
    script.write_text(script.read_text() + '\n# %% nbgrader={"grade": true, "grade_id": "t1", "locked": true, '
                      '"points": 1, "schema_version": 3, "solution": false, "task": false}\nassert x  # check\n')
    nb = nbformat.reads(release.notebook_from_script(lesson), as_version=4)
    (tmp_path / lesson / f"{lesson}.zh-CN.md").write_text(
        f"<!-- t1 en:{release.english_hash(nb.cells[2].source)} code -->\n# check => # 检查\n")
    with pytest.raises(SystemExit, match="graded or locked cell"):
        release.translated_notebook(lesson, "zh-CN")


# ----------------------------------------------------------------------------- grading either edition


def test_collect_keeps_the_edition_a_student_handed_in():
    from autograder.grading.collect import _edition_of

    assert _edition_of("smithalice_12_34_01_chain_rule.zh-CN.ipynb", "01_chain_rule.ipynb") \
        == "01_chain_rule.zh-CN.ipynb"
    assert _edition_of("alice_lesson1.ipynb", "01_chain_rule.ipynb") == "01_chain_rule.ipynb"


def test_the_grader_takes_either_editions_notebook_without_a_flag(tmp_path):
    from autograder.grading.assignment import load_assignment
    from autograder.grading.preflight import edition_names, find_file

    lesson = "01_chain_rule"
    spec = load_assignment(str(ROOT / "solutions" / lesson), str(ROOT / "course" / lesson), lesson).notebooks[0]
    assert edition_names(f"{lesson}.ipynb") == [f"{lesson}.zh-CN.ipynb"]
    folder = tmp_path / "submitted"
    folder.mkdir()
    (folder / f"{lesson}.zh-CN.ipynb").write_text("{}")
    path, flags = find_file(str(folder), f"{lesson}.ipynb", spec, set())
    assert Path(path).name == f"{lesson}.zh-CN.ipynb" and flags == []
    (folder / f"{lesson}.ipynb").write_text("{}")  # both handed in: the English one, flagged
    path, flags = find_file(str(folder), f"{lesson}.ipynb", spec, set())
    assert Path(path).name == f"{lesson}.ipynb" and flags and flags[0][0] == "review"


def test_feedback_page_speaks_the_notebooks_language():
    from autograder.grading.feedback import _summary

    cells = {"l1_ex1_hand_gradients_test": {"score": 0.0, "max": 2.0, "status": "fail"}}
    result = {"assignment": "01_chain_rule", "student": "jun",
              "notebooks": {"01_chain_rule.ipynb": {"cells": cells, "flags": [],
                                                    "file_used": "01_chain_rule.zh-CN.ipynb"}}}
    page = _summary(result, "01_chain_rule.ipynb")
    assert "**得分：0 / 2**" in page and "未通过（见测试下方的信息）" in page and "隐藏测试" in page
    result["notebooks"]["01_chain_rule.ipynb"]["file_used"] = "01_chain_rule.ipynb"
    page = _summary(result, "01_chain_rule.ipynb")
    assert "**Score: 0 / 2**" in page and "failed (see the message under the test)" in page


def test_the_grader_notes_on_a_chinese_feedback_page_are_in_chinese():
    from autograder.grading import notes
    from autograder.grading.feedback import _summary

    stopped = notes.ANSWER_CELL_TIMED_OUT.format(cell="'l1_ex1_hand_gradients'")
    cells = {"l1_ex1_hand_gradients_test": {"score": 0.0, "max": 2.0, "status": "fail", "cause": stopped}}
    flags = [("info", notes.WRONG_NAME.format(found="'作业 1.ipynb'", notebook="'01_chain_rule.ipynb'")),
             ("info", stopped),
             ("review", notes.SUSPICIOUS_CODE.format(what="opens files", cells=[3, 7])),
             ("review", "no verdict for ['x']: the kernel died")]     # from no template: stays English
    result = {"assignment": "01_chain_rule", "student": "jun",
              "notebooks": {"01_chain_rule.ipynb": {"cells": cells, "flags": flags,
                                                    "file_used": "01_chain_rule.zh-CN.ipynb"}}}
    page = _summary(result, "01_chain_rule.ipynb")
    assert "- 文件名不对：已把 &#x27;作业 1.ipynb&#x27; 当作 &#x27;01_chain_rule.ipynb&#x27; 评分" in page
    assert ("- 答案单元格 &#x27;l1_ex1_hand_gradients&#x27; 未能在单元格时间限制内运行完，已被中断；"
            "其后的测试无法使用它的结果") in page
    assert "未通过（见测试下方的信息） (答案单元格 'l1_ex1_hand_gradients' 未能在单元格时间限制内运行完，已被中断) |" in page
    assert "- 单元格 [3, 7] 中有可疑代码（打开文件）" in page
    assert "- no verdict for [&#x27;x&#x27;]: the kernel died" in page
    result["notebooks"]["01_chain_rule.ipynb"]["file_used"] = "01_chain_rule.ipynb"
    page = _summary(result, "01_chain_rule.ipynb")    # the English edition: the notes as recorded
    assert "- wrong file name: graded &#x27;作业 1.ipynb&#x27; as &#x27;01_chain_rule.ipynb&#x27;" in page
    assert "(answer cell 'l1_ex1_hand_gradients' did not finish within the cell time limit and was interrupted) |" in page

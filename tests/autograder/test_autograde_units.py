"""Fast checks of the pieces that run before and after a kernel (no kernel here)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import nbformat

import toy_course
from autograder.grading.assignment import NotebookSpec, TrustedCell, hidden_lines, strip_hidden
from autograder.grading.protocol import stub_cell, verify
from autograder.grading.preflight import prepare, scan
from autograder.grading.reports import classify
from autograder.grading.workspace import normalize_db_url, safe_name


def test_strip_hidden_and_hidden_lines():
    src = toy_course.source_notebook().cells[7].source
    visible = strip_hidden(src)
    assert "double(1.0) == 2.0" in visible and toy_course.HIDDEN_MARKER not in visible
    assert hidden_lines(src) == [f"{toy_course.HIDDEN_MARKER} = 7.25",
                                 f"assert abs(double({toy_course.HIDDEN_MARKER}) - 14.5) < 1e-12, "
                                 "'double(7.25) should be 14.5'"]


def test_verdicts_need_the_key_and_increasing_sequence(tmp_path):
    key = b"k" * 32

    def line(rec, k=key):
        body = json.dumps(rec, sort_keys=True)
        return json.dumps({"body": body, "mac": hmac.new(k, body.encode(), hashlib.sha256).hexdigest()})

    p = tmp_path / "v.jsonl"
    p.write_text("\n".join([
        line({"grade_id": "a", "status": "pass", "seq": 1}),
        line({"grade_id": "b", "status": "pass", "seq": 2}, k=b"x" * 32),   # forged
        line({"grade_id": "a", "status": "fail", "seq": 1}),                 # replayed
        "garbage",
        line({"grade_id": "c", "status": "fail", "seq": 3}),
    ]) + "\n")
    verdicts, problems = verify(str(p), key)
    assert {g: v.status for g, v in verdicts.items()} == {"a": "pass", "c": "fail"}
    assert problems == ["forged or damaged verdict line ignored", "replayed verdict line ignored",
                        "forged or damaged verdict line ignored"]


def _spec():
    cells = [TrustedCell(0, "code", "provided", "imports", 0, "import numpy as np", "import numpy as np"),
             TrustedCell(1, "code", "solution", "ans", 0, "def f(x):\n    return x", "def f(x):\n    raise NotImplementedError()"),
             TrustedCell(2, "code", "test", "t1", 2, "assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 2\n### END HIDDEN TESTS",
                         "assert f(1) == 1"),
             TrustedCell(3, "code", "test", "t2", 1, "assert True", "assert True")]
    return NotebookSpec("nb.ipynb", cells, {"name": "python3"})


def _write(tmp_path, cells, name="nb.ipynb", kernel="python3"):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel}
    nb.cells = cells
    (tmp_path / name).write_text(nbformat.writes(nb))
    return str(tmp_path)


def _cell(src, gid=None, **meta):
    c = nbformat.v4.new_code_cell(src)
    if gid:
        c.metadata["nbgrader"] = {"grade_id": gid, **meta}
    return c


def test_prepare_restores_tests_and_flags_changes(tmp_path):
    folder = _write(tmp_path, [
        _cell("import numpy as np", "imports"),
        _cell("def f(x):\n    return x\nimport builtins\nbuiltins.len = 3", "ans", solution=True),
        _cell("pass", "t1", grade=True, points=50),
        _cell("assert f(1) == 1"),                       # a stripped copy of t1
    ], kernel="ir")
    prep = prepare(folder, _spec(), set())
    srcs = [c.source for c in prep.notebook.cells]
    assert srcs[0] == '__import__("sys").audit("autograder.begin")'
    assert srcs.count(stub_cell("t1")) == 1
    assert stub_cell("t2") in srcs      # deleted test added back
    assert prep.order == ["t1", "t2"]
    msgs = [m for _, m in prep.flags]
    assert "test cell t1: edited (restored from the gradebook)" in msgs
    assert "test cell t1: points changed to 50 (restored to 2)" in msgs
    assert "test cell t1: nbgrader metadata stripped (restored)" in msgs
    assert "test cell t1: duplicated (extra copy removed)" in msgs
    assert "test cell t2: deleted (added back)" in msgs
    assert "kernel 'ir' replaced by the grader's sandboxed 'python3'" in msgs
    assert any("touches builtins" in m for m in msgs)
    assert not any("assert f(2)" in s for s in srcs)     # hidden tests never enter the notebook


def test_prepare_corrupt_renamed_missing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "nb.ipynb").write_text('{"cells": [')
    prep = prepare(str(tmp_path / "a"), _spec(), set())
    assert prep.notebook is None and prep.flags[0][1].startswith("corrupt notebook JSON")
    (tmp_path / "b").mkdir()
    _write(tmp_path / "b", [_cell("x = 1")], name="my homework.ipynb")
    prep = prepare(str(tmp_path / "b"), _spec(), set())
    assert prep.file_used == "my homework.ipynb" and prep.notebook is not None
    assert prep.flags[0] == ("info", "wrong file name: graded 'my homework.ipynb' as 'nb.ipynb'")
    (tmp_path / "c").mkdir()
    prep = prepare(str(tmp_path / "c"), _spec(), set())
    assert prep.notebook is None and prep.flags == [("review", "missing notebook nb.ipynb")]


def test_static_scan_labels():
    assert scan("torch.allclose = lambda *a: True") == ["assigns to an attribute of a library module"]
    assert scan("x = signal.sum(0)") == []                 # a variable called signal is fine
    assert "threads/signals/processes/sockets" in scan("import threading")
    assert scan("w.grad = None\nparam.data -= lr * g") == []
    for aliased in ("weights = checks.torch_balance_step(model)",
                    "reference = checks.torch_balance_step",
                    "from coursework.checks import torch_balance_step as step",
                    "import coursework.checks as c",
                    "from coursework import problems, checks as c"):
        assert scan(aliased) == ["uses the course's checks, whose references are the answers"], aliased
    assert scan("x = problems.lesson4_features()") == []     # the lesson's data is fair to use


def test_names_urls_and_report_labels():
    assert safe_name("Alice Smith") == "Alice-Smith"
    assert normalize_db_url("postgresql://u@127.0.0.1/g") == "postgresql+psycopg2://u@127.0.0.1/g"
    assert normalize_db_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    diag = {"summed_over_batch": "gradient summed over the batch instead of per sample: ..."}
    err = "CheckFailure: G1: wrong values.\n  Diagnosis: gradient summed over the batch instead of per sample: ..."
    assert classify({"status": "fail", "error": err}, diag) == "summed_over_batch"
    assert classify({"status": "pass"}, diag) is None
    assert classify({"status": "no verdict", "error": None}, diag) == "no verdict"
    assert classify({"status": "fail", "error": "CheckFailure: f: your code raised NotImplementedError: \n"
                                                "  Diagnosis: not answered yet: replace"}, diag) == "not answered"
    assert os.path.basename(__file__) == "test_autograde_units.py"

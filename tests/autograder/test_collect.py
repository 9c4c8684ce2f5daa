"""collect_zip on LMS downloads: no student is dropped, merged or silently skipped."""

from __future__ import annotations

import os
import zipfile

import pytest

from autograder.__main__ import main
from autograder.grading.collect import collect_zip
from autograder.grading.workspace import Workspace, WorkspaceError

NB = "01_chain_rule.ipynb"


@pytest.fixture
def ws(tmp_path):
    """A workspace with one assignment, without running nbgrader."""
    w = Workspace.open(str(tmp_path / "ws"), create=True)
    for part in ("source", "release"):
        os.makedirs(w.path(part, "chain"))
    open(w.path("release", "chain", NB), "w").write("{}")
    w.save_settings()
    return w


def make_zip(tmp_path, members: dict[str, bytes]) -> str:
    z = str(tmp_path / "lms.zip")
    with zipfile.ZipFile(z, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return z


def read(ws, student):
    with open(ws.path("submitted", student, "chain", NB), "rb") as fh:
        return fh.read()


def test_namesakes_are_kept_apart_by_participant_id(ws, tmp_path, capsys):
    z = make_zip(tmp_path, {f"John Smith_101_assignsubmission_file_/{NB}": b"first",
                            f"John Smith_102_assignsubmission_file_/{NB}": b"second",
                            f"Ann Lee_103_assignsubmission_file_/{NB}": b"ann"})
    got = collect_zip(ws, z, "chain")
    lines = capsys.readouterr().out.splitlines()
    assert sorted(s for s, _, _ in got) == ["Ann-Lee", "John-Smith_101", "John-Smith_102"]
    assert [read(ws, s) for s in ("John-Smith_101", "John-Smith_102", "Ann-Lee")] == [b"first", b"second", b"ann"]
    assert any("John-Smith_101" in line and "John-Smith_102" in line for line in lines)


def test_namesakes_without_ids_are_refused_not_overwritten(ws, tmp_path):
    z = make_zip(tmp_path, {f"John Smith_{NB}": b"first", f"John-Smith_{NB}": b"second"})
    with pytest.raises(WorkspaceError, match="John-Smith.*nothing was collected"):
        collect_zip(ws, z, "chain", report=lambda line: None)
    assert not os.path.exists(ws.path("submitted", "John-Smith"))


def test_same_file_name_twice_for_one_student_is_refused(ws, tmp_path):
    z = make_zip(tmp_path, {f"Ann Lee_103_assignsubmission_file_/{NB}": b"a",
                            f"Ann Lee_103_assignsubmission_file_/old/{NB}": b"b"})
    with pytest.raises(WorkspaceError, match="overwrite"):
        collect_zip(ws, z, "chain", report=lambda line: None)


def test_skipped_members_are_reported(ws, tmp_path, capsys):
    z = make_zip(tmp_path, {"index.html": b"<html>", f"alice_{NB}": b"alice",
                            f"__MACOSX/._alice_{NB}": b"junk"})
    got = collect_zip(ws, z, "chain")
    lines = capsys.readouterr().out.splitlines()
    assert [s for s, _, _ in got] == ["alice"]
    assert not os.path.exists(ws.path("submitted", "index"))
    assert any("index.html" in line and "no student name" in line for line in lines)
    assert any("__MACOSX" in line for line in lines)
    assert any(".skipped-chain.txt" in line for line in lines)


def test_existing_ids_unchanged_without_collision(ws, tmp_path):
    z = make_zip(tmp_path, {f"alice_{NB}": b"a", f"bob_12345_{NB}": b"b",
                            f"Carol Smith_777_assignsubmission_file_/{NB}": b"c",
                            f"smithdan_12345_67890_{NB}": b"d"})
    got = collect_zip(ws, z, "chain", report=lambda line: None)
    assert sorted(s for s, _, _ in got) == ["Carol-Smith", "alice", "bob", "smithdan"]


def test_cli_missing_zip_is_a_one_line_error(ws, tmp_path, capsys):
    missing = str(tmp_path / "nope.zip")
    assert main(["collect", "--workspace", ws.root, "--zip", missing, "--assignment", "chain"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: no such zip file: {missing}"

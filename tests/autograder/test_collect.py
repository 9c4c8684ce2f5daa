"""Collecting submissions (LMS zips, nbgrader folders, its exchange): no student dropped, merged or silently skipped."""

from __future__ import annotations

import os
import zipfile

import pytest

from autograder.__main__ import main
from autograder.grading.collect import collect_folder, collect_zip
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


# ---------------------------------------------------------------- collect --from
def put(folder, relative, data=b"{}"):
    path = os.path.join(folder, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def test_exchange_inbound_takes_each_students_latest_submission(ws, tmp_path, capsys):
    exchange = str(tmp_path / "exchange")
    inbound = os.path.join(exchange, "autodiff", "inbound")
    put(inbound, f"alice+chain+2026-11-02 09:00:00.000000 UTC+abc/{NB}", b"alice late")
    put(inbound, f"alice+chain+2026-10-30 23:59:00.000000 UTC+def/{NB}", b"alice early")
    put(inbound, f"bob+chain+2026-11-01 10:00:00.000000 UTC/{NB}", b"bob")  # nbgrader < 0.7: no random part
    put(inbound, f"carol+homework9+2026-11-01 10:00:00.000000 UTC+xyz/{NB}", b"carol")
    put(inbound, "README.txt", b"not a submission")
    got = collect_folder(ws, exchange)  # the exchange root: its single course is found
    out = capsys.readouterr().out
    assert sorted(s for s, _, _ in got) == ["alice", "bob"]
    assert read(ws, "alice") == b"alice late" and read(ws, "bob") == b"bob"
    assert "alice / chain: 2 submissions, the latest is graded" in out
    assert "'homework9' is not an assignment of this workspace" in out and "README.txt" in out


def test_exchange_with_several_courses_asks_which(ws, tmp_path):
    exchange = str(tmp_path / "exchange")
    for course in ("autodiff", "physics"):
        put(exchange, f"{course}/inbound/alice+chain+2026-11-02 09:00:00.000000 UTC+abc/{NB}")
    with pytest.raises(WorkspaceError, match="several courses .*autodiff, physics"):
        collect_folder(ws, exchange, report=lambda line: None)


def test_collected_layout_reports_what_it_passes_over(ws, tmp_path, capsys):
    incoming = str(tmp_path / "in")
    put(incoming, f"submitted/alice/chain/{NB}", b"alice")
    put(incoming, f"submitted/alice/chain/data/{NB}", b"a subfolder")
    put(incoming, f"submitted/bob/lesson9/{NB}", b"bob")
    got = collect_folder(ws, incoming)
    out = capsys.readouterr().out
    assert [s for s, _, _ in got] == ["alice"] and read(ws, "alice") == b"alice"
    assert "'lesson9' is not an assignment" in out and "not a plain file" in out


def test_finding_nothing_is_an_error_not_an_empty_class(ws, tmp_path, capsys):
    empty = str(tmp_path / "empty")
    os.makedirs(os.path.join(empty, "alice_chain"))
    assert main(["collect", "--workspace", ws.root, "--from", empty]) == 2
    assert "no submissions found in" in capsys.readouterr().err
    assert main(["collect", "--workspace", ws.root, "--from", empty, "-a", "chian"]) == 2
    assert "unknown assignment 'chian'; known: ['chain']" in capsys.readouterr().err


def test_asking_for_an_unknown_student_or_assignment_is_an_error(ws, tmp_path, capsys):
    put(str(tmp_path / "in"), f"alice/chain/{NB}")
    collect_folder(ws, str(tmp_path / "in"), report=lambda line: None)
    assert ws.submissions(student="alice") == [("alice", "chain")]
    with pytest.raises(WorkspaceError, match="no submissions from student 'alcie'.*students: alice"):
        ws.submissions(student="alcie")
    for command in ("autograde", "feedback"):
        assert main([command, "--workspace", ws.root, "-a", "chian"]) == 2
        assert "unknown assignment 'chian'" in capsys.readouterr().err

"""grades.csv: a row for every student and assignment, so that nobody's result goes missing."""

from __future__ import annotations

import csv
import os

import pytest

from autograder.__main__ import main
from autograder.grading import reports
from autograder.grading.workspace import Workspace, WorkspaceError


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """Two assignments; alice graded in both, bob in one, carol collected but not graded yet,
    dan known to the gradebook (graded once, before a re-collect) with nothing now."""
    w = Workspace.open(str(tmp_path / "ws"), create=True)
    for a in ("chain", "seeds"):
        os.makedirs(w.path("source", a))
    for s, a in (("alice", "chain"), ("alice", "seeds"), ("bob", "chain"), ("carol", "seeds")):
        os.makedirs(w.path("submitted", s, a))
    w.save_settings()
    scores = {("alice", "chain"): (7.0, 7.0), ("alice", "seeds"): (5.0, 7.0), ("bob", "chain"): (2.0, 7.0)}
    monkeypatch.setattr(reports, "_gradebook", lambda _: (scores, {"chain": 7.0, "seeds": 7.0},
                                                          ["alice", "bob", "dan"]))
    return w


def rows(path):
    return {(r["student_id"], r["assignment"]): r for r in csv.DictReader(open(path))}


def test_every_student_gets_a_row_for_every_assignment(ws):
    grades, _ = reports.export_csv(ws)
    got = rows(grades)
    assert len(got) == 8
    assert got[("alice", "seeds")]["score"] == "5" and got[("alice", "seeds")]["submitted"] == "1"
    bob = got[("bob", "seeds")]
    assert (bob["score"], bob["max_score"], bob["submitted"], bob["flagged"]) == ("0", "7", "0", "0")
    assert bob["flags"] == "no submission"
    carol = got[("carol", "seeds")]
    assert (carol["score"], carol["submitted"], carol["flagged"]) == ("", "1", "1")
    assert "not graded yet" in carol["flags"]
    assert got[("dan", "chain")]["score"] == "0"


def test_a_roster_adds_who_sent_nothing_and_flags_who_is_not_on_it(ws, tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text("name,student_id\nAlice,alice\nBob,bob\nEve Adams,Eve Adams\n")
    assert main(["export", "--workspace", ws.root, "--roster", str(roster)]) == 0
    got = rows(ws.path("reports", "grades.csv"))
    assert got[("Eve-Adams", "chain")]["score"] == "0" and got[("Eve-Adams", "seeds")]["submitted"] == "0"
    assert got[("carol", "seeds")]["flags"].startswith("not on the roster")
    assert got[("alice", "chain")]["flags"] == ""


def test_a_plain_list_is_a_roster_and_a_bad_one_says_where(ws, tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("alice\n\nbob\n")
    assert reports.read_roster(str(plain)) == ["alice", "bob"]
    bad = tmp_path / "bad.csv"
    bad.write_text("name,email\nAlice,a@x\n")
    with pytest.raises(WorkspaceError, match="needs a 'student_id'"):
        reports.read_roster(str(bad))
    unusable = tmp_path / "unusable.txt"
    unusable.write_text("alice\n\n///\n")
    with pytest.raises(WorkspaceError, match=r"line 3: no usable student id in \['///'\]"):
        reports.read_roster(str(unusable))

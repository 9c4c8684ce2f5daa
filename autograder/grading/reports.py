"""Grades as CSV, and the class report: scores per exercise and which diagnoses fired how often."""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter, defaultdict

from .workspace import Workspace, WorkspaceError, safe_name


def _diagnoses() -> dict[str, str]:
    try:
        from coursework.checks import DIAGNOSES
        return dict(DIAGNOSES)
    except Exception:
        return {}


def _labels() -> dict[str, str]:
    try:
        from coursework.checks import DIAGNOSIS_LABELS
        return dict(DIAGNOSIS_LABELS)
    except Exception:
        return {}


def _diagnosis_in(err: str) -> str | None:
    """The diagnosis a check's message shows, in whichever language the notebook was."""
    try:
        from coursework.checks import diagnosis_in
        return diagnosis_in(err)
    except Exception:
        return None


def classify(cell: dict, diagnoses: dict[str, str]) -> str | None:
    """One label per failed exercise: the diagnosis key, or what else happened."""
    status = cell.get("status")
    if status == "pass":
        return None
    if cell.get("cause"):  # an answer cell stopped by a limit: that, not the NameError after it
        return "answer cell stopped: " + ("out of memory" if "memory" in cell["cause"] else "time limit")
    err = cell.get("error") or ""
    key = _diagnosis_in(err)
    if key == "not_answered":
        return "not answered"
    if key in diagnoses:
        return key
    m = re.search(r"Diagnosis:\s*(.+)", err)
    if m:
        text = m.group(1).strip()
        if text.startswith("not answered"):
            return "not answered"
        for key, full in diagnoses.items():
            if text[:60] and full.startswith(text[:60]):
                return key
        return "diagnosis: " + text[:60]
    if status in ("timeout", "no verdict", "not run", "tampered", "grader error", "grader crashed"):
        return status
    if "NotImplementedError" in err or "not answered yet" in err:
        return "not answered"
    etype = err.split(":", 1)[0] if err else "failed"
    if etype in ("CheckFailure", "AssertionError"):
        what = err.split(":", 2)[1].strip() if err.count(":") >= 2 else ""
        kind = "wrong shape" if "wrong shape" in err else "wrong values" if "wrong values" in err else "failed"
        return f"{kind} (no known misconception)" if what else "assertion failed"
    return f"error: {etype}"


def load_results(ws: Workspace) -> list[dict]:
    out = []
    base = ws.path("autograded")
    if not os.path.isdir(base):
        return out
    for s in sorted(os.listdir(base)):
        for a in sorted(os.listdir(os.path.join(base, s))):
            p = os.path.join(base, s, a, "grading.json")
            if os.path.exists(p):
                with open(p) as fh:
                    out.append(json.load(fh))
    return out


def require_own_results(ws: Workspace, results: list[dict], what: str) -> list[str]:
    """Say why ``what`` cannot use submissions this tool did not grade (a stock ``nbgrader autograde``
    leaves scores in the gradebook but none of the statuses and diagnoses the reports are built from).

    Raises when there is nothing of our own to use; otherwise returns the lines to print."""
    ours = {(r["student"], r["assignment"]) for r in results}
    elsewhere = sorted(set(gradebook_scores(ws)) - ours)
    if not elsewhere and ours:
        return []
    advice = "run `python -m autograder autograde` in this workspace (it regrades them in the sandbox)"
    if not ours:
        if elsewhere:
            raise WorkspaceError(f"{what} needs the autograder's own results, and the gradebook's "
                                 f"{len(elsewhere)} graded submission(s) have none (graded by stock `nbgrader "
                                 f"autograde`?): {advice}")
        raise WorkspaceError(f"nothing graded yet for {what}: {advice}")
    names = ", ".join(f"{s}/{a}" for s, a in elsewhere[:10]) + (", ..." if len(elsewhere) > 10 else "")
    return [f"note: {len(elsewhere)} submission(s) in the gradebook were graded outside the autograder and are "
            f"not in the {what} ({names}): {advice}"]


def gradebook_scores(ws: Workspace) -> dict[tuple[str, str], tuple[float, float]]:
    """(student, assignment) -> (score, max_score), read back from the gradebook itself."""
    return _gradebook(ws)[0]


def _gradebook(ws: Workspace) -> tuple[dict[tuple[str, str], tuple[float, float]], dict[str, float], list[str]]:
    """The scores, each assignment's max score, and every student the gradebook knows."""
    from nbgrader.api import Gradebook

    from .gradebook import check

    check(ws)   # a damaged gradebook is one clear line, not sqlite3's traceback

    scores, max_scores = {}, {}
    with Gradebook(ws.db_url) as gb:
        for assignment in gb.assignments:
            max_scores[assignment.name] = float(assignment.max_score)
            for sub in gb.assignment_submissions(assignment.name):
                scores[(sub.student.id, assignment.name)] = (float(sub.score), float(sub.max_score))
        students = [student.id for student in gb.students]
    return scores, max_scores, students


def read_roster(path: str) -> list[str]:
    """Student ids, one per line, or a CSV whose header has a ``student_id`` (or ``id``) column."""
    if not os.path.isfile(path):
        raise WorkspaceError(f"no such roster file: {path}")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [(line, row) for line, row in enumerate(csv.reader(fh), start=1)
                if any(cell.strip() for cell in row)]
    header = [cell.strip().lower() for cell in rows[0][1]] if rows else []
    column = next((header.index(name) for name in ("student_id", "id") if name in header), None)
    if column is not None:
        rows = rows[1:]
    elif len(header) > 1:
        raise WorkspaceError(f"{path}: a CSV roster needs a 'student_id' (or 'id') column; its header is {rows[0][1]}")
    students = []
    for line, row in rows:
        try:
            students.append(safe_name(row[column or 0]))
        except (WorkspaceError, IndexError):
            raise WorkspaceError(f"{path}, line {line}: no usable student id in {row}") from None
    return students


def export_csv(ws: Workspace, out_dir: str | None = None, roster: str | None = None) -> tuple[str, str]:
    """grades.csv has a row for every student and assignment: a student who sent nothing scores 0
    (never a missing row, which a spreadsheet would read as "not due"), and a submission not graded
    yet is flagged.  With a ``roster``, its students are listed too, and submitters missing from it
    are flagged (a misspelt name in an LMS download)."""
    out_dir = out_dir or ws.path("reports")
    os.makedirs(out_dir, exist_ok=True)
    scores, max_scores, known_students = _gradebook(ws)
    results = {(r["student"], r["assignment"]): r for r in load_results(ws)}
    collected = set(ws.submissions())
    on_roster = set(read_roster(roster)) if roster else None
    students = sorted(set(known_students) | {s for s, _ in collected} | (on_roster or set()))
    diagnoses = _diagnoses()
    grades = os.path.join(out_dir, "grades.csv")
    with open(grades, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "assignment", "score", "max_score", "submitted", "flagged", "flags"])
        for s in students:
            for a in sorted(max_scores):
                r = results.get((s, a), {})
                flags = [f[1] for nb in r.get("notebooks", {}).values() for f in nb["flags"] if f[0] == "review"]
                if on_roster is not None and s not in on_roster:
                    flags.append("not on the roster")
                if (s, a) in scores:
                    score, mx = scores[(s, a)]
                    row = [f"{score:g}", f"{mx:g}", 1]
                elif (s, a) in collected:
                    flags.append("collected but not graded yet: run autograde")
                    row = ["", f"{max_scores[a]:g}", 1]
                else:
                    row = ["0", f"{max_scores[a]:g}", 0]
                flagged = int(bool(r.get("flagged")) or bool(flags))
                if (s, a) not in scores and (s, a) not in collected:
                    flags.insert(0, "no submission")
                w.writerow([s, a, *row, flagged, " | ".join(flags)[:2000]])
    exercises = os.path.join(out_dir, "exercises.csv")
    with open(exercises, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "assignment", "notebook", "exercise", "score", "max_score", "status", "diagnosis"])
        for (s, a), r in sorted(results.items()):
            for nbname, nb in r["notebooks"].items():
                for gid, c in nb["cells"].items():
                    w.writerow([s, a, nbname, gid, f"{c['score']:g}", f"{c['max']:g}", c["status"],
                                classify(c, diagnoses) or ""])
    return grades, exercises


def class_report(ws: Workspace, out_dir: str | None = None) -> tuple[dict, str]:
    out_dir = out_dir or ws.path("reports")
    os.makedirs(out_dir, exist_ok=True)
    diagnoses, labels = _diagnoses(), _labels()
    per_ex: dict = defaultdict(lambda: {"n": 0, "score": 0.0, "max": 0.0, "full": 0, "labels": Counter()})
    fired: Counter = Counter()
    flagged = []
    sandboxes: Counter = Counter()
    results = load_results(ws)
    notes = require_own_results(ws, results, "class report")
    for r in results:
        sandboxes[r.get("sandbox") or "not recorded (graded before sandboxes were named)"] += 1
        if r.get("flagged"):
            flagged.append(f"{r['student']}/{r['assignment']}")
        for nb in r["notebooks"].values():
            for gid, c in nb["cells"].items():
                e = per_ex[(r["assignment"], gid)]
                e["n"] += 1
                e["score"] += c["score"]
                e["max"] += c["max"]
                e["full"] += int(c["score"] >= c["max"] > 0)
                label = classify(c, diagnoses)
                if label:
                    e["labels"][label] += 1
                    if label in diagnoses:
                        fired[label] += 1
    data = {"exercises": [], "diagnoses": dict(fired.most_common()), "flagged": flagged,
            "sandboxes": dict(sandboxes.most_common())}
    lines = ["# Class report", "", "## Score per exercise", "",
             "| assignment | exercise | submissions | mean score | full marks | what went wrong (count) |",
             "|---|---|---|---|---|---|"]
    for (a, gid), e in sorted(per_ex.items()):
        mean = e["score"] / e["n"] if e["n"] else 0.0
        mx = e["max"] / e["n"] if e["n"] else 0.0
        wrong = ", ".join(f"{labels.get(k, k)} ({v})" for k, v in e["labels"].most_common())
        lines.append(f"| {a} | {gid} | {e['n']} | {mean:.2f} / {mx:g} | {e['full']}/{e['n']} | {wrong} |")
        data["exercises"].append({"assignment": a, "exercise": gid, "n": e["n"], "mean": round(mean, 4),
                                  "max": mx, "full_marks": e["full"], "labels": dict(e["labels"])})
    lines += ["", "## How often each diagnosis fired (what the class misunderstood)", ""]
    if fired:
        lines += ["| diagnosis | id | times |", "|---|---|---|"]
        lines += [f"| {labels.get(k, k)} | {k} | {v} |" for k, v in fired.most_common()]
    else:
        lines.append("No known misconception was diagnosed.")
    lines += ["", "## Flagged for review", ""] + ([f"- {f}" for f in flagged] or ["none"])
    lines += ["", "## Sandbox the kernels ran in", ""] + [f"- {k}: {v} submission(s)" for k, v in sandboxes.most_common()]
    if notes:
        lines += ["", "## Not in this report", ""] + [f"- {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "class_report.md"), "w") as fh:
        fh.write(text)
    with open(os.path.join(out_dir, "class_report.json"), "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    return data, text


def gradebook_table(ws: Workspace) -> str:
    scores = gradebook_scores(ws)
    results = {(r["student"], r["assignment"]): r for r in load_results(ws)}
    students = sorted({s for s, _ in scores})
    assignments = sorted({a for _, a in scores})
    short = {a: a[:14] for a in assignments}
    head = f"{'student':<22}" + "".join(f"{short[a]:>16}" for a in assignments) + f"{'total':>10}  flagged"
    lines = [head, "-" * len(head)]
    for s in students:
        row, tot, mx, flag = f"{s:<22}", 0.0, 0.0, False
        for a in assignments:
            if (s, a) in scores:
                sc, m = scores[(s, a)]
                tot, mx = tot + sc, mx + m
                row += f"{sc:>9g} / {m:<4g}".rjust(16)
                flag = flag or bool(results.get((s, a), {}).get("flagged"))
            else:
                row += f"{'-':>16}"
        lines.append(row + f"{tot:>10g}  {'yes' if flag else ''}")
    return "\n".join(lines)

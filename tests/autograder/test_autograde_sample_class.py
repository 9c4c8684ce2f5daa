"""The demo's pipeline on the bundled sample class and the five real lessons: every score."""

from __future__ import annotations

import os

import pytest

from autograder import sample_class
from autograder.grading.workspace import REPO_ROOT

LESSONS_PRESENT = all(os.path.exists(os.path.join(REPO_ROOT, "solutions", l, f"{l}.ipynb"))
                      for l in sample_class.LESSONS)


@pytest.mark.slow
@pytest.mark.skipif(not LESSONS_PRESENT, reason="the five lessons are not in solutions/ yet")
def test_demo_pipeline_scores_the_sample_class(tmp_path, capsys, os_sandbox):
    from autograder.grading.assignment import hidden_lines
    from autograder.grading.pipeline import load_specs
    from autograder.grading.reports import class_report, gradebook_scores, load_results

    code = sample_class.run_demo(workspace=str(tmp_path / "ws"), workers=2, allow_weak_sandbox=os_sandbox[0] is None)
    out = capsys.readouterr().out
    from autograder.grading.workspace import Workspace

    ws = Workspace.open(str(tmp_path / "ws"))
    results = load_results(ws)
    assert sample_class.check_expected(results) == []
    assert code == 0, out[-3000:]
    assert "every score is as expected" in out
    # the gradebook holds exactly the expected scores
    scores = gradebook_scores(ws)
    expected = {(s, a): (float(v), float(sample_class.MAX[a]))
                for s, per in sample_class.EXPECTED.items() for a, v in per.items()}
    assert scores == expected
    # the table printed at the end has every student
    for student in sample_class.EXPECTED:
        assert student in out.split("== gradebook")[1]
    # each known misconception of the class was diagnosed and counted
    data, _ = class_report(ws)
    assert sample_class.DIAGNOSED <= set(data["diagnoses"])
    # no hidden test in any feedback file
    specs = load_specs(ws)
    secrets = [ln for spec in specs.values() for nb in spec.notebooks for t in nb.tests.values()
               for ln in hidden_lines(t.source)]
    assert secrets
    feedback = [os.path.join(d, f) for d, _, fs in os.walk(ws.path("feedback")) for f in fs]
    assert len(feedback) == sum(len(per) for per in sample_class.EXPECTED.values())
    for path in feedback:
        body = open(path).read()
        assert not [s for s in secrets if s in body], path

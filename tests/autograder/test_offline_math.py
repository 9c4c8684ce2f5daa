"""Feedback draws the course's formulas offline: every one of them, in both editions."""

from __future__ import annotations

import glob
import os

import nbformat

from autograder.grading.offline_math import _CODE, _MATH, formula_html

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def course_formulas():
    found = set()
    for path in sorted(glob.glob(os.path.join(REPO, "course", "*", "*.ipynb"))):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                outside_code = _CODE.split(cell.source)[::2]
                for part in outside_code:
                    found.update(((m.group(1) or m.group(2)).strip(), m.group(1) is not None)
                                 for m in _MATH.finditer(part))
    return sorted(found)


def test_every_formula_of_the_course_is_drawn_not_left_as_tex():
    formulas = course_formulas()
    assert len(formulas) > 100
    left_as_tex = [tex for tex, display in formulas if not formula_html(tex, display).startswith("<img")]
    assert left_as_tex == []


def test_a_formula_mathtext_cannot_draw_stays_readable():
    assert formula_html(r"\begin{pmatrix} a \end{pmatrix}", True).startswith("<code")

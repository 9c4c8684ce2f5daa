"""The grader's notes on a submission that a student may read, each written from one template.

A note is recorded in English, in the results and the gradebook, since that is the language the
instructor reads.  The feedback page shows it in the language of the edition the student handed
in: :func:`in_language` finds the template that wrote the note, translates it (the course's
catalogue, ``lib/coursework/locale``), and fills in the same values. A note from no template
here (a grader error, say) stays in English.
"""

from __future__ import annotations

import re
from typing import Callable


def N_(message: str) -> str:
    """gettext's marker: the template is extracted into the catalogue and translated when shown."""
    return message


MISSING_FOLDER = N_("missing notebook {notebook}: no submission folder")
MISSING_NOTEBOOK = N_("missing notebook {notebook}")
SEVERAL_EDITIONS = N_("several editions of {notebook} handed in: graded {graded}, not {others}")
WRONG_NAME = N_("wrong file name: graded {found} as {notebook}")
SEVERAL_CANDIDATES = N_("several candidate notebooks for {notebook}: {candidates}")
KERNEL_REPLACED = N_("kernel {found} replaced by the grader's sandboxed {wanted}")
TEST_METADATA_STRIPPED = N_("test cell {test}: nbgrader metadata stripped (restored)")
TEST_DUPLICATED = N_("test cell {test}: duplicated (extra copy removed)")
TEST_EDITED = N_("test cell {test}: edited (restored from the gradebook)")
TEST_POINTS_CHANGED = N_("test cell {test}: points changed to {points} (restored to {original})")
TEST_DELETED = N_("test cell {test}: deleted (added back)")
LOCKED_CELL_EDITED = N_("locked cell {cell}: edited (restored)")
UNKNOWN_GRADE_ID = N_("cell with unknown grade_id {cell} run as ordinary code")
LOOKS_LIKE_A_TEST = N_("an ordinary cell looks like an edited copy of test {test} (run as student code)")
SUSPICIOUS_CODE = N_("suspicious code ({what}) in cell(s) {cells}")
TEST_INTERRUPTED = N_("{test}: the test was interrupted after the cell time limit")
ANSWER_CELL_TIMED_OUT = N_("answer cell {cell} did not finish within the cell time limit and was interrupted; "
                           "the tests after it could not use its results")
ANSWER_CELL_OUT_OF_MEMORY = N_("answer cell {cell} ran out of memory (the kernel's memory limit); "
                               "the tests after it could not use its results")
CELL_TIMED_OUT = N_("a cell did not finish within the cell time limit and was interrupted; "
                    "the tests after it could not use its results")
CELL_OUT_OF_MEMORY = N_("a cell ran out of memory (the kernel's memory limit); "
                        "the tests after it could not use its results")

TEMPLATES = [value for name, value in list(globals().items()) if name.isupper() and isinstance(value, str)]
_PLACEHOLDER = re.compile(r"\\\{(\w+)\\\}")


def _pattern(template: str) -> re.Pattern:
    return re.compile(_PLACEHOLDER.sub(lambda m: f"(?P<{m.group(1)}>.+?)", re.escape(template)), re.DOTALL)


_PATTERNS = [(template, _pattern(template)) for template in TEMPLATES]


def in_language(note: str, translate: Callable[[str], str]) -> str:
    """``note`` as written in the student's language by ``translate`` (English stays as it is)."""
    for template, pattern in _PATTERNS:
        match = pattern.fullmatch(note)
        if match:
            values = match.groupdict()   # names, numbers and code stay as they are ...
            if "what" in values:         # ... but the scan's labels are the course's own words
                values["what"] = translate(values["what"])
            return translate(template).format(**values)
    return note

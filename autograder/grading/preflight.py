"""Before anything runs: find the notebook, parse it, and put the trusted test cells back.

Everything here treats the submission as data.  The output is a notebook in which
every test cell is a stub that asks the guard to run the *trusted* source; the
student's own cells are kept (they are their answers), and whatever was odd about
the file is written down as a flag for the instructor.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
import stat
from dataclasses import dataclass, field

import nbformat

from . import notes
from .notes import N_
from .assignment import NotebookSpec, nbmeta, normalize, source_text
from .protocol import begin_cell, stub_cell

MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024

# Patterns that have no business in an answer to these exercises.  They do not change
# the score (the guard already restores what they change); they ask for a human look.  Their
# labels are marked for the catalogue: a student's feedback page shows them translated.
SUSPICIOUS = [
    (r"\b(torch|np|numpy|chainrule|checks|coursework|math|builtins|problems)\s*(\.\s*\w+)+\s*=(?!=)",
     N_("assigns to an attribute of a library module")),
    # Any use, not only a call: an alias (import coursework.checks as c, from coursework.checks
    # import torch_balance_step) reaches the same reference answers.
    (r"\bchecks\s*\.\s*\w+|\bcoursework\s*\.\s*checks\b|\bfrom\s+coursework\s+import\b[^\n]*\bchecks\b",
     N_("uses the course's checks, whose references are the answers")),
    (r"\bsetattr\s*\(|\bdelattr\s*\(", N_("setattr/delattr")),
    (r"__builtins__|\bimport\s+builtins|\bfrom\s+builtins\b", N_("touches builtins")),
    (r"\bsys\s*\.\s*modules", N_("touches sys.modules")),
    (r"\bget_ipython\s*\(|\binput_transformers|\bast_transformers|\bevents\.register", N_("hooks into IPython")),
    (r"\b(settrace|setprofile|_getframe|currentframe|f_back|f_locals|f_globals|tb_frame|gi_frame)\b",
     N_("inspects frames / tracing")),
    (r"\bgc\s*\.\s*(get_referrers|get_referents|get_objects|callbacks)", N_("walks the garbage collector")),
    (r"\bctypes\b|\bcffi\b", N_("ctypes/cffi")),
    (r"\b(exec|eval|compile|__import__)\s*\(", N_("dynamic code (exec/eval/compile/__import__)")),
    (r"\bimportlib\b", N_("importlib")),
    (r"__(del|array|array_ufunc|array_function|torch_function|eq|class|code|globals|dict|subclasses)__",
     N_("defines or touches special attributes")),
    (r"\b(import|from)\s+(threading|_thread|multiprocessing|signal|subprocess|socket|pty)\b",
     N_("threads/signals/processes/sockets")),
    (r"\bos\s*\.\s*(_exit|kill|system|fork|exec\w*|spawn\w*)|\bsys\s*\.\s*exit", N_("exits or kills processes")),
    (r"gradebook|\.\./|/submitted/|/autograded/|/source/", N_("reaches for grader files")),
    (r"\bopen\s*\(", N_("opens files")),
    (r"\bfrom_file\b|\bmemmap\b|\bmmap\b|\bos\s*\.\s*(open|readlink|stat|lstat|link|symlink)\b|/proc\b|/dev/",
     N_("native file access, links or /proc")),
    (r"\bfaulthandler\b|\bTCPStore\b|\btorch\s*\.\s*distributed\b|\bgetaddrinfo\b",
     N_("native crash helpers or network")),
]


@dataclass
class Prepared:
    notebook: nbformat.NotebookNode | None       # None: nothing can be run
    file_used: str | None = None
    flags: list = field(default_factory=list)       # (severity, message): severity review|info
    order: list = field(default_factory=list)       # grade_ids of the test stubs, in run order
    stub_cells: dict = field(default_factory=dict)  # grade_id -> index in notebook


def _flag(prep: Prepared, severity: str, msg: str) -> None:
    prep.flags.append((severity, msg))


def edition_names(expected: str) -> list[str]:
    """The course's other editions of a notebook: NN_name.zh-CN.ipynb for NN_name.ipynb.

    Each is the same assignment in another language (same cells, grade ids and tests), so it
    is graded as the notebook itself, without the flag a renamed file gets."""
    try:
        from coursework.i18n import EDITION_SUFFIX
    except Exception:
        return []
    stem = expected[:-len(".ipynb")] if expected.endswith(".ipynb") else expected
    return [f"{stem}{tag}.ipynb" for tag in EDITION_SUFFIX.values() if tag]


def find_file(folder: str, expected: str, spec: NotebookSpec, taken: set) -> tuple[str | None, list]:
    """The submitted file for ``expected``; a renamed copy is accepted and flagged."""
    flags = []
    if os.path.islink(folder):
        return None, [("review", f"the submission folder is a symbolic link (to {os.readlink(folder)!r}): "
                                 "not graded")]
    if not os.path.isdir(folder):
        return None, [("review", notes.MISSING_FOLDER.format(notebook=expected))]
    path = os.path.join(folder, expected)
    editions = [os.path.join(folder, name) for name in edition_names(expected)]
    handed_in = [p for p in [path, *editions] if os.path.lexists(p)]
    for p in handed_in:
        problem = link_problem(p)
        if problem:
            return None, [("review", problem)]
    if handed_in:
        if len(handed_in) > 1:
            flags.append(("review", notes.SEVERAL_EDITIONS.format(
                notebook=expected, graded=os.path.basename(handed_in[0]),
                others=[os.path.basename(p) for p in handed_in[1:]])))
        return handed_in[0], flags
    linked = [f for f in sorted(os.listdir(folder)) if f.endswith(".ipynb") and link_problem(os.path.join(folder, f))]
    candidates = sorted(f for f in os.listdir(folder)
                        if f.endswith(".ipynb") and f not in taken and f not in linked
                        and os.path.isfile(os.path.join(folder, f)) and not f.startswith("."))
    if not candidates:
        return None, [("review", link_problem(os.path.join(folder, linked[0])) if linked
                       else notes.MISSING_NOTEBOOK.format(notebook=expected))]
    ids = set(spec.tests) | {c.grade_id for c in spec.cells if c.grade_id}

    def overlap(fname):
        try:
            with open(os.path.join(folder, fname), "rb") as fh:
                raw = fh.read(MAX_NOTEBOOK_BYTES)
            return sum(1 for gid in ids if gid and gid.encode() in raw)
        except OSError:
            return 0

    best = max(candidates, key=lambda f: (overlap(f), -abs(len(f) - len(expected))))
    flags.append(("info", notes.WRONG_NAME.format(found=repr(best), notebook=repr(expected))))
    if len(candidates) > 1:
        flags.append(("review", notes.SEVERAL_CANDIDATES.format(notebook=expected, candidates=candidates)))
    return os.path.join(folder, best), flags


def link_problem(path: str) -> str | None:
    """Why a submitted file must not be read as the student's: a link shows someone else's file."""
    name = os.path.basename(path)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return f"{name} is a symbolic link (to {os.readlink(path)!r}): not graded"
    if not stat.S_ISREG(st.st_mode):
        return f"{name} is not a regular file: not graded"
    if st.st_nlink > 1:
        return f"{name} is a hard link (its data is another file's too): not graded"
    return None


def parse(path: str) -> tuple[dict | None, str | None]:
    try:
        # O_NOFOLLOW: a file swapped for a link after the check above is not followed either.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_NOTEBOOK_BYTES:
                return None, f"notebook too large ({size} bytes)"
            data = json.loads(fh.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return None, f"corrupt notebook JSON: {type(exc).__name__}: {str(exc)[:200]}"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, "corrupt notebook: no list of cells"
    return data, None


def scan(source: str) -> list[str]:
    found = []
    try:
        ast.parse(source)
    except SyntaxError:
        pass
    for pattern, label in SUSPICIOUS:
        if re.search(pattern, source):
            found.append(label)
    return found


def prepare(folder: str, spec: NotebookSpec, taken: set) -> Prepared:
    path, flags = find_file(folder, spec.name, spec, taken)
    prep = Prepared(None, flags=list(flags))
    if path is None:
        return prep
    prep.file_used = os.path.basename(path)
    data, error = parse(path)
    if error:
        _flag(prep, "review", error)
        return prep

    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    ks = meta.get("kernelspec") if isinstance(meta.get("kernelspec"), dict) else {}
    want = spec.kernelspec.get("name", "python3")
    if ks.get("name") != want:
        _flag(prep, "info", notes.KERNEL_REPLACED.format(found=repr(ks.get('name')), wanted=repr(want)))

    tests = spec.tests
    known = {c.grade_id: c for c in spec.cells if c.grade_id}
    test_by_release = {normalize(c.release_source): gid for gid, c in tests.items()}
    # cells as the course wrote them are not the student's code: only changed or new cells are scanned
    course_code = {normalize(c.release_source) for c in spec.cells}
    out_cells: list = []
    placed: dict[str, int] = {}
    suspicious: dict[str, list] = {}

    def add_stub(gid: str):
        placed[gid] = len(out_cells)
        cell = nbformat.v4.new_code_cell(stub_cell(gid))
        cell.metadata["autograder"] = {"grade_id": gid}
        out_cells.append(cell)

    for n, raw in enumerate(data["cells"]):
        if not isinstance(raw, dict):
            _flag(prep, "review", f"cell {n} is not a cell object (ignored)")
            continue
        ctype = raw.get("cell_type")
        src = source_text(raw)
        m = nbmeta(raw)
        gid = m.get("grade_id") if isinstance(m.get("grade_id"), str) else None
        if ctype != "code":
            if ctype in ("markdown", "raw"):
                out_cells.append(nbformat.v4.new_markdown_cell(src) if ctype == "markdown"
                                 else nbformat.v4.new_raw_cell(src))
            continue
        if gid in tests or (not gid and normalize(src) in test_by_release):
            real = gid if gid in tests else test_by_release[normalize(src)]
            if gid is None:
                _flag(prep, "review", notes.TEST_METADATA_STRIPPED.format(test=real))
            if real in placed:
                _flag(prep, "review", notes.TEST_DUPLICATED.format(test=real))
                continue
            trusted = tests[real]
            if gid and normalize(src) != normalize(trusted.release_source):
                _flag(prep, "review", notes.TEST_EDITED.format(test=real))
            if gid and m.get("points") is not None and float(m.get("points") or 0) != trusted.points:
                _flag(prep, "review", notes.TEST_POINTS_CHANGED.format(test=real, points=m.get('points'),
                                                                       original=f"{trusted.points:g}"))
            add_stub(real)
            continue
        if gid and gid in known and known[gid].kind == "provided":
            # a locked, provided cell: run the instructor's version
            if normalize(src) != normalize(known[gid].release_source):
                _flag(prep, "review", notes.LOCKED_CELL_EDITED.format(cell=gid))
            out_cells.append(nbformat.v4.new_code_cell(known[gid].release_source))
            continue
        if gid and gid not in known:
            _flag(prep, "info", notes.UNKNOWN_GRADE_ID.format(cell=repr(gid)))
        if not gid:
            close = difflib.get_close_matches(normalize(src), list(test_by_release), n=1, cutoff=0.8)
            if close:
                _flag(prep, "review", notes.LOOKS_LIKE_A_TEST.format(test=test_by_release[close[0]]))
        if normalize(src) not in course_code:
            for label in scan(src):
                suspicious.setdefault(label, []).append(n)
        cell = nbformat.v4.new_code_cell(src)
        if gid:
            cell.metadata["autograder"] = {"solution_id": gid}
        out_cells.append(cell)

    # Deleted test cells come back after the cell that preceded them in the source.
    order_ids = [c.grade_id for c in spec.cells if c.grade_id]
    for gid in [g for g in order_ids if g in tests and g not in placed]:
        _flag(prep, "review", notes.TEST_DELETED.format(test=gid))
        pos = len(out_cells)
        idx = order_ids.index(gid)
        for prev in reversed(order_ids[:idx]):
            hit = [i for i, c in enumerate(out_cells)
                   if c.metadata.get("autograder", {}).get("grade_id") == prev
                   or c.metadata.get("autograder", {}).get("solution_id") == prev]
            if hit:
                pos = hit[-1] + 1
                break
        stub = nbformat.v4.new_code_cell(stub_cell(gid))
        stub.metadata["autograder"] = {"grade_id": gid, "added_back": True}
        out_cells.insert(pos, stub)

    for label, cells in suspicious.items():
        _flag(prep, "review", notes.SUSPICIOUS_CODE.format(what=label, cells=cells[:5]))

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": want, "display_name": "Python 3 (autograder sandbox)", "language": "python"}
    begin = nbformat.v4.new_code_cell(begin_cell())
    begin.metadata["autograder"] = {"begin": True}
    nb.cells = [begin] + out_cells
    prep.notebook = nb
    prep.order = [c.metadata["autograder"]["grade_id"] for c in nb.cells
                  if c.metadata.get("autograder", {}).get("grade_id")]
    prep.stub_cells = {c.metadata["autograder"]["grade_id"]: i for i, c in enumerate(nb.cells)
                       if c.metadata.get("autograder", {}).get("grade_id")}
    return prep

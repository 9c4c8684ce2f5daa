"""The trusted view of an assignment, read from the instructor's source and release notebooks."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field

import nbformat

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"


def nbmeta(cell) -> dict:
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def source_text(cell) -> str:
    src = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(src, list):
        src = "".join(str(s) for s in src)
    return src if isinstance(src, str) else ""


def strip_hidden(source: str) -> str:
    """What nbgrader releases: the test source without its hidden part."""
    out, hidden = [], False
    for line in source.splitlines(keepends=True):
        if line.strip().startswith(HIDDEN_BEGIN):
            hidden = True
            continue
        if line.strip().startswith(HIDDEN_END):
            hidden = False
            continue
        if not hidden:
            out.append(line)
    return "".join(out)


def hidden_lines(source: str) -> list[str]:
    """Lines of the hidden part worth searching for in anything shown to a student."""
    lines, hidden = [], False
    for line in source.splitlines():
        s = line.strip()
        if s.startswith(HIDDEN_BEGIN):
            hidden = True
            continue
        if s.startswith(HIDDEN_END):
            hidden = False
            continue
        if hidden and len(s) >= 12 and not s.startswith("#"):
            lines.append(s)
    return lines


def normalize(src: str) -> str:
    return "\n".join(line.rstrip() for line in src.strip().splitlines())


@dataclass
class TrustedCell:
    index: int
    cell_type: str
    kind: str                 # test | solution | task | provided
    grade_id: str | None
    points: float
    source: str               # instructor source (hidden tests, solutions)
    release_source: str       # what the student received


@dataclass
class NotebookSpec:
    name: str                 # file name, e.g. "lesson.ipynb"
    cells: list[TrustedCell]
    kernelspec: dict = field(default_factory=dict)

    @property
    def tests(self) -> dict[str, TrustedCell]:
        return {c.grade_id: c for c in self.cells if c.kind == "test"}

    @property
    def graded(self) -> dict[str, TrustedCell]:
        return {c.grade_id: c for c in self.cells if c.grade_id and c.points and c.kind in ("test", "task", "solution")}

    def max_score(self) -> float:
        return sum(c.points for c in self.cells if c.kind == "test")

    def preludes(self) -> dict[str, str]:
        """Per test: the imports and definitions of the provided (locked) cells before it.

        They are re-run in the test's fresh namespace, so a student who rebinds
        ``checks`` or ``torch`` in their own cells does not change what the test uses.
        """
        out, parts = {}, []
        answers = set()          # names the student defines: a provided cell must never replace them
        for c in self.cells:
            if c.kind == "solution" and c.cell_type == "code":
                try:
                    tree = ast.parse(c.source)
                except SyntaxError:
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        answers.add(node.name)
                    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                        answers.add(node.id)
        for c in self.cells:
            if c.cell_type != "code":
                continue
            if c.kind == "test":
                out[c.grade_id] = "\n".join(parts)
            elif c.kind == "provided":
                try:
                    tree = ast.parse(c.release_source)
                except SyntaxError:
                    continue
                for node in tree.body:
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        names = {(a.asname or a.name).split(".")[0] for a in node.names}
                    elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                        names = {node.name}
                    else:
                        continue
                    if not names & answers:
                        parts.append(ast.unparse(node))
        return out


@dataclass
class AssignmentSpec:
    name: str
    notebooks: list[NotebookSpec]
    files: dict[str, bytes] = field(default_factory=dict)   # extra release files copied into the sandbox

    def max_score(self) -> float:
        return sum(nb.max_score() for nb in self.notebooks)


def _kind(cell) -> str:
    m = nbmeta(cell)
    if m.get("task"):
        return "task"
    if m.get("solution"):
        return "solution"
    if m.get("grade") and cell.get("cell_type") == "code":
        return "test"
    return "provided"


def load_assignment(source_dir: str, release_dir: str, name: str) -> AssignmentSpec:
    notebooks = []
    files = {}
    for fname in sorted(os.listdir(source_dir)):
        if not fname.endswith(".ipynb"):
            continue
        src = nbformat.read(os.path.join(source_dir, fname), as_version=4)
        rel_path = os.path.join(release_dir, fname)
        rel = nbformat.read(rel_path, as_version=4) if os.path.exists(rel_path) else None
        rel_by_id = {}
        if rel is not None:
            for c in rel.cells:
                gid = nbmeta(c).get("grade_id")
                if gid:
                    rel_by_id[gid] = source_text(c)
        cells = []
        for i, c in enumerate(src.cells):
            m = nbmeta(c)
            gid = m.get("grade_id")
            kind = _kind(c)
            full = source_text(c)
            release = rel_by_id.get(gid) if gid else None
            if release is None:
                release = strip_hidden(full) if kind == "test" else full
            cells.append(TrustedCell(i, c.cell_type, kind, gid, float(m.get("points", 0) or 0), full, release))
        notebooks.append(NotebookSpec(fname, cells, dict(src.metadata.get("kernelspec", {}))))
    if os.path.isdir(release_dir):
        for fname in sorted(os.listdir(release_dir)):
            p = os.path.join(release_dir, fname)
            if os.path.isfile(p) and not fname.endswith(".ipynb") and os.path.getsize(p) < 16 * 1024 * 1024:
                with open(p, "rb") as fh:
                    files[fname] = fh.read()
    return AssignmentSpec(name, notebooks, files)

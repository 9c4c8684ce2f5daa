"""Rebuild the course: jupytext scripts -> solution notebooks -> student release.

From the repository root:

    python -m autograder.release                 # rebuild solutions/*/*.ipynb and course/
    python -m autograder.release --check         # fail (exit 1) if either is out of date
    python -m autograder.release --notebooks     # only rebuild solutions/*/*.ipynb from the scripts
    python -m autograder.release --sync-scripts  # after editing a solution .ipynb in Jupyter:
                                                 #   write its changes back into the .py script
    python -m autograder.release 03_layer_reuse  # only some lessons

(``python autograder/release.py ...`` works too.)

The jupytext percent script ``solutions/<lesson>/<lesson>.py`` is the reviewed source: cell
metadata (nbgrader's grade ids, points, locks) rides in its ``# %%`` lines. The notebook next to
it is what nbgrader reads; ``nbgrader generate_assignment`` turns it into ``course/<lesson>/``.
Everything is deterministic: cell ids are derived from the cell's position or grade id, outputs
are empty, so a second run changes no byte.

Each lesson has a Simplified Chinese edition, ``course/<lesson>/<lesson>.zh-CN.ipynb``, built from
the same English notebook and ``solutions/<lesson>/<lesson>.zh-CN.md``, the translation of its
student-facing text, keyed by cell (see :func:`read_translation`).  Code cells are never copied by
hand: the Chinese edition takes every code cell from the English source, with at most some comments
or printed labels replaced, so a change to a lesson's code reaches both editions.  Each translated
cell records a hash of the English text it translates; when the English cell has changed since,
the build says the translation is behind (and ``--check`` fails).  Test cells are never translated:
both editions have the same graded cells, grade ids, points and hidden tests, and the instructor
grades them as one assignment (``collect`` accepts either file name).
"""
from __future__ import annotations

import argparse
import filecmp
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"
CONFIG = ROOT / "autograder" / "nbgrader_config.py"


def lessons() -> list[str]:
    """The lesson folders, in course order (``NN_name``, each with ``NN_name.py``)."""
    return sorted(p.name for p in SOLUTIONS.iterdir()
                  if p.is_dir() and p.name[:2].isdigit() and (p / f"{p.name}.py").exists())


def script_path(lesson: str) -> Path:
    return SOLUTIONS / lesson / f"{lesson}.py"


def notebook_path(lesson: str, root: Path = SOLUTIONS) -> Path:
    return root / lesson / f"{lesson}.ipynb"


def notebook_from_script(lesson: str) -> str:
    """The solution notebook's JSON text, built from the lesson's percent script."""
    import jupytext
    import nbformat

    nb = jupytext.read(script_path(lesson), fmt="py:percent")
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    seen = set()
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("lines_to_next_cell", None)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell_id = grade_id if grade_id else f"cell-{i:03d}"
        if cell_id in seen:
            raise SystemExit(f"{script_path(lesson)}: duplicate grade_id {cell_id!r}")
        seen.add(cell_id)
        cell["id"] = cell_id
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


# ----------------------------------------------------------------------------- translations

#: The translated editions: file-name tag -> the language as coursework.use_language takes it.
EDITIONS = {"zh-CN": "zh-CN"}
# The Chinese edition's first code cell starts with this, so that the kernel nbgrader's Validate or
# the autograder starts for the notebook gives the checks' messages in the notebook's language.
LANGUAGE_LINES = {"zh-CN": 'from coursework import use_language\n'
                           'use_language("zh-CN")  # 检查与交互控件的提示使用简体中文\n\n'}
# What nbgrader puts in place of a solution in each edition (the English one is in nbgrader_config.py).
CODE_STUBS = {"zh-CN": "# 在这里写你的代码\nraise NotImplementedError()"}
MARKER = re.compile(r"^<!-- (?P<id>[A-Za-z0-9_-]+) en:(?P<hash>[0-9a-f]{10})(?P<code> code)? -->$")
ARROW = " => "


def english_hash(source: str) -> str:
    """What a translation records of the English cell it translates."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:10]


def translation_path(lesson: str, tag: str) -> Path:
    return SOLUTIONS / lesson / f"{lesson}.{tag}.md"


def edition_name(lesson: str, tag: str | None) -> str:
    return f"{lesson}.{tag}.ipynb" if tag else f"{lesson}.ipynb"


@dataclass
class Translated:
    """One cell's translation: a markdown cell's whole text, or a code cell's replaced fragments."""

    cell_id: str
    en_hash: str
    code: bool
    line: int
    text: str = ""
    replacements: list = field(default_factory=list)


def read_translation(path: Path) -> list[Translated]:
    """Parse ``<lesson>.<tag>.md``: blocks that start with a marker line naming the cell.

    ``<!-- cell-004 en:1a2b3c4d5e -->`` is followed by the translated markdown of that cell;
    ``<!-- cell-007 en:1a2b3c4d5e code -->`` by lines ``English fragment => translated fragment``
    (inside a code fence), each replaced in the English code cell.  Anything before the first
    marker is a note to translators.
    """
    entries: list[Translated] = []
    current = None
    body: list[str] = []

    def close():
        if current is None:
            return
        if current.code:
            for n, line in enumerate(body):
                if not line.strip() or line.startswith("```"):
                    continue
                if ARROW not in line:
                    raise SystemExit(f"{path}:{current.line + n + 1}: a code cell's line must read "
                                     f"'English{ARROW}translation'")
                old, new = line.split(ARROW, 1)
                current.replacements.append((old, new))
        else:
            current.text = "\n".join(body).strip("\n")
        entries.append(current)

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = MARKER.match(line)
        if m:
            close()
            current = Translated(m["id"], m["hash"], bool(m["code"]), number)
            body = []
        elif current is not None:
            body.append(line)
    close()
    return entries


def translate_notebook(nb, lesson: str, tag: str) -> list[str]:
    """Apply the lesson's translation to ``nb`` (the English notebook) in place.

    Returns what is behind: cells whose English text changed since they were translated, English
    markdown cells with no translation, translations of cells that are gone.  Mistakes that would
    make a wrong notebook (a fragment that is not in its cell, a translated test cell) stop the build.
    """
    path = translation_path(lesson, tag)
    rel = path.relative_to(ROOT)
    entries = read_translation(path) if path.exists() else []
    by_hash = {(e.code, e.en_hash): e for e in entries}
    by_id = {e.cell_id: e for e in entries}
    used, behind = set(), []
    for cell in nb.cells:
        code = cell.cell_type == "code"
        now = english_hash(cell.source)
        entry = by_hash.get((code, now)) or by_id.get(cell.id)
        if entry is None or entry.code != code:
            if not code and cell.source.strip():
                behind.append(f"{rel}: {cell.id} is not translated yet")
            continue
        used.add(id(entry))
        if entry.en_hash != now:
            behind.append(f"{rel}:{entry.line}: {cell.id} is behind its English text "
                          f"(translated en:{entry.en_hash}, the English is now en:{now})")
        if not code:
            cell.source = entry.text
            continue
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") or meta.get("locked"):
            raise SystemExit(f"{rel}:{entry.line}: {cell.id} is a graded or locked cell: both editions "
                             "must keep it as the English source has it")
        for old, new in entry.replacements:
            if old not in cell.source:
                raise SystemExit(f"{rel}:{entry.line}: {old!r} is not in {cell.id}")
            cell.source = cell.source.replace(old, new)
    behind += [f"{rel}:{e.line}: {e.cell_id} translates a cell the English source no longer has"
               for e in entries if id(e) not in used]
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    first_code.source = LANGUAGE_LINES[tag] + first_code.source
    return behind


def translated_notebook(lesson: str, tag: str) -> tuple[str, list[str]]:
    """The solution notebook of an edition (JSON text), and what of its translation is behind."""
    import nbformat

    nb = nbformat.reads(notebook_from_script(lesson), as_version=4)
    behind = translate_notebook(nb, lesson, tag)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n", behind


def translation_skeleton(lesson: str, tag: str) -> str:
    """A translation file to start from: every markdown cell of the lesson, in English, with its marker."""
    import nbformat

    nb = nbformat.reads(notebook_from_script(lesson), as_version=4)
    parts = [f"<!-- {tag} edition of {lesson}: translate each block below its marker; see "
             "autograder/release.py, read_translation -->"]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(f"<!-- {cell.id} en:{english_hash(cell.source)} -->\n{cell.source}")
    return "\n\n".join(parts) + "\n"


def build_notebooks(selected: list[str], check: bool) -> list[str]:
    """Write solutions/<lesson>/<lesson>.ipynb from the scripts; return those out of date."""
    stale = []
    for lesson in selected:
        text = notebook_from_script(lesson)
        path = notebook_path(lesson)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(str(path.relative_to(ROOT)))
        if not check:
            path.write_text(text)
    return stale


def sync_scripts(selected: list[str]) -> None:
    """Write edits made to the solution notebooks back into their percent scripts."""
    import jupytext

    for lesson in selected:
        nb = jupytext.read(notebook_path(lesson))
        nb.metadata.pop("jupytext", None)
        nb.metadata.pop("language_info", None)
        for cell in nb.cells:
            cell.pop("id", None)
        jupytext.write(nb, script_path(lesson), fmt="py:percent")
        print(f"wrote {script_path(lesson).relative_to(ROOT)}")


def nbgrader(*args: str, config: Path = CONFIG) -> None:
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--NbGrader.config_file={config.with_suffix('')}",
           "--log-level=WARN"]
    env = dict(os.environ)
    # nbgrader runs `alembic` (and the kernel) from PATH: put this interpreter's bin/ first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")


def generate(selected: list[str], release_dir: Path, db: Path, source_dir: Path | None = None,
             config: Path = CONFIG) -> None:
    """nbgrader generate_assignment for the lessons, into release_dir (one call for all)."""
    patterns = ["[0-9][0-9]_*"] if selected == lessons() else selected
    extra = [f"--CourseDirectory.source_directory={source_dir}"] if source_dir else []
    for pattern in patterns:
        nbgrader("generate_assignment", pattern, "--force", *extra,
                 f"--CourseDirectory.release_directory={release_dir}",
                 f"--CourseDirectory.db_url=sqlite:///{db}", config=config)


def edition_config(tag: str, folder: Path) -> Path:
    """nbgrader's configuration for an edition: the course's, with the edition's solution stub."""
    path = folder / f"nbgrader_config_{tag.replace('-', '_')}.py"
    path.write_text(f"c = get_config()  # noqa: F821\nload_subconfig({str(CONFIG)!r})  # noqa: F821\n"
                    f"c.ClearSolutions.code_stub = {{'python': {CODE_STUBS[tag]!r}}}\n", encoding="utf-8")
    return path


def generate_editions(selected: list[str], release_dir: Path, tmp: Path) -> list[str]:
    """nbgrader generate_assignment for each translated edition, into release_dir/<lesson>/<lesson>.<tag>.ipynb.

    nbgrader releases an edition from a scratch source folder where it has the lesson's own name, so
    that it gets the very same treatment (solutions cleared, hidden tests removed, cells locked) as
    the English notebook, with the same grade ids.  Returns what of the translations is behind.
    """
    behind = []
    for tag in EDITIONS:
        source, release = tmp / f"source-{tag}", tmp / f"release-{tag}"
        for lesson in selected:
            text, late = translated_notebook(lesson, tag)
            behind += late
            (source / lesson).mkdir(parents=True)
            notebook_path(lesson, source).write_text(text)
        generate(selected, release, tmp / f"gradebook-{tag}.db", source_dir=source,
                 config=edition_config(tag, tmp))
        for lesson in selected:
            (release_dir / lesson).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(notebook_path(lesson, release), release_dir / lesson / edition_name(lesson, tag))
    return behind


def diff_trees(expected: Path, actual: Path) -> list[str]:
    """Files that differ between two release trees (missing, extra or changed)."""
    problems = []
    cmp = filecmp.dircmp(expected, actual, ignore=["README.md", ".jupyter"])

    def walk(c: filecmp.dircmp, prefix: str) -> None:
        problems.extend(f"missing in course/: {prefix}{n}" for n in c.left_only)
        problems.extend(f"not produced by the release: {prefix}{n}" for n in c.right_only)
        for name in c.common_files:
            if (Path(c.left) / name).read_bytes() != (Path(c.right) / name).read_bytes():
                problems.append(f"out of date: {prefix}{name}")
        for name, sub in c.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(cmp, "course/")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson folders (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if the notebooks or course/ are out of date")
    parser.add_argument("--notebooks", action="store_true",
                        help="only rebuild the solution notebooks from the scripts")
    parser.add_argument("--sync-scripts", action="store_true",
                        help="write the solution notebooks back into their scripts, then stop")
    parser.add_argument("--translation-skeleton", metavar="TAG",
                        help="print a translation file to start from (e.g. zh-CN) for one lesson, then stop")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    selected = args.lessons or lessons()
    unknown = set(selected) - set(lessons())
    if unknown:
        parser.error(f"unknown lessons: {sorted(unknown)}; known: {lessons()}")

    if args.sync_scripts:
        sync_scripts(selected)
        return 0
    if args.translation_skeleton:
        for lesson in selected:
            sys.stdout.write(translation_skeleton(lesson, args.translation_skeleton))
        return 0

    stale = build_notebooks(selected, check=args.check)
    if args.notebooks:
        for path in stale:
            print(f"rebuilt {path}")
        return 0

    with tempfile.TemporaryDirectory(prefix="chainrule-release-") as tmp:
        tmp = Path(tmp)
        if args.check:
            # Build the release from notebooks rebuilt from the scripts, in a scratch copy.
            src = tmp / "solutions"
            for lesson in selected:
                (src / lesson).mkdir(parents=True)
                (src / lesson / f"{lesson}.ipynb").write_text(notebook_from_script(lesson))
            release = tmp / "release"
            generate(selected, release, tmp / "gradebook.db", source_dir=src)
            behind = generate_editions(selected, release, tmp)
            problems = [f"out of date (run python -m autograder.release): {p}" for p in stale]
            problems += [f"translation behind: {b}" for b in behind]
            for lesson in selected:
                if not (COURSE / lesson).is_dir():
                    problems.append(f"missing in course/: {lesson}/")
                    continue
                sub = diff_trees(release / lesson, COURSE / lesson)
                problems.extend(p.replace("course/", f"course/{lesson}/", 1) for p in sub)
            extra = sorted(p.name for p in COURSE.iterdir()
                           if p.is_dir() and p.name[:2].isdigit() and p.name not in lessons())
            problems.extend(f"not produced by the release: course/{name}/" for name in extra)
            if problems:
                print("course/ is out of date:\n  " + "\n  ".join(problems))
                print("Regenerate with: python -m autograder.release")
                return 1
            print(f"course/ is up to date ({len(selected)} lessons, editions: en, {', '.join(EDITIONS)})")
            return 0

        generate(selected, COURSE, tmp / "gradebook.db")
        behind = generate_editions(selected, COURSE, tmp)
    for line in behind:
        print(f"translation behind: {line}")
    for lesson in selected:
        # nbgrader copies the folder; keep only what a student needs (no stray checkpoints)
        for junk in (COURSE / lesson).rglob(".ipynb_checkpoints"):
            shutil.rmtree(junk)
    for path in stale:
        print(f"rebuilt {path}")
    print(f"released {len(selected)} lessons into {COURSE.relative_to(ROOT)}/ "
          f"(editions: en, {', '.join(EDITIONS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
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


def nbgrader(*args: str) -> None:
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--NbGrader.config_file={CONFIG.with_suffix('')}",
           "--log-level=WARN"]
    env = dict(os.environ)
    # nbgrader runs `alembic` (and the kernel) from PATH: put this interpreter's bin/ first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")


def generate(selected: list[str], release_dir: Path, db: Path, source_dir: Path | None = None) -> None:
    """nbgrader generate_assignment for the lessons, into release_dir (one call for all)."""
    patterns = ["[0-9][0-9]_*"] if selected == lessons() else selected
    extra = [f"--CourseDirectory.source_directory={source_dir}"] if source_dir else []
    for pattern in patterns:
        nbgrader("generate_assignment", pattern, "--force", *extra,
                 f"--CourseDirectory.release_directory={release_dir}",
                 f"--CourseDirectory.db_url=sqlite:///{db}")


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
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    selected = args.lessons or lessons()
    unknown = set(selected) - set(lessons())
    if unknown:
        parser.error(f"unknown lessons: {sorted(unknown)}; known: {lessons()}")

    if args.sync_scripts:
        sync_scripts(selected)
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
            problems = [f"out of date (run python -m autograder.release): {p}" for p in stale]
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
            print(f"course/ is up to date ({len(selected)} lessons)")
            return 0

        generate(selected, COURSE, tmp / "gradebook.db")
    for lesson in selected:
        # nbgrader copies the folder; keep only what a student needs (no stray checkpoints)
        for junk in (COURSE / lesson).rglob(".ipynb_checkpoints"):
            shutil.rmtree(junk)
    for path in stale:
        print(f"rebuilt {path}")
    print(f"released {len(selected)} lessons into {COURSE.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

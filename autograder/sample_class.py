"""The bundled sample class: twelve students who between them make every mistake the course knows.

Submissions are generated from the lessons themselves (``solutions/``): a correct answer
is the instructor's solution, a blank answer is the released stub, and each mistake is
a small, named edit of the solution, so the class follows the lessons as they change.
Two students (mei, jun) hand in the Simplified Chinese edition (``"@edition": "zh-CN"``):
they are graded in the same workspace, with the same tests and points, and get their
diagnoses and feedback in Chinese (:func:`check_languages`).
``EXPECTED`` is what every student must score on every lesson; ``python -m autograder
demo`` and the tests check it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time

import nbformat

from autograder.grading.workspace import REPO_ROOT, Workspace, build

LESSONS = ["01_chain_rule", "02_vector_seeds", "03_layer_reuse", "04_per_sample_gradients",
           "05_per_loss_gradients"]
MAX = {"01_chain_rule": 7, "02_vector_seeds": 7, "03_layer_reuse": 7, "04_per_sample_gradients": 12,
       "05_per_loss_gradients": 8}


def _drop_line(needle: str):
    def edit(src: str) -> str:
        lines = src.splitlines()
        kept = [ln for ln in lines if needle not in ln]
        if len(kept) == len(lines):
            raise ValueError(f"sample class: {needle!r} not found in the solution")
        return "\n".join(kept)
    return edit


def _replace(old: str, new: str):
    def edit(src: str) -> str:
        if old not in src:
            raise ValueError(f"sample class: {old!r} not found in the solution")
        return src.replace(old, new)
    return edit


def _prepend(code: str):
    return lambda src: code + "\n" + src


def _append(code: str):
    return lambda src: src + "\n" + code


BLANK = "BLANK"   # the released stub

# The known misconceptions, as answers.
COUNTED_ONCE_HAND = ("def dL_dw_by_hand(w, x, y):\n"
                     "    return 2 * (w * w * x - y) * w * x   # one use of w only\n")
COUNTED_ONCE_MATRIX = ("def reused_linear_grad(W, x, y, n_uses):\n"
                       "    inputs, h = [], x\n"
                       "    for _ in range(n_uses):\n"
                       "        inputs.append(h)\n"
                       "        h = W @ h\n"
                       "    return np.outer(2 * (h - y), inputs[-1])   # the last use only\n")
SUMMED_BY_HAND = ("def per_sample_by_hand(x, W1, W2):\n"
                  "    s = 1 / (1 + np.exp(-(x @ W1.T)))\n"
                  "    return (W2 * s * (1 - s) * x).sum(0), s.sum(0)   # summed over the batch\n")
SUMMED_LINEAR = ("def linear_per_sample(inputs, signal):\n"
                 "    return (signal[:, :, None] * inputs[:, None, :]).sum(0)\n")
NO_RESET = ("def per_term_grads(losses, params):\n"
            "    grads = []\n"
            "    for L in losses:\n"
            "        L.backward(retain_graph=True)\n"
            "        grads.append(tuple(chainrule.tensor(p.grad.numpy().copy()) for p in params))\n"
            "    return grads   # .grad never reset between terms\n")

STUDENTS: dict[str, dict] = {
    "ada": {},                                                     # everything right
    "bruno": {                                                     # partly right
        "01_chain_rule": {"l1_ex2_unbroadcast": BLANK},
        "03_layer_reuse": {"l3_ex1_dL_dw_by_hand": BLANK, "l3_ex2_reused_linear_grad": BLANK,
                           "l3_ex3_unrolled_grad": BLANK},
        "04_per_sample_gradients": {"l4_ex2_linear_per_sample": BLANK, "l4_ex3_per_sample_matrices": BLANK,
                                    "l4_ex4_train_by_hand": BLANK},
        "05_per_loss_gradients": {"*": BLANK},
    },
    "blank": {lesson: {"*": BLANK} for lesson in LESSONS},         # the release, untouched
    "carla": {                                                     # reused layer counted once; wrong seed
        "03_layer_reuse": {"l3_ex1_dL_dw_by_hand": COUNTED_ONCE_HAND,
                           "l3_ex2_reused_linear_grad": COUNTED_ONCE_MATRIX},
        "02_vector_seeds": {"l2_ex3_weighted_gradients":
                            _replace("chainrule.tensor(weights, dtype=b.dtype)",
                                     "chainrule.tensor(weights[:1], dtype=b.dtype)")},
    },
    "dmitri": {                                                    # summed over the batch; retain_graph
        "04_per_sample_gradients": {"l4_ex1_per_sample_by_hand": SUMMED_BY_HAND,
                                    "l4_ex2_linear_per_sample": SUMMED_LINEAR},
        "05_per_loss_gradients": {"l5_ex2_per_term_grads": _replace("retain_graph=i < last", "retain_graph=False")},
    },
    "elena": {                                                     # no zero_grad; .grad not reset; batch axis
        "04_per_sample_gradients": {"l4_ex4_train_by_hand": _drop_line("model.zero_grad()"),
                                    "l4_ex5_matvec_batch_rule": _replace("return W @ xs, 1", "return W @ xs, 0")},
        "05_per_loss_gradients": {"l5_ex2_per_term_grads": NO_RESET},
    },
    "mallory": {                                                   # monkeypatches to pass wrong answers
        "01_chain_rule": {"l1_ex1_hand_gradients": (
            "def hand_gradients(x, y, z):\n    return x, y, z\n"
            "from coursework import checks\n"
            "checks.assert_matches = lambda *a, **k: None\n"
            "checks.check_hand_gradients = lambda *a, **k: None\n")},
        "03_layer_reuse": {"l3_ex1_dL_dw_by_hand": (
            "def dL_dw_by_hand(w, x, y):\n    return 0.0\n"
            "np.allclose = lambda *a, **k: True\n"
            "np.isclose = lambda a, b, **k: np.ones(np.shape(a), bool)\n")},
        "05_per_loss_gradients": {"l5_ex1_term_grads_by_hand": _append(
            "import torch, math\ntorch.allclose = lambda *a, **k: True\n"
            "math.isclose = lambda *a, **k: True\n"
            "np.testing.assert_allclose = lambda *a, **k: None\n")},
    },
    "trudy": {                                                     # rewrites the tests
        "01_chain_rule": {"@points": "l1_ex1_hand_gradients_test"},
        "02_vector_seeds": {"l2_ex1_jacobian_by_hand": "def jacobian_by_hand(x0, x1):\n    return [[0, 0], [0, 0]]\n",
                            "@edit": "l2_ex1_jacobian_by_hand_test"},
        "04_per_sample_gradients": {"l4_ex2_linear_per_sample": "def linear_per_sample(inputs, signal):\n    return 0\n",
                                    "@delete": "l4_ex2_linear_per_sample_test"},
    },
    "carl": {                                                      # crashes, loops, memory
        "01_chain_rule": {"l1_ex3_retain_grad": _prepend("import os\nos._exit(0)")},
        "03_layer_reuse": {"l3_ex2_reused_linear_grad": "def reused_linear_grad(W, x, y, n_uses):\n"
                                                         "    while True:\n        pass\n"},
        "04_per_sample_gradients": {"l4_ex1_per_sample_by_hand": _append("hog = bytearray(16 * 1024 ** 3)")},
    },
    "mei": {lesson: {"@edition": "zh-CN"} for lesson in LESSONS[:2]},   # the Chinese edition, all right
    "jun": {                                                       # the Chinese edition, three mistakes
        "01_chain_rule": {"@edition": "zh-CN", "l1_ex3_retain_grad": _drop_line("m.retain_grad()")},
        "03_layer_reuse": {"@edition": "zh-CN", "l3_ex1_dL_dw_by_hand": COUNTED_ONCE_HAND},
        "04_per_sample_gradients": {"@edition": "zh-CN", "l4_ex1_per_sample_by_hand": SUMMED_BY_HAND},
    },
    "rita": {                                                      # files and kernels
        "01_chain_rule": {"@rename": "01_chain_rule (1).ipynb"},
        "02_vector_seeds": {"@kernel": "ir"},
        "03_layer_reuse": {"@corrupt": True},
        "05_per_loss_gradients": {"@missing": True},
    },
}

EXPECTED: dict[str, dict[str, float]] = {
    "ada": {"01_chain_rule": 7, "02_vector_seeds": 7, "03_layer_reuse": 7, "04_per_sample_gradients": 12,
            "05_per_loss_gradients": 8},
    "bruno": {"01_chain_rule": 4, "02_vector_seeds": 7, "03_layer_reuse": 0, "04_per_sample_gradients": 4,
              "05_per_loss_gradients": 0},
    "blank": {lesson: 0 for lesson in LESSONS},
    "carla": {"01_chain_rule": 7, "02_vector_seeds": 5, "03_layer_reuse": 2, "04_per_sample_gradients": 12,
              "05_per_loss_gradients": 8},
    "dmitri": {"01_chain_rule": 7, "02_vector_seeds": 7, "03_layer_reuse": 7, "04_per_sample_gradients": 7,
               "05_per_loss_gradients": 2},  # balance_step uses his per_term_grads, so fails too
    "elena": {"01_chain_rule": 7, "02_vector_seeds": 7, "03_layer_reuse": 7, "04_per_sample_gradients": 8,
              "05_per_loss_gradients": 2},
    "mallory": {"01_chain_rule": 5, "02_vector_seeds": 7, "03_layer_reuse": 5, "04_per_sample_gradients": 12,
                "05_per_loss_gradients": 8},
    "trudy": {"01_chain_rule": 7, "02_vector_seeds": 5, "03_layer_reuse": 7, "04_per_sample_gradients": 9,
              "05_per_loss_gradients": 8},
    "carl": {"01_chain_rule": 5, "02_vector_seeds": 7, "03_layer_reuse": 4, "04_per_sample_gradients": 12,
             "05_per_loss_gradients": 8},
    "rita": {"01_chain_rule": 7, "02_vector_seeds": 7, "03_layer_reuse": 0, "04_per_sample_gradients": 12},
    "mei": {"01_chain_rule": 7, "02_vector_seeds": 7},
    "jun": {"01_chain_rule": 5, "03_layer_reuse": 5, "04_per_sample_gradients": 10},
}
# Students who hand in the Chinese edition: their messages and feedback are in Chinese.
CHINESE = {"mei", "jun"}
FLAGGED = {("mallory", "01_chain_rule"), ("mallory", "03_layer_reuse"), ("mallory", "05_per_loss_gradients"),
           ("trudy", "01_chain_rule"), ("trudy", "02_vector_seeds"), ("trudy", "04_per_sample_gradients"),
           ("carl", "01_chain_rule"), ("rita", "03_layer_reuse")}
# The diagnoses the class report must count (at least once each).
DIAGNOSED = {"reused_layer_counted_once", "one_factor_of_2_missing", "seed_wrong_shape", "summed_over_batch", "retain_graph_forgotten",
             "accumulated_across_steps", "grad_not_reset_between_terms", "retain_grad_forgotten",
             "batch_axis_misplaced"}

_SOLUTION_MARK = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def _solution(src: str) -> str:
    return "\n".join(ln for ln in src.splitlines() if not _SOLUTION_MARK.match(ln))


def _gid(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def make_submission(lesson: str, plan: dict, source: nbformat.NotebookNode, release: nbformat.NotebookNode):
    """(file name, bytes) of one student's notebook, or None for a missing submission."""
    if plan.get("@missing"):
        return None
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    solutions = {_gid(c): _solution(c.source) for c in source.cells
                 if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        gid = _gid(cell)
        if gid not in solutions:
            continue
        change = plan.get(gid, plan.get("*"))
        if change == BLANK:
            continue
        if change is None:
            cell.source = solutions[gid]
        elif callable(change):
            cell.source = change(solutions[gid])
        else:
            cell.source = change
    if "@points" in plan:
        cell = next(c for c in nb.cells if _gid(c) == plan["@points"])
        cell.metadata["nbgrader"]["points"] = 100
    if "@edit" in plan:
        cell = next(c for c in nb.cells if _gid(c) == plan["@edit"])
        cell.source = "pass  # nothing to see here"
    if "@delete" in plan:
        nb.cells = [c for c in nb.cells if _gid(c) != plan["@delete"]]
    if "@kernel" in plan:
        nb.metadata["kernelspec"] = {"name": plan["@kernel"], "display_name": "R", "language": "R"}
    data = nbformat.writes(nb).encode()
    if plan.get("@corrupt"):
        data = data[: len(data) // 2]
    edition = f".{plan['@edition']}" if "@edition" in plan else ""
    return plan.get("@rename", f"{lesson}{edition}.ipynb"), data


def _release_of(ws: Workspace, lesson: str, plan: dict) -> nbformat.NotebookNode:
    """The notebook a student starts from: the workspace's release, or the course's translated edition."""
    if "@edition" in plan:
        return nbformat.read(os.path.join(REPO_ROOT, "course", lesson, f"{lesson}.{plan['@edition']}.ipynb"),
                             as_version=4)
    return nbformat.read(ws.path("release", lesson, f"{lesson}.ipynb"), as_version=4)


def write_sample_class(ws: Workspace, lessons: list[str] | None = None, students: list[str] | None = None) -> int:
    n = 0
    for lesson in lessons or LESSONS:
        source = nbformat.read(ws.path("source", lesson, f"{lesson}.ipynb"), as_version=4)
        for student, plans in STUDENTS.items():
            if students and student not in students:
                continue
            if student in CHINESE and lesson not in EXPECTED[student]:
                continue   # hands in only some lessons
            plan = plans.get(lesson, {})
            made = make_submission(lesson, plan, source, _release_of(ws, lesson, plan))
            if made is None:
                continue
            name, data = made
            folder = ws.path("submitted", student, lesson)
            os.makedirs(folder, exist_ok=True)
            for old in os.listdir(folder):
                os.unlink(os.path.join(folder, old))
            with open(os.path.join(folder, name), "wb") as fh:
                fh.write(data)
            n += 1
    return n


def check_expected(results: list[dict]) -> list[str]:
    """Every difference between what the class scored and what it should have."""
    problems = []
    got = {(r["student"], r["assignment"]): r for r in results}
    for student, per in EXPECTED.items():
        for lesson, score in per.items():
            r = got.get((student, lesson))
            if r is None:
                problems.append(f"{student}/{lesson}: no result")
                continue
            if r["score"] != score:
                problems.append(f"{student}/{lesson}: scored {r['score']:g}, expected {score:g}")
            if r["max_score"] != MAX[lesson]:
                problems.append(f"{student}/{lesson}: max {r['max_score']:g}, expected {MAX[lesson]}")
            if r["flagged"] != ((student, lesson) in FLAGGED):
                problems.append(f"{student}/{lesson}: flagged={r['flagged']}, expected {not r['flagged']}")
    extra = set(got) - {(s, a) for s, per in EXPECTED.items() for a in per}
    problems += [f"{s}/{a}: unexpected result" for s, a in sorted(extra)]
    return problems


def check_languages(ws: Workspace, results: list[dict]) -> list[str]:
    """The Chinese edition's students read Chinese: their failed checks and feedback pages."""
    problems = []
    for r in results:
        if r["student"] not in CHINESE:
            continue
        for nbname, nb in r["notebooks"].items():
            errors = [c["error"] for c in nb["cells"].values() if c.get("error")]
            if any("Diagnosis:" in e or "wrong values" in e for e in errors):
                problems.append(f"{r['student']}/{r['assignment']}: a check's message in English")
            page = ws.path("feedback", r["student"], r["assignment"], nbname[:-6] + ".html")
            if os.path.exists(page):
                with open(page, encoding="utf-8") as fh:
                    if "得分" not in fh.read():
                        problems.append(f"{r['student']}/{r['assignment']}: feedback not in Chinese")
    return problems


def run_demo(workspace: str | None = None, workers: int = 2, db_url: str | None = None,
             assignments: list[str] | None = None, allow_weak_sandbox: bool = False,
             scheduler: str | None = None, tls_dir: str | None = None) -> int:
    """Build, collect the sample class, autograde in parallel, feedback, export, report, table."""
    from autograder.grading.feedback import generate
    from autograder.grading.pipeline import autograde
    from autograder.grading.reports import class_report, export_csv, gradebook_table

    t0 = time.monotonic()
    root = workspace or tempfile.mkdtemp(prefix="autograder-demo-")
    ws = Workspace.open(root, create=True)
    lessons = assignments or LESSONS
    print(f"== build: workspace {ws.root} from {os.path.join(REPO_ROOT, 'solutions')}")
    build(ws, os.path.join(REPO_ROOT, "solutions"), db_url=db_url, assignments=lessons)
    print(f"== collect: {write_sample_class(ws, lessons)} notebooks from {len(STUDENTS)} sample students")
    print(f"== autograde on the Dask cluster at {scheduler}" if scheduler else f"== autograde with {workers} worker(s)")
    results = autograde(ws, workers=workers, force=True, allow_weak_sandbox=allow_weak_sandbox,
                        scheduler=scheduler, tls_dir=tls_dir)
    withheld: list = []
    files = generate(ws, withheld=withheld)
    print(f"== feedback: {len(files)} HTML files under {ws.path('feedback')}"
          + (f", {len(withheld)} withheld" if withheld else ""))
    grades, exercises = export_csv(ws)
    print(f"== export: {grades}, {exercises}")
    _, report = class_report(ws)
    print("== class report\n" + report)
    print("== gradebook\n" + gradebook_table(ws))
    problems = [p for p in check_expected(results) + check_languages(ws, results)
                if p.split("/")[1].split(":")[0] in lessons]
    if problems:
        print("\nDIFFERENCES FROM THE EXPECTED SCORES:\n  " + "\n  ".join(problems))
    else:
        print("\nevery score is as expected")
    print(f"demo finished in {time.monotonic() - t0:.0f} s")
    return 1 if problems or withheld else 0

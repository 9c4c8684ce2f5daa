"""A tiny nbgrader course made in the tests, and a class of hostile submissions for it.

Assignment ``toy``, notebook ``toy.ipynb``; three graded tests (2 + 3 + 1 = 6 points),
each with visible and hidden checks.  The helpers are the course's own
(``coursework.checks.assert_matches``), plus plain torch/builtins comparisons, so
every kind of tampering in issue #6 has something to aim at.
"""

from __future__ import annotations

import json
import os

import nbformat

HIDDEN_MARKER = "HIDDEN_SECRET_PROBE_7_25"   # appears only inside hidden tests
SOLUTION_MARKER = "SOLUTION_ONLY_PROBE_9_81"  # appears only inside the instructor's solution


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=0):
    m = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
         "task": False}
    if grade:
        m["points"] = points
    return {"nbgrader": m}


def source_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    c = nbformat.v4.new_code_cell
    md = nbformat.v4.new_markdown_cell
    nb.cells = [
        md("# Toy lesson\nThree small exercises: $f(x) = x^2$, then\n$$\\frac{d}{dx} x^3 = 3x^2$$\nand `$HOME` stays code."),
        c("import numpy as np\nimport torch\nfrom coursework import checks",
          metadata=_meta("imports", locked=True)),
        c(f"def square(x):\n    ### BEGIN SOLUTION\n    # {SOLUTION_MARKER}\n    return x * x\n    ### END SOLUTION",
          metadata=_meta("square_answer", solution=True)),
        c("checks.assert_matches(square(np.array([1.0, 2.0])), np.array([1.0, 4.0]), what='square([1, 2])',\n"
          "                      misconceptions=[checks.Misconception('reused_layer_counted_once', [1.0, 2.0])])\n"
          "### BEGIN HIDDEN TESTS\n"
          "checks.assert_matches(square(np.array([-3.0, 0.5])), np.array([9.0, 0.25]), what='square([-3, 0.5])')\n"
          "### END HIDDEN TESTS",
          metadata=_meta("test_square", grade=True, locked=True, points=2)),
        c("grad_x = None\n### BEGIN SOLUTION\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
          "(x ** 3).sum().backward()\ngrad_x = x.grad\n### END SOLUTION",
          metadata=_meta("grad_answer", solution=True)),
        c("assert isinstance(grad_x, torch.Tensor), 'grad_x should be a tensor'\n"
          "ref = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
          "(ref ** 3).sum().backward()\n"
          "assert torch.allclose(grad_x, ref.grad), f'expected {ref.grad.tolist()}, got {grad_x}'\n"
          "### BEGIN HIDDEN TESTS\n"
          "assert bool((grad_x == torch.tensor([3.0, 12.0, 27.0])).all()), 'grad_x (hidden check)'\n"
          "### END HIDDEN TESTS",
          metadata=_meta("test_grad", grade=True, locked=True, points=3)),
        c("def double(v):\n    ### BEGIN SOLUTION\n    return 2 * v\n    ### END SOLUTION",
          metadata=_meta("double_answer", solution=True)),
        c("assert double(1.0) == 2.0, 'double(1.0) should be 2.0'\n"
          "### BEGIN HIDDEN TESTS\n"
          f"{HIDDEN_MARKER} = 7.25\n"
          f"assert abs(double({HIDDEN_MARKER}) - 14.5) < 1e-12, 'double(7.25) should be 14.5'\n"
          "### END HIDDEN TESTS",
          metadata=_meta("test_double", grade=True, locked=True, points=1)),
    ]
    return nb


def write_source(folder: str) -> str:
    d = os.path.join(folder, "toy")
    os.makedirs(d, exist_ok=True)
    nbformat.write(source_notebook(), os.path.join(d, "toy.ipynb"))
    return folder


CORRECT = {
    "square_answer": "def square(x):\n    return x * x",
    "grad_answer": "x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n(x ** 3).sum().backward()\ngrad_x = x.grad",
    "double_answer": "def double(v):\n    return 2 * v",
}


def fill(release: nbformat.NotebookNode, answers: dict) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def cell_index(nb, grade_id) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def answers(**changes) -> dict:
    a = dict(CORRECT)
    a.update(changes)
    return a


def submissions(release: nbformat.NotebookNode, workspace: str, listener_port: int = 9) -> dict:
    """Every sample: student -> (files to write, expected score, expected flagged, note).

    ``listener_port``: a TCP port on the grader's loopback that no kernel may reach.
    """
    gb = os.path.join(workspace, "gradebook.db")
    s = {}

    def nb_of(ans, mutate=None):
        nb = fill(release, ans)
        if mutate:
            mutate(nb)
        return nb

    def put(student, nb_or_bytes, score, flagged, note, name="toy.ipynb"):
        data = nb_or_bytes if isinstance(nb_or_bytes, bytes) else nbformat.writes(nb_or_bytes).encode()
        s[student] = ({name: data}, score, flagged, note)

    put("correct", nb_of(CORRECT), 6, False, "all right")
    put("blank", release, 0, False, "the release as handed out")
    put("partly", nb_of(answers(square_answer="def square(x):\n    return x")), 4, False,
        "exercise 1 wrong with a known misconception (diagnosed)")

    def edit_test(nb):
        nb.cells[cell_index(nb, "test_square")].source = "pass"
    put("edited_test", nb_of(answers(square_answer="def square(x):\n    return x"), edit_test), 4, True,
        "test cell replaced by pass, wrong square")

    def delete_test(nb):
        del nb.cells[cell_index(nb, "test_grad")]
    put("deleted_test", nb_of(CORRECT, delete_test), 6, True, "deleted test cell is added back")

    def dup_test(nb):
        i = cell_index(nb, "test_double")
        nb.cells.insert(i, nbformat.from_dict(json.loads(json.dumps(nb.cells[i]))))
    put("duplicated_test", nb_of(CORRECT, dup_test), 6, True, "duplicate removed")

    def strip_meta(nb):
        nb.cells[cell_index(nb, "test_square")].metadata = {}
    put("stripped_metadata", nb_of(CORRECT, strip_meta), 6, True, "metadata restored")

    def points(nb):
        nb.cells[cell_index(nb, "test_double")].metadata["nbgrader"]["points"] = 100
    put("changed_points", nb_of(CORRECT, points), 6, True, "points restored to 1")

    put("patch_torch", nb_of(answers(grad_answer="grad_x = torch.zeros(3)\n"
                                                 "torch.allclose = lambda *a, **k: True\n"
                                                 "torch.Tensor.__eq__ = lambda self, other: True")),
        3, True, "wrong grad + torch.allclose patched: restored, scored 0")
    put("patch_numpy", nb_of(answers(square_answer="def square(x):\n    return x + 1\n"
                                                   "np.allclose = lambda *a, **k: True\n"
                                                   "np.isfinite = lambda a: np.ones(np.shape(a), bool)")),
        4, True, "wrong square + numpy patched")
    put("patch_checks", nb_of(answers(square_answer="def square(x):\n    return x\n"
                                                    "checks.assert_matches = lambda *a, **k: None\n"
                                                    "import coursework.checks\n"
                                                    "coursework.checks.CheckFailure = type('Never', (Exception,), {})")),
        4, True, "wrong square + check helpers patched")
    put("patch_chainrule", nb_of(answers(double_answer="def double(v):\n    return 2 * v\n"
                                                       "import chainrule\n"
                                                       "chainrule.Tensor = None")),
        6, True, "correct answers + chainrule patched: restored, full score, flagged")
    put("rebind_names", nb_of(answers(square_answer="def square(x):\n    return x\n"
                                                    "class checks:\n"
                                                    "    @staticmethod\n"
                                                    "    def assert_matches(*a, **k): pass\n")),
        4, False, "the name `checks` rebound in the notebook (the test re-imports it)")
    put("redefined_builtins", nb_of(answers(
        double_answer="def double(v):\n    return 2 * v if v == 1.0 else 0.0\n"
                      "import builtins\nbuiltins.abs = lambda v: 0.0\n",
        grad_answer="grad_x = 'not a tensor'\n"
                    "def isinstance(obj, cls):\n    return True\n")),
        2, True, "abs/isinstance replaced; wrong answers score 0")
    put("infinite_loop", nb_of(answers(square_answer="def square(x):\n    while True:\n        pass")),
        4, False, "test_square interrupted after the cell timeout")
    put("stubborn_loop", nb_of(answers(
        grad_answer="import time\nwhile True:\n    try:\n        time.sleep(100)\n"
                    "    except BaseException:\n        pass")),
        2, True, "ignores interrupts: stopped by the notebook time limit, later tests 0")
    put("memory_bomb", nb_of(answers(square_answer="def square(x):\n    return x * x\n"
                                                   "hog = bytearray(8 * 1024 ** 3)")),
        6, False, "allocation over the memory limit fails in its own cell")
    put("memory_bomb_in_test", nb_of(answers(double_answer="def double(v):\n"
                                                          "    blob = [bytearray(512 * 1024 ** 2) for _ in range(64)]\n"
                                                          "    return 2 * v")),
        5, False, "allocation inside the tested function: MemoryError, test 0")
    put("sys_exit", nb_of(answers(double_answer="def double(v):\n    return 2 * v\nimport sys\nsys.exit(3)")),
        6, True, "SystemExit is caught by IPython; grading goes on (sys.exit flagged)")
    put("os_exit", nb_of(answers(grad_answer="import os\nos._exit(1)")), 2, True,
        "the kernel dies after test_square: the rest scores 0")
    put("killed_kernel", nb_of(answers(grad_answer="import signal\nsignal.raise_signal(signal.SIGKILL)")), 2, True,
        "SIGKILL to itself: the rest scores 0")
    put("kill_others", nb_of(answers(double_answer="def double(v):\n    return 2 * v\nimport os\n"
                                                   "try:\n    os.kill(os.getppid(), 9)\n"
                                                   "except PermissionError as e:\n    print('refused:', e)")),
        6, True, "killing the grader is refused")
    put("output_flood", nb_of(answers(double_answer="def double(v):\n    return 2 * v\n"
                                                    "print('x' * 20_000_000)\n"
                                                    "for i in range(200000):\n    print(i)")),
        6, False, "20 MB on one line plus many lines: cut off, score intact")
    put("stderr_write", nb_of(answers(square_answer="import sys\ndef square(x):\n"
                                                    "    print('debug: squaring', file=sys.stderr)\n"
                                                    "    return x * x\nprint('hello', file=sys.stderr)")),
        6, False, "stderr does not cost points when the answer is right")
    put("corrupt_json", b'{"cells": [ {"cell_type": "code", "source": "def square(x', 0, True, "not JSON")
    put("wrong_name", nb_of(CORRECT), 6, False, "renamed file is found and graded", name="toy (1).ipynb")
    s["missing_file"] = ({"notes.txt": b"I forgot"}, 0, True, "no notebook at all")
    put("reads_others", nb_of(answers(double_answer=(
        "def double(v):\n    return 2 * v\n"
        "stolen = []\n"
        f"for p in [{gb!r}, {os.path.join(workspace, 'submitted')!r}, "
        f"{os.path.join(workspace, 'source', 'toy', 'toy.ipynb')!r}, '/etc/shadow', '../']:\n"
        "    try:\n"
        "        stolen.append(open(p, 'rb').read(100))\n"
        "    except Exception as e:\n"
        "        print('blocked', type(e).__name__)\n"
        "import os\n"
        "try:\n    print(os.listdir('/tmp'))\nexcept Exception as e:\n    print('blocked', type(e).__name__)\n"
        "print('stolen', len(stolen))"))),
        6, True, "reading the gradebook/other students/sources is refused")

    planted = os.path.join(workspace, "planted")
    put("changes_files", nb_of(answers(double_answer=(
        "def double(v):\n    return 2 * v\n"
        "import os, shutil, sqlite3\n"
        f"gradebook = {gb!r}\n"
        "attempts = [lambda: sqlite3.connect(gradebook).execute('delete from grade'),\n"
        "            lambda: os.remove(gradebook), lambda: os.rename(gradebook, gradebook + '.x'),\n"
        f"            lambda: os.mkdir({planted!r}), lambda: os.symlink(gradebook, 'link'),\n"
        f"            lambda: shutil.rmtree({os.path.join(workspace, 'submitted')!r}),\n"
        "            lambda: os.remove('x', dir_fd=os.open('.', os.O_RDONLY)),\n"
        "            lambda: __import__('multiprocessing').get_context('spawn').Process(target=print).start()]\n"
        "for attempt in attempts:\n"
        "    try:\n"
        "        attempt()\n"
        "        print('done')\n"
        "    except Exception as e:\n"
        "        print('blocked', type(e).__name__)\n"
        "os.mkdir('inside')\n"
        "os.rename('inside', 'inside2')\n"
        "os.rmdir('inside2')\n"
        "print('its own folder is writable')"))),
        6, True, "deleting, renaming, creating files outside its folder, and SQLite, are refused")

    def kernel(nb):
        nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    put("other_kernel", nb_of(CORRECT, kernel), 6, False, "kernelspec replaced by the sandboxed python kernel")

    def transformer(nb):
        nb.cells[cell_index(nb, "square_answer")].source = (
            "def square(x):\n    return x\n"
            "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])")
    put("ipython_hook", nb_of(CORRECT, transformer), 0, True,
        "every later cell rewritten to `pass`: no verdicts, nothing scores")
    put("frame_peek", nb_of(answers(square_answer=(
        "import sys\n"
        "def square(x):\n"
        "    f = sys._getframe(1)\n"
        "    while f is not None and 'expected' not in f.f_locals:\n"
        "        f = f.f_back\n"
        "    return f.f_locals['expected'] if f is not None else x\n"))),
        4, True, "reading the reference from the checker's frame is refused")
    put("forged_verdict", nb_of(answers(square_answer=(
        "import os, json\n"
        "def square(x):\n    return x\n"
        "line = json.dumps({'body': json.dumps({'grade_id': 'test_square', 'status': 'pass', 'seq': 99}),"
        " 'mac': '0' * 64}) + '\\n'\n"
        "import stat\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        if stat.S_ISREG(os.fstat(fd).st_mode):\n"
        "            os.write(fd, line.encode())\n"
        "    except OSError:\n        pass\n"))),
        4, True, "forged verdict lines fail the HMAC")
    native_samples(put, nb_of, workspace, listener_port)
    return s


# Files a student could only have placed in the workspace by hand (collect passes over links):
# student -> (link kind, target inside the workspace).  Each scores 0, flagged, and nothing of the
# target is graded as theirs.
LINKED = {
    "symlink_to_source": ("symlink", ("source", "toy", "toy.ipynb"), "the instructor's notebook (solutions)"),
    "symlink_to_other": ("symlink", ("submitted", "correct", "toy", "toy.ipynb"), "another student's notebook"),
    "hardlink_to_source": ("hardlink", ("source", "toy", "toy.ipynb"), "the instructor's notebook, hard-linked"),
}


def plant_links(workspace: str) -> None:
    """Put the LINKED submissions into <workspace>/submitted (after collect, as a student with a shell would)."""
    for student, (kind, target, _) in LINKED.items():
        folder = os.path.join(workspace, "submitted", student, "toy")
        os.makedirs(folder, exist_ok=True)
        dst = os.path.join(folder, "toy.ipynb")
        (os.symlink if kind == "symlink" else os.link)(os.path.join(workspace, *target), dst)


# What a sample's output says when one of its attempts worked (none may appear in any output).
BREACH = "BREACH:"
# The samples only the operating system stops (bubblewrap); the weak sandbox does not grade them.
NATIVE = ["native_read", "native_write", "ctypes_libc", "proc_discovery", "network", "fork_bomb", "signals",
          "fill_disk", "fd_exhaustion", "own_extension", "segfault"]


def native_samples(put, nb_of, workspace: str, port: int) -> None:
    """Attacks only the operating system can stop: native code, /proc, the network, processes,
    disk and descriptors.  Each tries, prints BREACH for whatever worked, and its answers are right."""
    gb = os.path.join(workspace, "gradebook.db")
    other = os.path.join(workspace, "submitted", "correct", "toy", "toy.ipynb")
    source = os.path.join(workspace, "source", "toy", "toy.ipynb")
    repo_solutions = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                  "solutions")
    targets = [gb, other, source, repo_solutions + "/README.md"]

    def sample(student, code, note, score=6, **changes):
        base = answers(**changes)
        base["double_answer"] = base["double_answer"] + "\n" + code
        put(student, nb_of(base), score, True, note)

    sample("native_read", (
        "import mmap, numpy, os, torch\n"
        f"for path in {targets!r}:\n"
        "    for how, read in [('torch.from_file', lambda: bytes(torch.from_file(path, size=16, dtype=torch.uint8).tolist())),\n"
        "                      ('numpy.memmap', lambda: numpy.memmap(path, mode='r', shape=(16,)).tobytes()),\n"
        "                      ('mmap', lambda: mmap.mmap(os.open(path, os.O_RDONLY), 16, prot=mmap.PROT_READ)[:16])]:\n"
        "        try:\n"
        "            print('BREACH:', how, path, read())\n"
        "        except Exception as e:\n"
        "            print('refused', how, type(e).__name__)\n"),
        "torch.from_file / numpy.memmap / mmap on the gradebook, another student, the solutions: nothing there")
    sample("native_write", (
        "import numpy, torch\n"
        f"for path in {[gb, other]!r}:\n"
        "    try:\n"
        "        torch.from_file(path, shared=True, size=4096, dtype=torch.uint8).fill_(32)\n"
        "        print('BREACH: torch.from_file wrote', path)\n"
        "    except Exception as e:\n"
        "        print('refused torch.from_file', type(e).__name__)\n"
        "    try:\n"
        "        m = numpy.memmap(path, mode='r+', shape=(4096,))\n"
        "        m[:] = 32\n"
        "        m.flush()\n"
        "        print('BREACH: numpy.memmap wrote', path)\n"
        "    except Exception as e:\n"
        "        print('refused numpy.memmap', type(e).__name__)\n"),
        "blanking the gradebook and another student's notebook through native writes: nothing there")
    sample("ctypes_libc", (
        "try:\n"
        "    import ctypes\n"
        "    libc = ctypes.CDLL(None)\n"
        f"    print('BREACH: ctypes open', libc.open({gb.encode()!r}, 2))\n"
        "except Exception as e:\n"
        "    print('refused ctypes', type(e).__name__)\n"),
        "libc's open through ctypes")
    sample("proc_discovery", (
        "import os\n"
        "seen = []\n"
        "for pid in range(1, 4096):\n"
        "    for what in ('cwd', 'root', 'exe', 'fd/0', 'fd/3', 'fd/4', 'fd/5', 'fd/6', 'fd/7'):\n"
        "        try:\n"
        "            seen.append(os.readlink(f'/proc/{pid}/{what}'))\n"
        "        except OSError:\n"
        "            pass\n"
        "    try:\n"
        "        os.stat(f'/proc/{pid}')\n"
        "        seen.append(f'pid {pid}')\n"
        "    except OSError:\n"
        "        pass\n"
        "print('processes and files seen:', sorted(set(seen)))\n"),
        "os.readlink/os.stat over /proc (no audit event): only its own namespace is there")
    sample("network", (
        "import socket\n"
        "attempts = {\n"
        f"    'tcp loopback': lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2),\n"
        f"    'udp': lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {port})),\n"
        "    'dns': lambda: socket.getaddrinfo('pypi.org', 443),\n"
        f"    'torch TCPStore (native)': lambda: __import__('torch.distributed', fromlist=['TCPStore']).TCPStore(\n"
        f"        '127.0.0.1', {port}, is_master=False, timeout=__import__('datetime').timedelta(seconds=0.5)),\n"
        "}\n"
        "for name, attempt in attempts.items():\n"
        "    try:\n"
        "        attempt()\n"
        "        print('BREACH:', name)\n"
        "    except Exception as e:\n"
        "        print('refused', name, type(e).__name__)\n"),
        "TCP to the grader's loopback, UDP, DNS, torch's native TCPStore: no network")
    sample("fork_bomb", (
        "import os\n"
        "for start in (lambda: os.fork(), lambda: __import__('multiprocessing').get_context('fork').Process(target=print).start(),\n"
        "              lambda: __import__('subprocess').Popen(['sh', '-c', ':(){ :|:& };:'])):\n"
        "    try:\n"
        "        for _ in range(10000):\n"
        "            if start() == 0:\n"
        "                os._exit(0)\n"
        "        print('BREACH: processes started')\n"
        "    except Exception as e:\n"
        "        print('refused', type(e).__name__)\n"),
        "os.fork, multiprocessing and a shell fork bomb")
    sample("signals", (
        "import os, signal\n"
        "for pid in (1, os.getppid(), -1):\n"
        "    for send in (os.kill, os.killpg):\n"
        "        try:\n"
        "            send(pid, signal.SIGKILL)\n"
        "            print('BREACH: signal sent to', pid)\n"
        "        except Exception as e:\n"
        "            print('refused', type(e).__name__)\n"),
        "SIGKILL to pid 1, the parent, everyone")
    sample("fill_disk", (
        "import os\n"
        "for folder in ('.', '/tmp'):\n"
        "    written = 0\n"
        "    try:\n"
        "        for i in range(100000):\n"
        "            with open(os.path.join(folder, f'fill{i}'), 'wb') as fh:\n"
        "                for _ in range(16):\n"
        "                    fh.write(b'x' * 1024 * 1024)\n"
        "                    written += 1\n"
        "        print('BREACH: wrote', written, 'MiB')\n"
        "    except OSError as e:\n"
        "        print('stopped after', written // 64 * 64, 'MiB or so:', type(e).__name__)\n"
        "    for name in os.listdir(folder):\n"
        "        if name.startswith('fill'):\n"
        "            os.remove(os.path.join(folder, name))\n"),
        "filling its home and /tmp: each is a small tmpfs; the kernel goes on")
    sample("fd_exhaustion", (
        "import os\n"
        "held = []\n"
        "try:\n"
        "    while True:\n"
        "        held.append(os.open('/dev/null', os.O_RDONLY))\n"
        "except OSError as e:\n"
        "    print('descriptors exhausted after', len(held) // 100 * 100, 'or so:', type(e).__name__)\n"
        "for fd in held:\n"
        "    os.close(fd)\n"),
        "opening descriptors until EMFILE (RLIMIT_NOFILE), then letting go")
    sample("own_extension", (
        "import _bisect, importlib.machinery, importlib.util, shutil\n"
        "shutil.copyfile(_bisect.__file__, 'mine.so')\n"
        "for how in ('loader', 'sys.modules'):\n"
        "    try:\n"
        "        if how == 'sys.modules':\n"
        "            import sys\n"
        "            sys.modules.pop('_imp', None)\n"
        "            importlib.import_module('_imp')\n"
        "        loader = importlib.machinery.ExtensionFileLoader('_bisect', 'mine.so')\n"
        "        importlib.util.module_from_spec(importlib.util.spec_from_loader('_bisect', loader))\n"
        "        print('BREACH: loaded a shared library the notebook wrote', how)\n"
        "    except Exception as e:\n"
        "        print('refused', how, type(e).__name__)\n"),
        "a C extension the notebook wrote itself (native code in the kernel, able to read its memory)")
    put("segfault", nb_of(answers(grad_answer="import faulthandler\nfaulthandler._sigsegv()")), 2, True,
        "a segmentation fault in native code: the kernel dies, later tests 0, the class goes on")

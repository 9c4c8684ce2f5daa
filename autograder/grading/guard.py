"""The in-kernel guard: runs the graded tests where the student's code cannot reach them.

Installed by :mod:`autograder.grading.kernel` *before* IPython starts and before any
student code exists.  Everything it needs (the trusted test sources, hidden tests
included, a secret key, the snapshot of every protected module) lives only in the
closure of one audit hook.  Python offers no way to remove an audit hook or to list
the installed ones, and the hook refuses the few doors that lead to a closure
(``gc.get_referrers``/``get_objects``, ``ctypes``, frame introspection while a test
runs), so the student's namespace cannot read or rewrite it.

Its side of :mod:`autograder.grading.protocol` (the grader writes these cells; the student
never sees their content):

* ``begin_cell()``, the ``BEGIN_EVENT``: first cell, before student code; turns
  enforcement on and remembers IPython's namespace.
* ``stub_cell(grade_id)``, the ``TEST_EVENT``: stands where a test cell stands.  The
  hook (1) compares every protected module, class and builtin with the snapshot and
  puts back whatever the student replaced (and reports it), (2) runs the trusted
  test source in a fresh namespace built from the student's answers, with pristine
  builtins and freshly imported helpers, (3) checks the protected state again,
  (4) writes an HMAC-signed verdict line to a file descriptor opened before the
  student existed.  A failed test becomes the cell's error output: the check's message
  (expected, got, diagnosis) and the frames of the student's own code, nothing of the
  guard or of the trusted source, so the notebook shows the student what went wrong.

The grader trusts only signed verdict lines; a test with no verdict scores 0.
"""

from __future__ import annotations

import _imp
import builtins
import importlib.machinery
import linecache
import os
import sys

from .protocol import BEGIN_EVENT, TEST_EVENT, make_signer

# Modules whose attributes the tests rely on.  Submodules of these that are loaded
# when the guard is installed are protected too.
PROTECTED_PREFIXES = ("torch", "numpy", "chainrule", "coursework", "math", "builtins", "operator",
                      "functools", "collections", "json", "re")
EAGER_IMPORTS = ("numpy", "numpy.testing", "numpy.linalg", "math", "torch", "torch.nn",
                 "torch.nn.functional", "torch.autograd", "torch.func", "torch.testing", "torch.linalg",
                 "chainrule", "coursework", "coursework.checks", "coursework.problems")
# Deep torch/numpy internals are left out: they are not what a test calls directly,
# and fingerprinting them all would cost time for every test.
SKIP_SUBSTRINGS = ("._", "torch.testing._internal", "torch.ao", "torch.distributed", "torch.onnx",
                   "torch.fx", "torch.export", "torch.utils", "torch.cuda", "torch.backends", "torch.xpu",
                   "torch.mps", "torch.mtia", "torch.package", "torch.profiler", "torch.jit",
                   "numpy.f2py", "numpy.distutils", "numpy.typing", "numpy.ma")
FRAME_EVENTS = ("sys._getframe", "sys._current_frames")
ALWAYS_BLOCKED_AFTER_BEGIN = (
    "gc.get_referrers", "gc.get_referents", "gc.get_objects", "sys.settrace", "sys.setprofile",
    "sys.addaudithook", "sys._current_frames", "os.kill", "os.killpg", "signal.pthread_kill",
    "os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "subprocess.Popen",
    "socket.connect", "socket.bind", "socket.sendto", "sys.remote_exec", "pty.spawn",
    "winreg", "ctypes.", "cffi",
    # SQLite opens files in C, past the "open" event: a notebook could rewrite the gradebook.
    "sqlite3.", "dbm.",
)
# Events that change the file system, with the positions of their path arguments and of their
# dir_fd arguments (a path relative to a directory descriptor cannot be checked, so it is refused;
# the event passes -1 when there is none).
CHANGES_FILES = {
    "os.remove": ((0,), (1,)), "os.rmdir": ((0,), (1,)), "os.mkdir": ((0,), (2,)),
    "os.rename": ((0, 1), (2, 3)), "os.link": ((0, 1), (2, 3)), "os.symlink": ((0, 1), (2,)),
    "os.truncate": ((0,), ()), "os.chmod": ((0,), (2,)), "os.chown": ((0,), (3,)),
    "os.utime": ((0,), (3,)), "os.chflags": ((0,), ()), "os.lchflags": ((0,), ()),
    "shutil.copyfile": ((1,), ()), "shutil.copymode": ((1,), ()), "shutil.copystat": ((1,), ()),
    "shutil.copytree": ((1,), ()), "shutil.rmtree": ((0,), ()), "shutil.move": ((0, 1), ()),
    "shutil.chown": ((0,), ()), "shutil.make_archive": ((0,), ()), "shutil.unpack_archive": ((1,), ()),
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _is_protected_module(name: str) -> bool:
    if not any(name == p or name.startswith(p + ".") for p in PROTECTED_PREFIXES):
        return False
    if name.startswith(("chainrule", "coursework")):
        return True
    return not any(s in name for s in SKIP_SUBSTRINGS)


_PRELOADED: list = []


def preload() -> None:
    """Import the protected modules and let them fill their lazy caches (once per kernel).

    Run by the kernel before its job is known; nothing here depends on the job or runs
    student code.  ``install`` calls it too, for a kernel that skipped it."""
    if _PRELOADED:
        return
    import importlib

    for name in EAGER_IMPORTS:
        try:
            importlib.import_module(name)
        except Exception:  # a module the course does not have (yet) is simply not protected
            pass
    # Warm-up: let the libraries fill their lazy caches (chainrule's backend, ...) now,
    # so that the snapshot holds the values they keep.
    try:
        import chainrule as _cr

        _t = _cr.tensor([1.0, 2.0], requires_grad=True)
        (_t * _t).sum().backward()
    except Exception:
        pass
    _PRELOADED.append(True)


def install(spec: dict, report_fd: int) -> None:
    """Import what the job adds, and install the audit hook (the snapshot is taken at the begin cell)."""
    import importlib

    preload()
    for name in spec.get("extra_imports", ()):
        try:
            importlib.import_module(name)
        except Exception:
            pass
    torch_dir = ""
    if "torch" in sys.modules:
        torch_dir = os.path.dirname(os.path.realpath(sys.modules["torch"].__file__))

    key = bytes.fromhex(spec["key"])
    tests: dict[str, str] = dict(spec["tests"])
    preludes: dict[str, str] = dict(spec.get("preludes", {}))
    sandbox = os.path.realpath(spec["sandbox"])
    read_roots = tuple(os.path.realpath(p) for p in spec["read_roots"])
    _getattr, _id, _isinstance, _type, _len = getattr, id, isinstance, type, len
    _realpath, _write, _compile, _exec = os.path.realpath, os.write, compile, exec
    _fspath, _hasattr, _getline = os.fspath, hasattr, linecache.getline
    _exception_traceback = BaseException.__dict__["__traceback__"].__get__   # no subclass property runs
    _set_traceback = BaseException.__dict__["__traceback__"].__set__
    _type_name = type.__dict__["__name__"].__get__                           # nor a metaclass's
    sign = make_signer(key)
    own_pid = os.getpid()
    real_create_dynamic = _imp.create_dynamic
    _module_spec = importlib.machinery.ModuleSpec
    _getframe = sys._getframe
    module_type = type(sys)
    function_type = type(install)

    # ---------------------------------------------------------------- snapshot
    def snapshot():
        mods = {}
        for name, mod in list(sys.modules.items()):
            if _isinstance(mod, module_type) and _is_protected_module(name) and name != "builtins":
                mods[name] = (mod, dict(mod.__dict__))
        classes = {}
        for name, (mod, d) in mods.items():
            if not name.startswith(("chainrule", "coursework")):
                continue
            for attr, value in d.items():
                if _isinstance(value, type) and getattr(value, "__module__", "").startswith(name.split(".")[0]):
                    classes[f"{value.__module__}.{value.__qualname__}"] = (value, dict(value.__dict__))
        for cls in _extra_classes():
            classes[f"{cls.__module__}.{cls.__qualname__}"] = (cls, dict(cls.__dict__))
        return mods, classes

    def _extra_classes():
        out = []
        torch = sys.modules.get("torch")
        if torch is not None:
            for path in ("Tensor", "nn.Module", "nn.Linear", "nn.Parameter", "autograd.Function"):
                obj = torch
                for part in path.split("."):
                    obj = _getattr(obj, part, None)
                if _isinstance(obj, type):
                    out.append(obj)
        return out

    # The snapshot is taken at "autograder.begin": IPython is up (it installs its own
    # builtins), and no student code has run yet.
    mods: dict = {}
    classes: dict = {}
    pristine_builtins: dict = {}
    protected_ids: set = set()
    meta_path: list = []
    path_hooks: list = []
    gc_module = sys.modules.get("gc")
    gc_callbacks: list = []

    def take_snapshot():
        m, c = snapshot()
        mods.update(m)
        classes.update(c)
        pristine_builtins.update(builtins.__dict__)
        for _name, (_mod, d) in mods.items():
            protected_ids.add(_id(_mod))
            for v in d.values():
                if _isinstance(v, (function_type, type)):
                    protected_ids.add(_id(v))
        for _cls, d in classes.values():
            for v in d.values():
                if _isinstance(v, function_type):
                    protected_ids.add(_id(v))
        meta_path[:] = list(sys.meta_path)
        path_hooks[:] = list(sys.path_hooks)
        if gc_module is not None:
            gc_callbacks[:] = list(gc_module.callbacks)
    lib_roots = tuple(_realpath(os.path.dirname(_getattr(sys.modules[m], "__file__", "") or "."))
                      for m in ("coursework", "chainrule") if m in sys.modules)

    state = {"begun": False, "in_test": 0, "seq": 0, "ran": set(), "user_ns": None,
             "cell_dir": None, "reentrant": False}

    def torch_state():
        torch = sys.modules.get("torch")
        if torch is None:
            return None
        return (torch.is_grad_enabled(), torch.get_default_dtype())

    pristine_torch_state = torch_state()
    state["shell"] = None

    # ---------------------------------------------------------------- restore
    def check_and_restore() -> list[str]:
        """Compare with the snapshot; put back what changed; say what was changed."""
        changes = []
        for name, (mod, d) in mods.items():
            live = mod.__dict__
            if sys.modules.get(name) is not mod:
                changes.append(f"sys.modules[{name!r}] replaced")
                sys.modules[name] = mod
            if _type(mod) is not module_type and name in ("torch", "numpy"):
                pass
            own = name.startswith(("chainrule", "coursework"))
            for attr, value in d.items():
                if not own and attr[:1] == "_" and attr[:2] != "__":
                    continue  # torch/numpy private state (lazy caches, monitors) is theirs to change
                cur = live.get(attr, live)  # live itself as a sentinel for "missing"
                if cur is not value:
                    if attr in ("__warningregistry__", "__loader__", "__spec__", "__file__", "__cached__"):
                        continue
                    if torch_dir and _getattr(cur, "__wrapped__", None) is value:
                        # torch wraps some functions when torch._dynamo is first imported
                        code = _getattr(cur, "__code__", None)
                        if code is not None and _realpath(code.co_filename).startswith(torch_dir + os.sep):
                            d[attr] = cur
                            continue
                    if cur is live:
                        changes.append(f"{name}.{attr} deleted")
                    else:
                        changes.append(f"{name}.{attr} replaced")
                    live[attr] = value
        for qual, (cls, d) in classes.items():
            live = cls.__dict__
            for attr, value in d.items():
                if live.get(attr, live) is not value and attr not in ("__weakref__", "__dict__", "__doc__"):
                    changes.append(f"{qual}.{attr} replaced")
                    try:
                        type.__setattr__(cls, attr, value)
                    except Exception:
                        pass
            for attr in [a for a in live if a not in d]:
                if attr in ("__abstractmethods__", "_abc_impl", "__parameters__"):
                    continue
                changes.append(f"{qual}.{attr} added")
                try:
                    type.__delattr__(cls, attr)
                except Exception:
                    pass
        live_b = builtins.__dict__
        for attr, value in pristine_builtins.items():
            if live_b.get(attr, live_b) is not value and attr not in ("_", "__", "___", "input", "raw_input", "getpass"):
                changes.append(f"builtins.{attr} replaced")
                live_b[attr] = value
        if list(sys.meta_path) != meta_path:
            changes.append("sys.meta_path changed")
            sys.meta_path[:] = meta_path
        if list(sys.path_hooks) != path_hooks:
            changes.append("sys.path_hooks changed")
            sys.path_hooks[:] = path_hooks
        if state["begun"] and _imp.create_dynamic is not load_extension:
            changes.append("_imp.create_dynamic replaced")
            _imp.create_dynamic = load_extension
        if gc_module is not None and list(gc_module.callbacks) != gc_callbacks:
            changes.append("gc.callbacks changed")
            gc_module.callbacks[:] = gc_callbacks
        if sys.gettrace() is not None or sys.getprofile() is not None:
            changes.append("trace/profile function installed")
        ts = torch_state()
        if ts != pristine_torch_state and pristine_torch_state is not None:
            changes.append(f"torch global state changed {ts} (reset)")
            torch = sys.modules["torch"]
            torch.set_grad_enabled(pristine_torch_state[0])
            torch.set_default_dtype(pristine_torch_state[1])
        shell = state.get("shell")
        if shell is not None:
            for attr in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
                if list(_getattr(shell, attr, [])) != state["ipy"][attr]:
                    changes.append(f"IPython {attr} changed")
        return changes

    # ---------------------------------------------------------------- report
    def report(record: dict) -> None:
        state["seq"] += 1
        record["seq"] = state["seq"]
        line = sign(record)
        try:
            while line:
                n = _write(report_fd, line)
                line = line[n:]
        except OSError:
            pass

    # ---------------------------------------------------------------- run one test
    def run_test(grade_id: str) -> None:
        if not state["begun"] or grade_id not in tests:
            report({"grade_id": grade_id, "status": "refused", "reason": "unknown test or guard not started"})
            raise RuntimeError(f"autograder: refused to run test {grade_id!r}")
        if grade_id in state["ran"]:
            report({"grade_id": grade_id, "status": "repeat"})
            return
        state["ran"].add(grade_id)
        before = check_and_restore()
        user_ns = state["user_ns"] or {}
        ns = {k: v for k, v in list(user_ns.items())
              if not k.startswith("_") and k not in pristine_builtins}
        ns["__builtins__"] = dict(pristine_builtins)
        ns["__name__"] = "__main__"
        record = {"grade_id": grade_id, "tampered_before": before}
        error = None
        state["in_test"] += 1
        try:
            prelude = preludes.get(grade_id, "")
            if prelude:
                _exec(_compile(prelude, f"<autograder-prelude {grade_id}>", "exec"), ns)
            _exec(_compile(tests[grade_id], f"<autograder-test {grade_id}>", "exec"), ns)
            record["status"] = "pass"
        except BaseException as exc:  # noqa: BLE001 - every failure is a verdict
            error = exc
            record["status"] = "timeout" if _isinstance(exc, KeyboardInterrupt) else "fail"
            ename = _type_name(_type(exc))
            try:
                record["error"] = f"{ename}: {exc}"[:4000]
            except BaseException:
                record["error"] = ename
            # Still inside the test (frame doors closed): the student's exception's __str__ and
            # the lines of their own cells are read here.
            try:
                shown = failure_display(exc, ename, record["error"])
            except BaseException:  # noqa: BLE001 - e.g. MemoryError while the test's frames hold memory
                shown = (ename, "", [record["error"]])
            _set_traceback(exc, None)   # let go of the test's frames (and what they hold) now
        finally:
            state["in_test"] -= 1
        after = check_and_restore()
        record["tampered_during"] = after
        if after and record["status"] == "pass":
            record["status"] = "tampered"
        report(record)
        if after and error is None:
            message = "autograder: the code under test changed protected modules: " + "; ".join(after[:5])
            error, shown = RuntimeError(message), ("RuntimeError", message, [f"RuntimeError: {message}"])
        if error is not None:
            show(error, shown)

    def failure_display(exc: BaseException, ename: str, line: str) -> tuple:
        """(name, message, traceback lines) of a failed test: the frames of the student's own code
        and the check's message, nothing of the guard or of the trusted test source."""
        state["reentrant"] = True   # reading tb_frame is audited; these are the guard's own reads
        try:
            frames = []
            tb = _exception_traceback(exc)
            while tb is not None:
                code = tb.tb_frame.f_code
                if student_file(code.co_filename):
                    frames.append((code.co_filename, tb.tb_lineno, code.co_name))
                tb = tb.tb_next
        finally:
            state["reentrant"] = False
        lines = []
        for filename, lineno, name in frames:
            where = "your code" if filename.startswith(("<ipython-input", cell_dir_of())) else filename
            lines.append(f"  {where}, line {lineno}, in {name}")
            text = _getline(filename, lineno).strip()
            if text:
                lines.append(f"    {text}")
        if lines:
            lines.insert(0, "Traceback of your code (most recent call last):")
        lines.append(line)
        return ename, line[len(ename) + 2:], lines

    def show(error: BaseException, shown: tuple) -> None:
        """The failure as the cell's error output; without IPython, the exception itself."""
        shell = state.get("shell")
        if shell is None or not _hasattr(shell, "_showtraceback"):
            raise error
        if _isinstance(error, KeyboardInterrupt):
            return   # the grader adds its own "cell did not finish" error
        ename, message, lines = shown
        shell._showtraceback(_type(ename, (Exception,), {}), message, lines)

    def cell_dir_of() -> str:
        return state["cell_dir"] or "<no cell folder>"

    def student_file(fn: str) -> bool:
        """Whether code compiled from this file name is the student's (a notebook cell)."""
        cell_dir = state["cell_dir"]
        return fn == "<string>" or bool(cell_dir and fn.startswith(cell_dir)) or fn.startswith(sandbox) \
            or fn.startswith("<ipython-input")

    # ---------------------------------------------------------------- the hook
    def student_frame_on_top() -> bool:
        """Whether code written by the student runs above the test currently executing."""
        frame = _getframe(2)
        while frame is not None:
            fn = frame.f_code.co_filename
            if fn.startswith("<autograder-test") or fn.startswith("<autograder-prelude"):
                return False
            if student_file(fn):
                return True
            frame = frame.f_back
        return False

    def path_allowed(path, write: bool) -> bool:
        if _isinstance(path, int):
            return True
        try:
            p = _realpath(_fspath(path))
        except Exception:
            return False
        if p == sandbox or p.startswith(sandbox + os.sep):
            return True
        if write:
            return p in ("/dev/null",)
        return any(p == r or p.startswith(r + os.sep) for r in read_roots)

    def load_extension(spec, *file):
        """``_imp.create_dynamic`` for the student: C extensions only from Python's and the course's
        folders, never a shared library the notebook wrote (that would be native code in this process)."""
        name, origin = str(spec.name), str(spec.origin)    # read once: the spec may be the student's object
        path = _realpath(origin)
        if path == sandbox or path.startswith(sandbox + os.sep) or not any(
                path == r or path.startswith(r + os.sep) for r in read_roots):
            raise PermissionError(f"autograder sandbox: loading the extension {origin!r} is not allowed")
        return real_create_dynamic(_module_spec(name, None, origin=origin), *file)

    def refuse_process(*args, **kwargs):
        raise PermissionError("autograder sandbox: starting a process is not allowed while grading")

    def hook(event, args):
        if state["reentrant"]:
            return
        if event == TEST_EVENT:
            state["reentrant"] = True
            try:
                grade_id = str(args[0])
            finally:
                state["reentrant"] = False
            run_test(grade_id)
            return
        if event == BEGIN_EVENT:
            if state["begun"]:
                return
            state["reentrant"] = True
            try:
                take_snapshot()
                # _posixsubprocess.fork_exec starts processes (multiprocessing's "spawn") without
                # any audit event: replace it, and the reference subprocess keeps (``_fork_exec``,
                # called after Popen's audit event), and refuse a fresh import that would bring it
                # back.  Whatever reaches it anyway meets the kernel's process filter.
                import _posixsubprocess
                import subprocess
                _posixsubprocess.fork_exec = subprocess._fork_exec = refuse_process
                _imp.create_dynamic = load_extension
            finally:
                state["reentrant"] = False
            state["begun"] = True
            caller = _getframe(1)
            while caller is not None and caller.f_code.co_filename.startswith(os.path.dirname(__file__)):
                caller = caller.f_back
            if caller is not None:
                state["cell_dir"] = os.path.dirname(caller.f_code.co_filename) or None
            try:
                from IPython import get_ipython
                shell = get_ipython()
            except Exception:
                shell = None
            if shell is not None:
                state["shell"] = shell
                state["user_ns"] = shell.user_ns
                state["ipy"] = {a: list(_getattr(shell, a, [])) for a in
                                ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")}
            return
        if not state["begun"]:
            return
        if event == "import" and args and args[0] in ("_posixsubprocess", "_imp"):
            raise PermissionError(f"autograder sandbox: importing {args[0]} afresh is not allowed")
        if event in ("os.kill", "os.killpg") and args and args[0] == own_pid:
            return   # the kernel interrupting itself (an interrupt_request from the grader)
        if event.startswith(ALWAYS_BLOCKED_AFTER_BEGIN):
            raise PermissionError(f"autograder sandbox: {event} is not allowed while grading")
        if event == "object.__setattr__" or event == "object.__delattr__":
            obj, name = args[0], args[1]
            if _id(obj) in protected_ids:
                raise PermissionError(f"autograder sandbox: cannot change {name} of a protected object")
            return
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            write = False
            if _isinstance(mode, str) and any(c in mode for c in "wax+"):
                write = True
            if _isinstance(flags, int) and flags & WRITE_FLAGS:
                write = True
            if not path_allowed(path, write):
                raise PermissionError(f"autograder sandbox: access to {path!r} is not allowed")
            return
        if event in CHANGES_FILES:
            paths, dir_fds = CHANGES_FILES[event]
            for i in dir_fds:
                if i < _len(args) and args[i] not in (None, -1):
                    raise PermissionError(f"autograder sandbox: {event} with dir_fd is not allowed")
            for i in paths:
                if i < _len(args) and args[i] is not None and not path_allowed(args[i], True):
                    raise PermissionError(f"autograder sandbox: {event} on {args[i]!r} is not allowed")
            return
        if event in ("os.listdir", "os.scandir"):
            if args and args[0] is not None and not path_allowed(args[0], False):
                raise PermissionError(f"autograder sandbox: listing {args[0]!r} is not allowed")
            return
        if state["in_test"] and (event in FRAME_EVENTS or (
                event == "object.__getattr__" and args[1] in ("tb_frame", "gi_frame", "cr_frame", "ag_frame"))):
            state["reentrant"] = True
            try:
                blocked = student_frame_on_top()
            finally:
                state["reentrant"] = False
            if blocked:
                raise PermissionError("autograder sandbox: frame introspection is not allowed during a test")

    sys.addaudithook(hook)
    del hook

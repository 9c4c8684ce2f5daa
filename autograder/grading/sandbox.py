"""The operating-system sandbox of a grading kernel: bubblewrap (Linux namespaces), or the weak fallback.

Inside bubblewrap a student's kernel sees a read-only file system holding only the Python
installation, its packages, the course libraries (``lib/``) and the grader modules the kernel
itself runs (``kernel``, ``guard``, ``protocol``, ``no_new_processes``); a private writable home
(a size-capped tmpfs, filled with that notebook's release files) and its own ``/tmp``; its own
``/proc`` (a new pid namespace: no other process exists), no network (a new net namespace: only
its own loopback), no capabilities (a user namespace, uid ``nobody``), a new session, and it is
killed with its parent. It never sees ``solutions/``, the grading workspace, the gradebook,
other submissions or the grader's private folder. The only grader folder it sees is its
*handoff* folder: the spec it reads and deletes before any student code runs, and the ZMQ
``ipc`` socket files through which the grader talks to it (TCP cannot cross the net namespace).

``weak`` is the sandbox of machines without user namespaces (a Docker container with the
default seccomp profile): resource limits, the audit-hook guard, and the drop to ``nobody``
when the grader is root.  It is used only when asked for (``--allow-weak-sandbox``).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass

from . import scratch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BWRAP_ENV = "AUTOGRADER_BWRAP"          # the bubblewrap binary (default: bwrap on PATH)
HOME = "/home/student"                  # the kernel's writable folder, inside the sandbox
# The only grader modules a kernel runs: the launcher, the guard, the protocol they share and
# the process filter.
KERNEL_MODULES = ("autograder/__init__.py", "autograder/grading/__init__.py", "autograder/grading/kernel.py",
                  "autograder/grading/guard.py", "autograder/grading/protocol.py",
                  "autograder/grading/no_new_processes.py")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
                "/sys/devices/system/cpu")
NOBODY = 65534
HOW_TO_FIX = ("Grade on a Linux host or VM with bubblewrap installed (Debian: apt-get install bubblewrap), "
              "or in a container allowed to create namespaces (docker run --security-opt seccomp=unconfined "
              "--security-opt apparmor=unconfined ...). To grade anyway with the weaker sandbox (resource "
              "limits and the audit hook only: native code can read and write whatever this user can), "
              "pass --allow-weak-sandbox; see autograder/SECURITY.md.")


class SandboxUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Sandbox:
    kind: str                     # "bubblewrap" | "weak"
    bwrap: str | None = None      # the binary, for "bubblewrap"
    version: str = ""

    @property
    def isolated(self) -> bool:
        return self.kind == "bubblewrap"

    def describe(self) -> str:
        if self.isolated:
            return (f"bubblewrap {self.version}: namespaces (user, mount, pid, net, ipc, uts, cgroup), "
                    "read-only file system, private home and /tmp")
        user = "as user nobody" if sandbox_user() else "as the grader's user"
        return f"weak: resource limits and the audit hook, kernel {user} (no namespaces)"


def bwrap_binary() -> str | None:
    return os.environ.get(BWRAP_ENV) or shutil.which("bwrap")


def library_roots() -> list[str]:
    """Folders the kernel needs to read: Python, its packages and the course libraries."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["stdlib"],
             sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for name in ("coursework", "chainrule"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            roots.add(os.path.dirname(os.path.dirname(os.path.abspath(spec.origin))))
    real = {os.path.realpath(p) for p in roots if os.path.exists(p)} | {p for p in roots if os.path.exists(p)}
    return _outermost(real)


def _outermost(paths) -> list[str]:
    """Each path once, leaving out those inside another; parents first."""
    out: list[str] = []
    for p in sorted(set(paths)):
        if not any(p == q or p.startswith(q.rstrip(os.sep) + os.sep) for q in out):
            out.append(p)
    return out


def bwrap_argv(bwrap: str, handoff: str, disk_mb: int) -> list[str]:
    """bubblewrap's command line for a kernel whose grader-side folder is ``handoff``."""
    argv = [bwrap, "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
            "--hostname", "grading", "--die-with-parent", "--new-session", "--clearenv",
            "--setenv", "PATH", f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
            "--setenv", "PYTHONPATH", REPO_ROOT, "--setenv", "LANG", "C.UTF-8", "--setenv", "HOME", HOME]
    # The private mounts first: a checkout or a Python under /tmp is bound over the fresh /tmp.
    size = str(disk_mb * 1024 * 1024)
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm", "--size", size, "--tmpfs", "/tmp",
             "--size", size, "--tmpfs", HOME]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/usr"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for path in SYSTEM_FILES:
        argv += ["--ro-bind-try", path, path]
    for root in library_roots():
        if not root.startswith("/usr/"):
            argv += ["--ro-bind", root, root]
    for module in KERNEL_MODULES:
        path = os.path.join(REPO_ROOT, module)
        argv += ["--ro-bind", path, path]
    # Only the size-capped tmpfs folders and the handoff folder stay writable: bubblewrap's root
    # and /dev are tmpfs too, uncapped, and a kernel factory's next kernel must find them as they were.
    argv += ["--bind", handoff, handoff, "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", HOME, "--"]
    return argv


def probe(bwrap: str | None = None) -> tuple[Sandbox | None, str]:
    """Start Python once in the kernel's sandbox: (the sandbox, "") or (None, why not)."""
    bwrap = bwrap or bwrap_binary()
    if not bwrap:
        return None, "bubblewrap (bwrap) is not installed"
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.split()[-1]
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        return None, f"{bwrap} does not run: {exc}"
    handoff = tempfile.mkdtemp(prefix=scratch.prefix("probe"))
    try:
        argv = bwrap_argv(bwrap, handoff, 1) + [sys.executable, "-c", "import os, sys; "
                                                "print(os.getuid(), sum(p.isdigit() for p in os.listdir('/proc')) <= 3)"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{bwrap} failed: {exc}"
    finally:
        shutil.rmtree(handoff, ignore_errors=True)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return None, f"bubblewrap cannot create the kernel's namespaces here ({why})"
    if proc.stdout.split()[:2] != [str(NOBODY), "True"]:
        return None, f"bubblewrap started, but the sandbox is not as expected: {proc.stdout.strip()!r}"
    return Sandbox("bubblewrap", bwrap, version), ""


_CHOSEN: dict = {}


def choose(allow_weak: bool = False) -> Sandbox:
    """The sandbox to grade with: bubblewrap, else the weak one only if allowed (probed once per process)."""
    if "probe" not in _CHOSEN:
        _CHOSEN["probe"] = probe()
    sandbox, why = _CHOSEN["probe"]
    if sandbox is not None:
        return sandbox
    if allow_weak:
        return Sandbox("weak")
    raise SandboxUnavailable(f"{why}. {HOW_TO_FIX}")


_USER_CACHE: list = []


def sandbox_user() -> tuple[int, int] | None:
    """The weak sandbox's unprivileged user, when the grader runs as root.

    None when the grader is not root, or when that user could not even read Python
    itself (e.g. a pyenv Python under /root): then the audit hook alone keeps the
    kernel out of the workspace.
    """
    if _USER_CACHE:
        return _USER_CACHE[0]
    user = None
    if os.geteuid() == 0 and os.environ.get("AUTOGRADER_NO_UID_DROP") != "1":
        try:
            pw = pwd.getpwnam("nobody")
            candidate = (pw.pw_uid, pw.pw_gid)
        except KeyError:
            candidate = None
        if candidate is not None:
            needed = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], REPO_ROOT]
            pid = os.fork()
            if pid == 0:  # child: can the unprivileged user read what a kernel needs?
                try:
                    os.setgroups([])
                    os.setgid(candidate[1])
                    os.setuid(candidate[0])
                    ok = all(os.access(p, os.R_OK | os.X_OK) and os.listdir(p) is not None for p in needed)
                except Exception:
                    ok = False
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) == 0:
                user = candidate
    _USER_CACHE.append(user)
    return user

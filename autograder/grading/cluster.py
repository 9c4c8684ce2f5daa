"""Grading on several machines: the same jobs, sent to a Dask cluster instead of local processes.

    scheduler machine:   python -m autograder scheduler --tls-dir certs/
    each worker machine: python -m autograder worker tls://grader.example.org:8786 --tls-dir certs/
    instructor:          python -m autograder autograde -w $WS --scheduler tls://grader.example.org:8786 --tls-dir certs/

What does not change: each job is ``grade_one`` (preflight, the sandboxed kernel, scoring), now run
on a worker, in that worker's own sandbox (each worker is probed before the first job); the result comes back to the instructor's process, which alone writes the gradebook,
one result at a time, as soon as it arrives.  A job carries everything it needs (the submission's
files and the assignment's spec with its tests), because a worker sees no workspace.

Before the first job, every worker's course code and package versions are compared with the
instructor's: a worker that would grade with other tests or another library is refused.

Faults.  A worker that dies mid-job has its jobs rescheduled by Dask on the others; a job that has
killed ``ALLOWED_FAILURES`` workers is recorded as a flagged grader error, and the run goes on.
If the scheduler goes away, the run stops with a clear message; every result received so far is
already recorded, and the next run grades only what is missing.

Access.  Jobs hold hidden tests and students' work, and a Dask worker runs whatever it is sent: only
the instructor's machines may reach the scheduler.  Any address other than loopback therefore
needs TLS with the course's own certificate authority (``python -m autograder certificates DIR``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import ipaddress
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Callable
from urllib.parse import urlsplit

from . import scratch
from .results import Job
from .sandbox import SandboxUnavailable, choose
from .workers import Failure
from .workspace import REPO_ROOT, WorkspaceError

ALLOWED_FAILURES = 2          # workers a job may kill before it is recorded as a grader error
PACKAGES = ("torch", "numpy", "nbgrader", "nbclient", "nbformat", "ipykernel", "jupyter_client",
            "dask", "distributed", "cloudpickle")
CODE_FOLDERS = ("autograder", os.path.join("lib", "chainrule"), os.path.join("lib", "coursework"))
CERT_FILES = ("ca.pem", "cluster.pem", "cluster-key.pem")
MAX_SUBMISSION_FILE = 32 * 1024 * 1024


class ClusterError(WorkspaceError):
    """Said in one line by the command line, like every other bad input."""


# ---------------------------------------------------------------- what must match on every worker
def environment_fingerprint() -> dict[str, str]:
    """The course code (a digest of its source files and message catalogues) and the versions that
    change a grade or what a student reads."""
    digest = hashlib.sha256()
    for folder in CODE_FOLDERS:
        base = os.path.join(REPO_ROOT, folder)
        for root, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".py", ".po")):  # the code, and the messages students read
                    path = os.path.join(root, name)
                    digest.update(os.path.relpath(path, REPO_ROOT).encode() + b"\0")
                    with open(path, "rb") as fh:
                        digest.update(fh.read())
    found = {"course code": digest.hexdigest()[:16], "python": platform.python_version()}
    try:
        found["course commit"] = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        found["course commit"] = ""
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "missing"
    return found


def mismatched_workers(here: dict[str, str], workers: dict[str, dict[str, str]]) -> list[str]:
    """One line per worker that differs from ``here``; the commit alone may differ (same code)."""
    lines = []
    for address, there in sorted(workers.items()):
        diff = [f"{key} {there.get(key)!r} (here {value!r})" for key, value in here.items()
                if key != "course commit" and there.get(key) != value]
        if diff:
            commit = there.get("course commit") or "?"
            lines.append(f"{address} (commit {commit}): " + ", ".join(diff))
    return lines


# ---------------------------------------------------------------- who may connect
def is_loopback(address: str) -> bool:
    host = urlsplit(address if "://" in address else "tcp://" + address).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def security_for(address: str, tls_dir: str | None):
    """Dask's Security for ``address``: none on loopback, TLS with the course's certificates elsewhere."""
    from distributed import Security

    if tls_dir is None:
        if not is_loopback(address):
            raise ClusterError(f"the scheduler {address} is not on this machine: its jobs hold hidden tests, "
                               "so it must use TLS. Make certificates with `python -m autograder certificates "
                               "DIR`, start the scheduler and workers with --tls-dir DIR, and give "
                               "--scheduler tls://HOST:PORT --tls-dir DIR here")
        return None
    missing = [f for f in CERT_FILES if not os.path.isfile(os.path.join(tls_dir, f))]
    if missing:
        raise ClusterError(f"--tls-dir {tls_dir} lacks {', '.join(missing)}: make them with "
                           f"`python -m autograder certificates {tls_dir}`")
    if not address.startswith("tls://"):
        raise ClusterError(f"with --tls-dir the scheduler address must start with tls:// (got {address})")
    cert, key, ca = (os.path.join(tls_dir, f) for f in ("cluster.pem", "cluster-key.pem", "ca.pem"))
    return Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key,
                    tls_scheduler_cert=cert, tls_scheduler_key=key, tls_worker_cert=cert, tls_worker_key=key,
                    require_encryption=True)


def make_certificates(folder: str, hosts: list[str], days: int = 365) -> list[str]:
    """A certificate authority of the course's own and one certificate it signs, for the scheduler,
    the workers and the instructor alike (each side checks the other against the authority)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    os.makedirs(folder, mode=0o700, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("autograder course CA")).issuer_name(name("autograder course CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    alt = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder().subject_name(name("autograder cluster")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(ca_key, hashes.SHA256()))
    written = []
    for filename, data in (("ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
                           ("cluster.pem", cert.public_bytes(serialization.Encoding.PEM)),
                           ("cluster-key.pem", key.private_bytes(serialization.Encoding.PEM,
                                                                 serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()))):
        path = os.path.join(folder, filename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        written.append(path)
    return written


def dask_command(role: str, address: str | None, tls_dir: str | None, extra: list[str]) -> tuple[list[str], dict]:
    """The ``dask scheduler`` / ``dask worker`` command line for this course, and its environment:
    the course on the import path, one grading job per worker process, the bounded retries."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])),
               DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=str(ALLOWED_FAILURES),
               # One job per worker thread at a time: a job queued behind one that kills its worker
               # would be blamed for that death too, and an innocent student recorded as a grader error.
               DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0")
    cmd = [sys.executable, "-m", f"distributed.cli.dask_{role}", "--no-dashboard"]  # no web page on any port
    if role == "worker":
        cmd += [address, "--nthreads", "1"]
    if tls_dir:
        cert, key, ca = (os.path.join(tls_dir, f) for f in ("cluster.pem", "cluster-key.pem", "ca.pem"))
        cmd += ["--tls-ca-file", ca, "--tls-cert", cert, "--tls-key", key]
        if role == "scheduler":
            cmd += ["--protocol", "tls"]
    return cmd + extra, env


# ---------------------------------------------------------------- running the jobs
def shipped(job) -> tuple:
    """The job without the folder only this machine has, and the submission's files to go with it."""
    if not isinstance(job, Job):  # a test's stand-in task
        return job, {}
    files = {}
    for name in sorted(os.listdir(job.folder)):
        path = os.path.join(job.folder, name)
        if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) <= MAX_SUBMISSION_FILE:
            with open(path, "rb") as fh:
                files[name] = fh.read()
    return dataclasses.replace(job, folder="", sandbox=None), files


def run_shipped(task: Callable, job, files: dict[str, bytes], allow_weak_sandbox: bool):
    """On the worker: the submission in a private folder, this machine's sandbox, then the task as locally."""
    if not isinstance(job, Job):
        return task(job)
    scratch.remove_orphans()    # once per worker process: what workers lost on this machine left behind
    with tempfile.TemporaryDirectory(prefix=scratch.prefix("submission")) as folder:
        for name, data in files.items():
            with open(os.path.join(folder, os.path.basename(name)), "wb") as fh:
                fh.write(data)
        return task(dataclasses.replace(job, folder=folder, sandbox=choose(allow_weak_sandbox)))


def worker_sandbox(allow_weak_sandbox: bool) -> str:
    """What a worker would grade in, or why it cannot (run on each worker before the first job)."""
    try:
        return choose(allow_weak_sandbox).describe()
    except SandboxUnavailable as exc:
        return f"unavailable: {exc}"


def run_jobs_on_cluster(jobs: list[dict], task: Callable[[dict], dict], scheduler: str,
                        on_result: Callable[[dict, dict], None], on_failure: Callable[[dict, Failure], None],
                        tls_dir: str | None = None, allow_weak_sandbox: bool = False, wait_for_workers: float = 60.0,
                        poll: float = 1.0, reconnect_grace: float = 15.0) -> None:
    """Like ``workers.run_jobs``: every job ends in exactly one ``on_result`` or ``on_failure`` call,
    made here, in the caller's process, as soon as the job is done."""
    from distributed import Client, wait
    from distributed.client import FuturesCancelledError
    from distributed.scheduler import KilledWorker

    security = security_for(scheduler, tls_dir)
    try:
        client = Client(scheduler, security=security, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=wait_for_workers)
        except TimeoutError:
            raise ClusterError(f"no worker joined the scheduler at {scheduler} within {wait_for_workers:g} s: "
                               "start one with `python -m autograder worker ADDRESS`") from None
        bad = mismatched_workers(environment_fingerprint(), client.run(environment_fingerprint))
        if bad:
            raise ClusterError("refused: these workers would grade with other code or packages than this "
                               "machine; update them (same course commit, `pip install -r requirements.txt`) "
                               "or stop them: " + "; ".join(bad))
        unsandboxed = [f"{address}: {kind}" for address, kind in
                       sorted(client.run(worker_sandbox, allow_weak_sandbox).items()) if kind.startswith("unavailable")]
        if unsandboxed:
            raise ClusterError("refused: these workers cannot run the grading sandbox (give --allow-weak-sandbox "
                               "only if you accept that): " + "; ".join(unsandboxed))
        stamp = f"{time.time():.0f}"
        futures = {client.submit(run_shipped, task, *shipped(job), allow_weak_sandbox, pure=False,
                                 key=f"grade-{stamp}-{i}"): job for i, job in enumerate(jobs)}
        pending, lost_since = set(futures), None
        while pending:
            if not _scheduler_alive(client):
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > reconnect_grace:
                    raise _scheduler_gone(scheduler, len(pending))
                time.sleep(poll)
                continue
            lost_since = None
            try:
                with client.as_current():
                    done, pending = wait(pending, timeout=poll, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            except FuturesCancelledError:  # only a lost scheduler cancels our futures
                raise _scheduler_gone(scheduler, len(pending)) from None
            for future in done:
                if future.status == "cancelled":  # only a lost scheduler cancels our futures
                    raise _scheduler_gone(scheduler, len(pending) + 1)
                if future.status not in ("finished", "error"):
                    # "lost": the worker holding the result died before we fetched it, and Dask
                    # grades the job again; wait for that result (read as an error, it was None)
                    pending.add(future)
                    continue
                job = futures.pop(future)
                try:
                    result = future.result()
                except KilledWorker as exc:
                    why = f"the job killed {ALLOWED_FAILURES + 1} grader workers (Dask: {exc})"
                    on_failure(job, Failure(why, tries=[why]))
                except Exception as exc:  # noqa: BLE001 - the worker's error, recorded for this job
                    why = f"grader error on the worker: {type(exc).__name__}: {exc}"
                    on_failure(job, Failure(why, tries=[why]))
                else:
                    on_result(job, result)
                future.release()
    finally:
        client.close(timeout=10)


def _scheduler_gone(scheduler: str, not_graded: int) -> ClusterError:
    return ClusterError(f"the Dask scheduler at {scheduler} went away with {not_graded} job(s) not graded; "
                        "every result received is recorded: run autograde again once it is back, and it "
                        "grades what is missing")


def _scheduler_alive(client) -> bool:
    return client.status == "running" and client.scheduler_comm is not None \
        and not client.scheduler_comm.comm.closed()

"""Grading through a real Dask cluster: `python -m autograder scheduler` and `worker` processes on
127.0.0.1, started and stopped here.  A worker killed mid-run, a job that keeps killing workers,
a worker with other code, a scheduler that goes away, and TLS."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from ag_helpers import TEST_LIMITS, make_toy_workspace, write_submissions
import toy_course
from autograder.grading import cluster
from autograder.grading.cluster import ClusterError, run_jobs_on_cluster
from autograder.grading.collect import collect_folder
from autograder.grading.execute import Limits
from autograder.grading.pipeline import autograde
from autograder.grading.reports import gradebook_scores

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and workers as the README starts them, each in a process group of its own."""

    def __init__(self, tmp_path, repo=REPO, tls_dir=None):
        self.port, self.repo, self.tls_dir, self.logs = _free_port(), repo, tls_dir, tmp_path
        scheme = "tls" if tls_dir else "tcp"
        self.address = f"{scheme}://127.0.0.1:{self.port}"
        self.scheduler = self._start("scheduler", ["--port", str(self.port)], repo)
        self.workers: list[subprocess.Popen] = []

    def _start(self, command, args, repo, name=None, env=None):
        tls = ["--tls-dir", self.tls_dir] if self.tls_dir else []
        env = dict(os.environ, PYTHONPATH=HERE, **(env or {}))  # the workers import the test tasks too
        log = open(os.path.join(self.logs, f"{name or command}.log"), "w")
        return subprocess.Popen([sys.executable, "-m", "autograder", command, *tls, *args], cwd=repo, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def add_worker(self, repo=None, env=None):
        name = f"worker{len(self.workers)}"
        self.workers.append(self._start("worker", [self.address, "--", "--host", "127.0.0.1"],
                                        repo or self.repo, name, env))

    def kill(self, proc):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(20)

    def stop(self):
        for proc in [*self.workers, self.scheduler]:
            self.kill(proc)

    def log(self, name):
        with open(os.path.join(self.logs, f"{name}.log")) as fh:
            return fh.read()


@pytest.fixture
def dask_cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop()


def quick_jobs(kinds):
    return [{"name": f"{kind}{i}", "kind": kind} for i, kind in enumerate(kinds)]


def test_the_sample_class_on_two_workers_one_killed_mid_run(dask_cluster, tmp_path):
    dask_cluster.add_worker()
    dask_cluster.add_worker()
    ws, release = make_toy_workspace(str(tmp_path / "ws"))
    chosen = ["correct", "partly", "infinite_loop", "memory_bomb", "edited_test", "sys_exit"]
    samples = {s: v for s, v in toy_course.submissions(release, ws.root).items() if s in chosen}
    collect_folder(ws, write_submissions(str(tmp_path / "in"), samples), report=lambda _: None)
    lines = []

    def progress(line):
        lines.append(line)
        if line.startswith("[1/") and len(dask_cluster.workers) == 2:
            dask_cluster.kill(dask_cluster.workers.pop(0))  # a whole worker (nanny too) gone mid-run

    # A killed worker's job reruns on the survivor while it grades an endless loop: on a loaded 2-core
    # CI machine `import torch` then took over the tests' 4 s cell limit once (scored 0), so more room here.
    limits = Limits(**{**TEST_LIMITS, "cell_timeout": 12.0})
    results = autograde(ws, limits=limits, progress=progress, scheduler=dask_cluster.address)
    assert sorted(r["student"] for r in results) == sorted(chosen), "each job recorded exactly once"
    assert len(dask_cluster.workers) == 1, "the worker was killed while jobs were left"
    scores = gradebook_scores(ws)
    for student in chosen:
        expected_score, expected_flagged = samples[student][1], samples[student][2]
        got = next(r for r in results if r["student"] == student)
        flags = [flag for nb in got["notebooks"].values() for flag in nb["flags"]]
        assert (got["score"], got["flagged"]) == (expected_score, expected_flagged), (student, flags)
        assert scores[(student, "toy")] == (expected_score, 6.0)
    assert any("on the Dask cluster at" in line for line in lines)
    # a rerun grades only what is missing
    assert autograde(ws, limits=limits, progress=lambda _: None,
                     scheduler=dask_cluster.address) == []


def test_a_job_that_keeps_killing_workers_is_a_bounded_grader_error(dask_cluster):
    dask_cluster.add_worker()
    got, failed = [], []
    # the jobs after the killer must not share its fate (one job per worker at a time)
    run_jobs_on_cluster(quick_jobs(["ok", "die", "ok", "ok"]), toy_worker_task(), dask_cluster.address,
                        on_result=lambda job, res: got.append(res["name"]),
                        on_failure=lambda job, failure: failed.append((job["name"], failure.reason)))
    assert sorted(got) == ["ok0", "ok2", "ok3"], failed
    assert len(failed) == 1 and failed[0][0] == "die1"
    assert f"killed {cluster.ALLOWED_FAILURES + 1} grader workers" in failed[0][1]


def toy_worker_task():
    import stuck_tasks

    return stuck_tasks.behave


def test_a_worker_with_other_course_code_is_refused(tmp_path):
    other = tmp_path / "other-checkout"
    for folder in ("autograder", "lib"):
        shutil.copytree(os.path.join(REPO, folder), other / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    with open(other / "lib" / "coursework" / "__init__.py", "a") as fh:
        fh.write("\n# an edit the instructor's checkout does not have\n")
    c = Cluster(tmp_path)
    try:
        c.add_worker(repo=str(other))
        with pytest.raises(ClusterError, match=r"refused: these workers would grade with other code.*course code"):
            run_jobs_on_cluster(quick_jobs(["ok"]), toy_worker_task(), c.address,
                                on_result=lambda *a: None, on_failure=lambda *a: None)
    finally:
        c.stop()


def test_a_worker_that_cannot_run_the_sandbox_is_refused(dask_cluster):
    dask_cluster.add_worker(env={"AUTOGRADER_BWRAP": "/bin/false"})  # as where namespaces are refused
    with pytest.raises(ClusterError, match="refused: these workers cannot run the grading sandbox.*unavailable"):
        run_jobs_on_cluster(quick_jobs(["ok"]), toy_worker_task(), dask_cluster.address,
                            on_result=lambda *a: None, on_failure=lambda *a: None)


def test_a_scheduler_that_goes_away_stops_the_run_and_keeps_what_arrived(dask_cluster):
    dask_cluster.add_worker()
    got = []

    def arrived(job, res):
        got.append(res["name"])
        threading.Timer(0.5, dask_cluster.kill, args=(dask_cluster.scheduler,)).start()

    t0 = time.monotonic()
    with pytest.raises(ClusterError, match="went away with 1 job.*every result received is recorded"):
        run_jobs_on_cluster(quick_jobs(["ok", "hang"]), toy_worker_task(), dask_cluster.address,
                            on_result=arrived, on_failure=lambda *a: None, reconnect_grace=3.0)
    assert got == ["ok0"] and time.monotonic() - t0 < 120


def test_off_this_machine_the_scheduler_needs_tls(tmp_path):
    with pytest.raises(ClusterError, match="must use TLS"):
        cluster.security_for("tcp://192.0.2.10:8786", None)
    with pytest.raises(ClusterError, match="lacks ca.pem"):
        cluster.security_for("tls://192.0.2.10:8786", str(tmp_path))
    assert cluster.security_for("tcp://127.0.0.1:8786", None) is None
    assert cluster.is_loopback("tcp://localhost:1") and not cluster.is_loopback("tls://10.1.2.3:8786")


def test_a_tls_cluster_grades_with_the_course_certificates(tmp_path):
    certs = str(tmp_path / "certs")
    from autograder.__main__ import main

    assert main(["certificates", certs, "--host", "127.0.0.1"]) == 0
    assert oct(os.stat(os.path.join(certs, "cluster-key.pem")).st_mode & 0o777) == "0o600"
    c = Cluster(tmp_path, tls_dir=certs)
    try:
        c.add_worker()
        got = []
        run_jobs_on_cluster(quick_jobs(["ok"]), toy_worker_task(), c.address, tls_dir=certs,
                            on_result=lambda job, res: got.append(res["name"]), on_failure=lambda *a: None)
        assert got == ["ok0"]
        with pytest.raises(ClusterError):  # without the certificates, the client is turned away
            run_jobs_on_cluster(quick_jobs(["ok"]), toy_worker_task(), c.address.replace("tls", "tcp"),
                                on_result=lambda *a: None, on_failure=lambda *a: None, wait_for_workers=5)
    finally:
        c.stop()

"""Grading at scale: --jobs N gives the same gradebook as --jobs 1, and a real Dask cluster (a scheduler and two
workers started as separate processes on 127.0.0.1) grades the same class with the same results, also when a worker
is killed in the middle of a run. A tiny assignment (no model in the notebook) keeps these fast."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_course  # noqa: E402

from lensref.course.grading.grader import grade  # noqa: E402
from lensref.course.grading.status import Status  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap: make setup")]
BIN = Path(sys.executable).parent
A = tiny_course.ASSIGNMENT


def _rows(db: Path) -> list[tuple]:
    with Gradebook(f"sqlite:///{db}") as gb:
        return sorted(
            (sub.student.id, nb.name, g.name, float(g.score), float(g.max_score))
            for sub in gb.find_assignment(A).submissions
            for nb in sub.notebooks
            for g in nb.grades
        )


def _grade(course: Path, out: Path, **kwargs):
    return grade(A, submitted=course / "submitted", out=out, root=course, timeout=60, progress=lambda m: None, **kwargs)


@pytest.fixture(scope="module")
def course(tmp_path_factory, warm_model_cache):
    folder = tiny_course.make_course(tmp_path_factory.mktemp("course"))
    expected = tiny_course.make_class(folder / "submitted", 6)
    return folder, expected


def test_jobs_2_gives_the_same_gradebook_and_csv_as_jobs_1(course, tmp_path):
    folder, expected = course
    one = _grade(folder, tmp_path / "one", jobs=1)
    two = _grade(folder, tmp_path / "two", jobs=2)
    assert {r.student: r.score for r in one.results} == expected
    assert _rows(tmp_path / "one" / "gradebook.db") == _rows(tmp_path / "two" / "gradebook.db")
    assert one.csv_path.read_text() == two.csv_path.read_text()
    assert [r.student for r in two.results] == sorted(expected)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, stopped at the end."""

    def __init__(self, tmp: Path):
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.tmp = tmp
        self._start(
            "scheduler",
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
        )
        self._wait_for_port()

    def _start(self, name: str, argv: list[str], env: dict | None = None) -> None:
        log = open(self.tmp / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    def _wait_for_port(self) -> None:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the dask scheduler did not start")

    def add_worker(self, name: str, env: dict | None = None) -> None:
        self._start(
            name,
            [
                str(BIN / "dask"),
                "worker",
                self.address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--name",
                name,
                "--no-dashboard",
            ],
            env,
        )

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=120)

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)

    def close(self) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


def test_a_dask_cluster_grades_the_class_with_the_same_results(course, tmp_path, cluster):
    folder, expected = course
    cluster.add_worker("w1")
    cluster.add_worker("w2")
    cluster.wait_for_workers(2)
    local = _grade(folder, tmp_path / "local", jobs=1)
    remote = _grade(folder, tmp_path / "dask", scheduler=cluster.address)
    assert {r.student: (r.status, r.score) for r in remote.results} == {
        s: (Status.GRADED, v) for s, v in expected.items()
    }
    assert _rows(tmp_path / "local" / "gradebook.db") == _rows(tmp_path / "dask" / "gradebook.db")
    assert local.csv_path.read_text() == remote.csv_path.read_text()
    assert "Dask cluster at" in remote.confinement


def test_a_worker_killed_mid_run_loses_nothing(tmp_path, cluster, warm_model_cache):
    folder = tiny_course.make_course(tmp_path / "course", sleep=6)
    expected = tiny_course.make_class(folder / "submitted", 4, sleep=6)
    cluster.add_worker("w1")
    cluster.add_worker("w2")
    cluster.wait_for_workers(2)
    killed = threading.Event()

    def kill_when_busy() -> None:
        from distributed import Client

        with Client(cluster.address, timeout=30) as client:
            for _ in range(600):
                busy = [w for w, tasks in client.processing().items() if tasks]
                names = {w: info.get("name") for w, info in client.scheduler_info()["workers"].items()}
                if any(names.get(w) == "w1" for w in busy):
                    time.sleep(2)  # well inside the notebook's 6 s sleep
                    cluster.kill("w1")
                    killed.set()
                    return
                time.sleep(0.1)

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    report = _grade(folder, tmp_path / "out", scheduler=cluster.address)
    killer.join(timeout=5)
    assert killed.is_set(), "the test never saw w1 busy"
    assert {r.student: (r.status, r.score) for r in report.results} == {
        s: (Status.GRADED, v) for s, v in expected.items()
    }
    rows = _rows(tmp_path / "out" / "gradebook.db")
    assert len(rows) == len(expected), rows  # one grade row per student: nothing lost, nothing twice


def test_a_scheduler_that_does_not_answer_is_one_line_and_exit_2(course, tmp_path):
    folder, _ = course
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "lensref",
            "grade",
            A,
            "--scheduler",
            f"tcp://127.0.0.1:{_free_port()}",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Dask scheduler answers at tcp://127.0.0.1:" in lines[0], run.stderr


def test_a_worker_without_the_model_cache_is_named(course, tmp_path, cluster):
    folder, _ = course
    cluster.add_worker("bare", env={"LENSREF_CACHE": str(tmp_path / "empty-cache")})
    cluster.wait_for_workers(1)
    run = subprocess.run(
        [sys.executable, "-m", "lensref", "grade", A, "--scheduler", cluster.address, "--out", str(tmp_path / "out")],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Dask worker" in lines[0] and "no model cache" in lines[0], run.stderr

"""Grading on a real Dask cluster (a scheduler and workers started as separate processes on 127.0.0.1) when things go
wrong: a worker killed in the middle of a run loses nothing, a scheduler that does not answer and a worker without
the model cache are one line each. A tiny assignment (no model in the notebook) keeps these fast. That the default
command, ``--jobs 1``, ``--jobs 4`` and Dask give the same gradebook is shown on a real class in
``test_grading_class.py``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import gradebook_rows as book  # noqa: E402
import tiny_course  # noqa: E402
from dask_cluster import Cluster, free_port  # noqa: E402

from lensref.course.grading.grader import grade  # noqa: E402
from lensref.course.grading.status import Status  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap: make setup")]
BIN = Path(sys.executable).parent
A = tiny_course.ASSIGNMENT


def _grade(course: Path, out: Path, **kwargs):
    return grade(A, submitted=course / "submitted", out=out, root=course, timeout=60, progress=lambda m: None, **kwargs)


@pytest.fixture(scope="module")
def course(tmp_path_factory, warm_model_cache):
    folder = tiny_course.make_course(tmp_path_factory.mktemp("course"))
    expected = tiny_course.make_class(folder / "submitted", 6)
    return folder, expected


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


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
    rows = book.rows(tmp_path / "out" / "gradebook.db", A)
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
            f"tcp://127.0.0.1:{free_port()}",
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

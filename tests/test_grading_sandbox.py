"""The sandbox itself, attacked directly: what a run can see, write, reach, use, and how it dies.

Each test runs a small hostile Python script in the same sandbox a submission's notebook runs in, with the limits
set low (1 GB, 64 processes) so a limit that fails cannot take the machine down.
"""

from __future__ import annotations

import shutil
import socket
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lensref.course.grading import sandbox
from lensref.course.grading.limits import Limits, confinement

ROOT = Path(__file__).resolve().parents[1]
LOW = Limits(memory_mb=1024, max_procs=64)

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is installed by make setup")


def _run(tmp_path: Path, script: str, wall: float = 60, limits: Limits = LOW) -> tuple[sandbox.SandboxRun, str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    (scratch / "attack.py").write_text(textwrap.dedent(script))
    run = sandbox.run(scratch, [sys.executable, "attack.py"], limits, wall)
    return run, run.log


def test_the_course_folder_and_home_are_not_there(tmp_path):
    run, log = _run(
        tmp_path,
        f"""
        import os
        for path in [{str(ROOT / "solutions")!r}, {str(ROOT / "nbgrader_config.py")!r}, {str(Path.home() / ".cache")!r}, {str(tmp_path)!r},
                     "../solutions", "../../solutions", "/etc/shadow", "/etc/ssh", "/etc/machine-id"]:
            print(path, os.path.exists(path))
        here, found = os.getcwd(), []
        while True:  # walk up from the working folder looking for any solutions/ or gradebook
            for name in os.listdir(here):
                if name in ("solutions", "gradebook.db", "submitted", "exercises"):
                    found.append(os.path.join(here, name))
            if here == "/":
                break
            here = os.path.dirname(here)
        print("found", found)
        print("lensref importable", __import__("importlib").util.find_spec("lensref") is not None)
    """,
    )
    assert run.returncode == 0, log
    assert "found []" in log
    assert "lensref importable True" in log
    for line in log.splitlines():
        if line.startswith(("/", "..")):
            assert line.endswith(" False"), line


def test_nothing_outside_the_scratch_folder_can_be_written(tmp_path):
    run, log = _run(
        tmp_path,
        f"""
        import os
        targets = [{str(ROOT / "planted.txt")!r}, {str(ROOT / "lensref" / "planted.py")!r},
                   {str(Path(sys.prefix) / "planted.txt")!r}, "/usr/planted", "/etc/planted"]
        for path in targets:
            try:
                open(path, "w").write("x")
                print("WROTE", path)
            except OSError as exc:
                print("refused", path, type(exc).__name__)
        open("mine.txt", "w").write("fine")
    """,
    )
    assert run.returncode == 0, log
    # the sandbox's own /tmp is a private tmpfs: a course folder under /tmp (a clone in /tmp) is written there
    # at most, never on the machine; anywhere else nothing can be written at all
    wrote = [line.split()[1] for line in log.splitlines() if line.startswith("WROTE")]
    assert all(path.startswith("/tmp/") for path in wrote), wrote
    assert not (ROOT / "planted.txt").exists() and not (ROOT / "lensref" / "planted.py").exists()
    assert (tmp_path / "scratch" / "mine.txt").read_text() == "fine"


def test_no_network_beyond_its_own_loopback(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    try:
        run, log = _run(
            tmp_path,
            f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3)
                print("REACHED the host")
            except OSError as exc:
                print("host unreachable", type(exc).__name__)
            own = socket.socket(); own.bind(("127.0.0.1", 0)); own.listen(1)
            socket.create_connection(own.getsockname(), timeout=3)
            print("own loopback works")
        """,
        )
    finally:
        server.close()
    assert "REACHED" not in log and not accepted
    assert "own loopback works" in log, log


def test_an_allocation_far_above_the_limit_is_killed(tmp_path):
    run, log = _run(
        tmp_path,
        """
        import numpy as np
        blocks = []
        for i in range(40):                       # 40 x 256 MB = 10 GB, ten times the limit
            blocks.append(np.ones(256 * 2**20, dtype=np.uint8))
            print("holding", (i + 1) * 256, "MB", flush=True)
        print("SURVIVED")
    """,
    )
    assert "SURVIVED" not in log
    assert run.returncode != 0
    held = [int(line.split()[1]) for line in log.splitlines() if line.startswith("holding")]
    assert max(held, default=0) <= 1024, held


def test_a_fork_storm_is_capped(tmp_path):
    run, log = _run(
        tmp_path,
        """
        import os, time
        children = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(20)
                    os._exit(0)
                children += 1
        except OSError as exc:
            print("fork refused after", children, type(exc).__name__, flush=True)
        os._exit(0)
    """,
        wall=30,
    )
    counts = [int(line.split()[3]) for line in log.splitlines() if line.startswith("fork refused")]
    assert counts and counts[0] < LOW.max_procs, log


def test_the_wall_limit_kills_the_whole_tree_even_when_signals_are_ignored(tmp_path):
    marker = tmp_path / "scratch" / "still-alive"
    start = time.time()
    run, log = _run(
        tmp_path,
        """
        import os, signal, time
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if os.fork() == 0:
            os.setsid()                       # a child that leaves the process group
            while True:
                time.sleep(0.2)
                open("still-alive", "a").write(".")
        while True:
            pass
    """,
        wall=4,
    )
    assert run.timed_out
    assert time.time() - start < 30
    size = marker.stat().st_size if marker.exists() else 0
    time.sleep(1.5)
    assert (marker.stat().st_size if marker.exists() else 0) == size, "a process survived the kill"


def test_confinement_is_released(tmp_path):
    box = confinement(LOW)
    dirs = list(getattr(box, "dirs", {}).values())
    box.close()
    assert all(not d.exists() for d in dirs)


def test_unavailable_sandbox_is_one_line(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(Exception) as info:
        sandbox.check_bwrap()
    assert "bubblewrap" in str(info.value) and "\n" not in str(info.value)
    assert "--no-sandbox" in str(info.value)


def _one_cell_job(student: str, code: str, limits: Limits):
    import json

    import nbformat

    from lensref.course.grading.jobs import Job

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(code))])
    job = {"notebooks": ["x"], "cell_timeout": 120, "interrupt_grace": 5, "max_restarts": 0, "startup_timeout": 120}
    files = {"run/x.ipynb": nbformat.writes(nb).encode(), "job.json": json.dumps(job).encode()}
    return Job(student, files, limits, 300)


def _printed(result) -> str:
    import nbformat

    nb = nbformat.reads(result.files["executed/x.ipynb"].decode(), as_version=4)
    return "".join(o.get("text", "") for o in nb.cells[0].outputs)


def test_a_warm_sandbox_serves_one_submission_and_leaves_nothing_to_the_next():
    """A submission that leaves files and a detached process behind: the next one (run in the sandbox that was
    warming meanwhile) sees none of it, and no warm sandbox outlives the pool."""
    from lensref.course.grading import jobs

    limits = Limits(memory_mb=2048, max_procs=64)
    first = jobs.execute_warm(
        _one_cell_job(
            "a",
            """
            import os, subprocess
            for path in ("/tmp/left-by-a", os.path.expanduser("~/left-by-a")):
                open(path, "w").write("secret answers")
            subprocess.Popen(["sleep", "300"], start_new_session=True)
            print("planted", os.path.exists("/tmp/left-by-a"))
            """,
            limits,
        )
    )
    assert "planted True" in _printed(first), first.log
    time.sleep(1)
    second = jobs.execute_warm(
        _one_cell_job(
            "b",
            """
            import os
            sleepers = [p for p in os.listdir("/proc") if p.isdigit() and b"sleep" in open(f"/proc/{p}/cmdline", "rb").read()]
            print("seen", os.path.exists("/tmp/left-by-a"), os.path.exists(os.path.expanduser("~/left-by-a")), len(sleepers))
            import sys
            print("warm", "transformers" in sys.modules)
            """,
            limits,
        )
    )
    printed = _printed(second)
    assert "seen False False 0" in printed, second.log
    assert "warm True" in printed  # it really ran in a pre-warmed kernel
    assert second.warm_s > 0.5
    jobs.release_warm()
    deadline = time.time() + 10
    while sandbox._LIVE and time.time() < deadline:
        time.sleep(0.1)
    assert not sandbox._LIVE  # the sandbox warming for a third submission is gone too

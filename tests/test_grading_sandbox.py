"""The sandbox itself, attacked directly: what a run can see, write, reach, use, and how it dies.

Each test runs a small hostile Python script in the same sandbox a submission's notebook runs in, with the limits
set low (1 GB, 64 processes, 256 MB of disk) so a limit that fails cannot take the machine down.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from lensref.course.grading import layout, output_tail, processes, sandbox
from lensref.course.grading.limits import Limits, confinement

ROOT = Path(__file__).resolve().parents[1]
LOW = Limits(memory_mb=1024, max_procs=64, disk_mb=256)
MB = 2**20

pytestmark = [
    pytest.mark.slow,  # every test starts a sandbox
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is installed by make setup"),
]


def _run(
    tmp_path: Path, script: str, wall: float = 60, limits: Limits = LOW, name: str = "attack.py", **kw
) -> tuple[sandbox.SandboxRun, str]:
    files = {name: textwrap.dedent(script).encode()}
    run = sandbox.run([sys.executable, name], limits, wall, files=files, **kw)
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
        os.makedirs("outputs/x")
        open("outputs/x/mine.txt", "w").write("fine")
    """,
    )
    assert run.returncode == 0, log
    # the sandbox's own /tmp is a private tmpfs: a course folder under /tmp (a clone in /tmp) is written there
    # at most, never on the machine; anywhere else nothing can be written at all
    wrote = [line.split()[1] for line in log.splitlines() if line.startswith("WROTE")]
    assert all(path.startswith("/tmp/") for path in wrote), wrote
    assert not (ROOT / "planted.txt").exists() and not (ROOT / "lensref" / "planted.py").exists()
    assert run.files == {"outputs/x/mine.txt": b"fine"}  # its home is its own, and comes back through the grader


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


def _processes_running(token: str) -> list[int]:
    """The processes of this machine whose command line holds ``token``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:  # it ended while we looked
            pass
    return found


def test_the_wall_limit_kills_the_whole_tree_even_when_signals_are_ignored(tmp_path):
    name = f"attack-{uuid.uuid4().hex}.py"  # in the command line of every process of the run
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
        name=name,
    )
    assert run.timed_out
    assert time.time() - start < 30
    assert _processes_running(name) == [], "a process survived the kill"


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


def _one_cell_job(student: str, code: str, limits: Limits, *more_cells: str):
    import nbformat

    from lensref.course.grading.jobs import Job

    cells = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in (code, *more_cells)]
    spec = layout.JobSpec(("x",), cell_timeout=120, interrupt_grace=5, max_restarts=0, startup_timeout=120)
    files = layout.job_files(spec, {"x": nbformat.writes(nbformat.v4.new_notebook(cells=cells)).encode()})
    return Job(student, files, limits, 300)


def _printed(result, cell: int = 0) -> str:
    import nbformat

    nb = nbformat.reads(result.files[layout.executed_notebook("x")].decode(), as_version=4)
    return "".join(o.get("text", "") for o in nb.cells[cell].outputs)


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
    while processes.LIVE and time.time() < deadline:
        time.sleep(0.1)
    assert not processes.LIVE  # the sandbox warming for a third submission is gone too


class DiskWatch:
    """The grader's disk while a run goes: how much the temp folder's file system grew at most, and the largest
    ``lensref-grade-*`` folder seen in it (polled every 20 ms)."""

    def __init__(self):
        self.temp = Path(tempfile.gettempdir())
        self.before = shutil.disk_usage(self.temp).used
        self.grew = self.largest_folder = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._look()

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self._look()

    def _look(self) -> None:
        self.grew = max(self.grew, shutil.disk_usage(self.temp).used - self.before)
        for folder in self.temp.glob("lensref-grade-*"):
            self.largest_folder = max(self.largest_folder, _bytes_in(folder))


def _bytes_in(folder: Path) -> int:
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:  # removed while we counted
                pass
    return total


def test_a_run_writing_6_gb_fills_only_its_own_capped_home_and_keeps_what_it_wrote_before():
    """Six files of 1 GB: the home (256 MB here) is full after a quarter of the first, the grader's disk does not
    grow, and the answers written before, and after, the cap come back."""
    from lensref.course.grading import jobs

    limits = Limits(memory_mb=2048, max_procs=64, disk_mb=256)
    with DiskWatch() as disk:
        result = jobs.execute(
            _one_cell_job(
                "filler",
                """
                import os
                os.makedirs("outputs/x", exist_ok=True)
                open("outputs/x/first.json", "w").write("written before the cap")
                written, error = 0, None
                for i in range(6):                         # 6 files of 1 GB
                    try:
                        with open(f"big-{i}.bin", "wb") as f:
                            for _ in range(1024):
                                f.write(bytes(2**20))
                                written += 1
                    except OSError as exc:
                        error = exc.errno
                print("written MB", written, "errno", error)
                """,
                limits,
                """
                from pathlib import Path
                from lensref.course.grading import probe
                probe._save(Path("outputs/x/after"), "after", [[{"value": 1.5}]])
                """,
            )
        )
    written = _printed(result).split()
    assert written[:2] == ["written", "MB"] and int(written[2]) <= 256 and written[4] == str(errno.ENOSPC), written
    assert result.files["outputs/x/first.json"] == b"written before the cap"
    assert "outputs/x/after.json" in result.files and "recorded 1 answer(s)" in _printed(result, 1)
    assert result.disk_full
    assert disk.largest_folder < 5 * MB, disk.largest_folder
    assert disk.grew < 50 * MB, f"the grader's disk grew by {disk.grew / MB:.0f} MB"


def test_answers_that_cannot_be_written_are_one_line_and_the_run_goes_on():
    """A learner who fills outputs/ and executed/ too: the probe says so in one line, the next cell still runs,
    and the runner logs what it could not leave."""
    from lensref.course.grading import jobs

    fill = """
        n = 0
        try:
            with open("{path}", "wb") as f:
                while True:
                    f.write(bytes(2**20))
                    n += 1
        except OSError as exc:
            print("{path}", n, exc.errno)
        """
    result = jobs.execute(
        _one_cell_job(
            "greedy",
            fill.format(path="outputs/filler"),
            Limits(memory_mb=2048, max_procs=64, disk_mb=64),
            """
            from pathlib import Path
            from lensref.course.grading import probe
            probe._save(Path("outputs/x/g"), "g", [[{"value": 1.5}]])
            """,
            fill.format(path="executed/filler"),
            "import sys; print('the last cell ran', file=sys.__stderr__, flush=True)",
        )
    )
    lost = "error: the answers for g could not be written (No space left on device); this test scores nothing"
    assert f"probe: {lost}\n" in result.log, result.log
    assert "the last cell ran" in result.log
    for name in (layout.executed_cells("x"), layout.executed_notebook("x")):
        assert f"runner: could not write {name}: No space left on device" in result.log
        assert name not in result.files  # nothing half-written comes back
    assert "outputs/x/g.json" not in result.files
    assert result.disk_full


def test_links_planted_in_the_results_bring_back_nothing_of_their_targets(tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("HOST SECRET")
    run, log = _run(
        tmp_path,
        f"""
        import os
        os.makedirs("outputs/x")
        open("outputs/x.json", "w").write("honest")
        os.remove("outputs/x.json")
        os.symlink("/etc/passwd", "outputs/x.json")              # the file replaced by a link
        os.symlink({str(secret)!r}, "outputs/secret.json")       # a host path: only the grader could reach it
        os.symlink("/etc", "outputs/etc")                        # a folder
        os.symlink({str(tmp_path)!r}, "executed/host")
        os.mkfifo("outputs/x/fifo.json")                         # would hang a reader that opens it blocking
        open("outputs/x/ok.json", "w").write("ok")
        print("planted")
        """,
    )
    assert "planted" in log, log
    assert run.files == {"outputs/x/ok.json": b"ok"}
    assert not run.truncated and not run.disk_full


def test_a_run_printing_500_mb_leaves_no_file_and_a_bounded_log(tmp_path):
    with DiskWatch() as disk:
        run, log = _run(
            tmp_path,
            """
            import sys
            line = b"x" * 1023 + b"\\n"
            for _ in range(500 * 1024):                    # 500 MB
                sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            print("THE END", flush=True)
            """,
            wall=120,
        )
    assert run.returncode == 0, log[-300:]
    assert len(log) <= output_tail.LOG_TAIL_CHARS and log.rstrip().endswith("THE END")
    assert disk.largest_folder < 5 * MB and disk.grew < 50 * MB, (disk.largest_folder, disk.grew)


def test_a_checkout_or_venv_under_tmp_is_still_readable_and_read_only(monkeypatch):
    """/tmp inside is a link into the home: a course cloned under the host's /tmp (a CI runner's fresh clone) must
    still be mounted read-only where the run expects it, under that link."""
    from lensref.course.grading import bwrap

    folder = Path(tempfile.mkdtemp(prefix="lensref-ro-under-tmp-", dir="/tmp"))
    try:
        (folder / "module.txt").write_text("course code\n")
        every = bwrap.read_only_paths()
        monkeypatch.setattr(bwrap, "read_only_paths", lambda: [*every, folder])
        script = f"cat {folder}/module.txt; touch {folder}/planted 2>/dev/null || echo read-only; echo ok > /tmp/mine"
        run = sandbox.run(["/bin/sh", "-c", script], LOW, 30)
        assert run.returncode == 0, run.log
        assert run.log.splitlines() == ["course code", "read-only"], run.log
        assert not (folder / "planted").exists()
    finally:
        shutil.rmtree(folder)


def test_tmp_inside_counts_against_the_disk_cap(tmp_path):
    run, log = _run(
        tmp_path,
        """
        import os
        def fill(path):
            n = 0
            try:
                with open(path, "wb") as f:
                    while True:
                        f.write(bytes(2**20))
                        n += 1
            except OSError as exc:
                return n, exc.errno
        print("tmp", *fill("/tmp/big"))
        print("home", *fill("big"))
        print("linked", os.path.realpath("/tmp").startswith(os.getcwd() + "/"))
        """,
    )
    found = {line.split()[0]: line.split()[1:] for line in log.splitlines()}
    assert found["tmp"][1] == found["home"][1] == str(errno.ENOSPC), log
    assert 200 <= int(found["tmp"][0]) <= LOW.disk_mb and int(found["home"][0]) <= 1, log
    assert found["linked"] == ["True"]  # /tmp is a link into the home
    assert run.disk_full


def test_without_the_sandbox_files_go_in_and_come_back_the_same_way_and_the_folder_goes(tmp_path):
    run, log = _run(
        tmp_path,
        """
        import os
        print("home", os.getcwd())
        os.makedirs("outputs/x")
        open("outputs/x/a.json", "w").write("a")
        os.symlink("/etc/passwd", "outputs/x/p.json")
        """,
        sandboxed=False,
    )
    home = Path(log.split("home ")[1].split()[0])
    assert home.name.startswith("lensref-grade-") and not home.exists()
    assert run.files == {"outputs/x/a.json": b"a"} and not run.disk_full


def test_the_limits_line_names_the_disk_cap():
    line = sandbox.describe(Limits(memory_mb=4096, max_procs=256, disk_mb=1024))
    assert "4096 MB" in line and "256 processes" in line and "1024 MB disk per run" in line, line
    assert "no disk cap" in sandbox.describe(Limits(), sandboxed=False)

"""One learner's run inside a bubblewrap sandbox (Debian's ``bwrap``): what it sees, what it may use, when it dies.

Inside: a home and working folder that is the sandbox's own tmpfs, capped at ``Limits.disk_mb`` (the learner's
notebook, the cases; ``/tmp`` is a link into it, so it counts against the same cap), with ``executed/`` and
``outputs/`` each a small tmpfs of its own (:data:`RESULT_ROOM_MB`), so a learner who fills the home still has
their answers recorded; the system (``/usr`` and the few files of ``/etc`` programs need to start), the Python installation, the course's
virtual environment, the ``lensref`` package and the model cache, all read-only; a private ``/proc`` and ``/dev``;
no network but its own loopback; new user, PID, IPC and UTS namespaces, no capabilities. Nothing else of the
machine is mounted: not the course folder (``solutions/``, the gradebook, other learners' work), not the grader's
home, not the grader's disk. Memory and processes are capped by :mod:`.limits`; at the wall limit, or when the
grader stops, the whole process tree is killed.

Nothing a run writes lands on the grader's disk. The grader reaches the home through a directory file descriptor
(``/proc/<pid>/root/home/learner``, opened once the sandbox is up, and one for each result folder): files go in
through it (``job.json`` last and atomically), and once every process of the run is dead the results come back
through the result folders' descriptors (regular files only, never following a link, size-capped); the held
descriptors keep the tmpfs readable after the sandbox is gone, and closing them frees its memory. The run's output goes to a pipe of which the grader keeps the last
:data:`LOG_TAIL_CHARS` characters. With ``--no-sandbox`` the home is a host scratch folder (no disk cap), reached
the same way.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from ...errors import LensError
from . import layout
from .limits import Confinement, Limits, confinement

HOME = "/home/learner"  # the run's home and working folder inside the sandbox: a tmpfs of Limits.disk_mb
ETC = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "fonts",
    "localtime",
    "mime.types",
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "host.conf",
    "ssl",
    "ca-certificates",
    "matplotlibrc",
    "os-release",
)
CACHE = "/opt/lensref-cache"  # where the model cache appears inside the sandbox
LOG_TAIL_CHARS = 20000  # what the grader keeps of a run's output (the pipe's last characters)
MAX_RESULT_BYTES = 1536 * 2**20  # what comes back from a run, all files together
MAX_RESULT_FILES = 10000  # files and folders looked at under executed/ and outputs/
MAX_RESULT_DEPTH = 8  # folders deep under the home (outputs/<notebook>/<grade_id>.json is 3)
# executed/ and outputs/: a tmpfs each, besides the home's cap (assignment 1's answers take about 175 MB; the judge
# reads an executed notebook of up to 64 MB)
RESULT_ROOM_MB = {layout.EXECUTED: 64, layout.OUTPUTS: 512}
FULL_BELOW_BYTES = 2**20  # a home with less free space than this at the end was full
START_TIMEOUT_S = 120  # for bwrap to set the sandbox up (a loaded machine is slow to make namespaces)
# The first program in the sandbox: says the mounts are ready, waits until the grader has handed the files in,
# then becomes the run's program. It runs before any learner file exists, with only the standard library.
LAUNCHER = """
import os, sys
ready, go = int(sys.argv[1]), int(sys.argv[2])
os.write(ready, b"r")
os.close(ready)
handed_in = os.read(go, 1) == b"g"
os.close(go)
if not handed_in:  # the grader went away before the files were in: nothing to run
    os._exit(1)
os.execvp(sys.argv[3], sys.argv[3:])
"""


_LIVE: dict[int, Confinement] = {}  # runs in progress in this process: pid -> its confinement
_LIVE_LOCK = threading.Lock()


def kill_all() -> None:
    """Kill every run this process has in progress (Ctrl-C while grading)."""
    with _LIVE_LOCK:
        live = list(_LIVE.items())
    for pid, box in live:
        box.kill(pid)


def _die_with_grader() -> None:
    """In the child before exec: SIGKILL when the grader (or the Dask worker) that started it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class SandboxRun:
    returncode: int | None
    timed_out: bool
    oom_kills: int
    seconds: float
    log: str
    files: dict[str, bytes] = field(default_factory=dict)  # what it left under executed/ and outputs/
    truncated: bool = False  # some of those files did not come back (MAX_RESULT_BYTES, MAX_RESULT_FILES)
    disk_full: bool = False  # it filled its home (the disk cap, Limits.disk_mb)


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a planted FIFO cannot hang us


class Home:
    """A run's home, reached only through directory file descriptors that the grader holds: the home's own, and
    one for each result folder (:data:`layout.RESULT_FOLDERS`).

    Sandboxed, the home and each result folder are tmpfs mounts of the sandbox, opened through
    ``/proc/<pid>/root/home/learner`` once the sandbox is up: none of it is on the grader's disk, and the
    descriptors keep them readable after the sandbox is gone (when its mounts are detached: a path through the
    home then no longer reaches the result folders), until :meth:`close` frees them. With ``--no-sandbox`` it is a
    host scratch folder, removed by :meth:`close`. Files go in and come out relative to the descriptors, never
    following a link the learner may have planted."""

    def __init__(self, fd: int, host_folder: Path | None = None):
        self.fd, self.host_folder = fd, host_folder
        self.results: dict[str, int] = {}  # result folder -> its descriptor, held from before the run starts

    @classmethod
    def of_sandbox(cls, child_pid: int, disk_mb: int) -> Home:
        """The home of the sandbox whose first process is ``child_pid``; checks each mount has its size."""
        home = cls(os.open(f"/proc/{child_pid}/root{HOME}", _DIR))
        try:
            home._check_size(home.fd, HOME, disk_mb)
            for top in layout.RESULT_FOLDERS:
                home.results[top] = os.open(top, _DIR, dir_fd=home.fd)
                home._check_size(home.results[top], f"{HOME}/{top}", RESULT_ROOM_MB[top])
        except BaseException:
            home.close()
            raise
        return home

    @classmethod
    def on_host(cls) -> Home:
        """A fresh host scratch folder, its result folders made (``--no-sandbox``: no disk cap)."""
        folder = Path(tempfile.mkdtemp(prefix="lensref-grade-"))
        try:
            home = cls(os.open(folder, _DIR), folder)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        try:
            for top in layout.RESULT_FOLDERS:
                home.results[top] = home._folder([top])
        except BaseException:
            home.close()
            raise
        return home

    def hand_over(self, files: dict[str, bytes]) -> None:
        """Write a job's files (none may exist yet), ``job.json`` last and atomically: a waiting runner starts
        when it appears, and never sees it half written."""
        for name, data in files.items():
            if name != layout.JOB:
                self._write(name, data)
        if layout.JOB in files:
            self._write(layout.JOB_PART, files[layout.JOB])
            os.rename(layout.JOB_PART, layout.JOB, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def modified(self, name: str) -> float | None:
        """When ``name`` (in the home itself) was last written, or None when it is not there."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mtime
        except FileNotFoundError:
            return None

    def full(self) -> bool:
        """The home or a result folder has less than :data:`FULL_BELOW_BYTES` free (its cap was hit)."""
        return any(_free_bytes(fd) < FULL_BELOW_BYTES for fd in (self.fd, *self.results.values()))

    def read_results(self) -> tuple[dict[str, bytes], bool]:
        """What the run left under ``executed/`` and ``outputs/`` (call only once every process of it is dead), and
        whether some of it was left out."""
        walk = _ResultWalk()
        for top, fd in self.results.items():
            walk.folder(fd, top, depth=1)
        return walk.files, walk.truncated

    def close(self) -> None:
        """Let go of the home: a sandbox's tmpfs mounts are freed with their last descriptor, a host folder is
        removed."""
        for fd in (self.fd, *self.results.values()):
            if fd >= 0:
                os.close(fd)
        self.fd, self.results = -1, {}
        if self.host_folder is not None:
            shutil.rmtree(self.host_folder, ignore_errors=True)

    @staticmethod
    def _check_size(fd: int, where: str, mb: int) -> None:
        fs = os.statvfs(fd)
        if fs.f_blocks * fs.f_frsize != mb * 2**20:
            raise LensError(f"the sandbox's {where} is not a {mb} MB tmpfs (does this bwrap know --size?)")

    def _write(self, name: str, data: bytes) -> None:
        if not layout.is_safe(name):
            raise ValueError(f"unsafe path in a job: {name}")
        *folders, leaf = PurePosixPath(name).parts
        parent = self._folder(folders)
        try:
            fd = os.open(leaf, _NEW_FILE, 0o644, dir_fd=parent)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        finally:
            if parent != self.fd:
                os.close(parent)

    def _folder(self, parts: Sequence[str]) -> int:
        """A descriptor of the folder ``parts`` under the home, made where missing; the caller closes it unless
        it is :attr:`fd`."""
        current = self.fd
        try:
            for part in parts:
                try:
                    os.mkdir(part, 0o755, dir_fd=current)
                except FileExistsError:  # made for an earlier file of the same job
                    pass
                inner = os.open(part, _DIR, dir_fd=current)  # ELOOP when it is a link
                if current != self.fd:
                    os.close(current)
                current = inner
        except BaseException:
            if current != self.fd:
                os.close(current)
            raise
        return current


def _free_bytes(fd: int) -> int:
    fs = os.statvfs(fd)
    return fs.f_bavail * fs.f_frsize


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_at_most(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _is_utf8(name: str) -> bool:
    """A name that is text (``os.listdir`` keeps undecodable bytes as surrogates, which no notebook name has)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class _ResultWalk:
    """The files a dead run left, read as data: regular files under a result folder only (no link is followed,
    no FIFO or device is opened for reading), names checked with :func:`layout.is_result`, every read bounded,
    :data:`MAX_RESULT_BYTES` in all."""

    files: dict[str, bytes] = field(default_factory=dict)
    total: int = 0
    looked_at: int = 0
    truncated: bool = False

    def folder(self, fd: int, path: str, depth: int) -> None:
        """Everything in the open folder ``fd`` (``path`` from the home, ``depth`` folders deep)."""
        if depth > MAX_RESULT_DEPTH:
            self.truncated = True
            return
        for child in sorted(os.listdir(fd)):
            if _is_utf8(child):
                self._visit(fd, child, f"{path}/{child}", depth)

    def _visit(self, parent: int, name: str, path: str, depth: int) -> None:
        self.looked_at += 1
        if self.looked_at > MAX_RESULT_FILES:
            self.truncated = True
            return
        try:
            fd = os.open(name, _READ, dir_fd=parent)
        except OSError:  # a link (ELOOP), a socket (ENXIO), or not there: nothing of it comes back
            return
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                self.folder(fd, path, depth + 1)
            elif stat.S_ISREG(info.st_mode) and layout.is_result(path):
                self._take(fd, info.st_size, path)
        finally:
            os.close(fd)

    def _take(self, fd: int, size: int, path: str) -> None:
        if self.total + size > MAX_RESULT_BYTES:
            self.truncated = True
            return
        data = _read_at_most(fd, size)
        self.files[path] = data
        self.total += len(data)


class LogTail:
    """A run's output (stdout and stderr), read from its pipe by a thread that keeps only the last
    :data:`LOG_TAIL_CHARS` characters: nothing of it is written to the grader's disk."""

    def __init__(self, pipe: IO[bytes]):
        self._tail = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, args=(pipe,), name="lensref-sandbox-log", daemon=True)
        self._thread.start()

    def _drain(self, pipe: IO[bytes]) -> None:
        keep = 4 * LOG_TAIL_CHARS  # bytes: a UTF-8 character is 4 at most
        with pipe:
            while chunk := os.read(pipe.fileno(), 1 << 16):
                with self._lock:
                    self._tail += chunk
                    if len(self._tail) > 2 * keep:
                        del self._tail[:-keep]

    def text(self, timeout: float) -> str:
        """The tail, once the pipe is closed (every writer dead) or after ``timeout`` seconds."""
        self._thread.join(timeout)
        with self._lock:
            data = bytes(self._tail[-4 * LOG_TAIL_CHARS :])
        return data.decode("utf-8", "replace")[-LOG_TAIL_CHARS:]


def _package_root() -> Path:
    """The folder that holds the ``lensref`` package (an editable checkout or site-packages)."""
    return Path(__file__).resolve().parents[3]


def _model_cache() -> Path:
    from ...models import cache_dir

    return Path(cache_dir())


def read_only_paths() -> list[Path]:
    """What a run may read besides its home: the system, Python, the venv, lensref, the model cache."""
    paths = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sysconfig.get_paths()["purelib"]),
        _package_root() / "lensref",
    }
    resolved = Path(sys.executable).resolve()
    paths.add(resolved.parent.parent)
    return sorted(p for p in paths if p.exists() and not str(p).startswith(("/usr/", "/etc/")) and p != Path("/usr"))


def bwrap_command(
    argv: list[str], env: dict[str, str], disk_mb: int, info_fd: int | None = None, network: bool = False
) -> list[str]:
    """The bwrap command line: ``argv`` in a home of ``disk_mb`` (a tmpfs, ``/tmp`` a link into it); bwrap writes
    ``{"child-pid": ...}`` to ``info_fd``."""
    cmd = [
        "bwrap",
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
    ]
    if not network:
        cmd.append("--unshare-net")
    if info_fd is not None:
        cmd += ["--info-fd", str(info_fd)]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for name in ETC:  # only what programs need to start: never shadow, ssh keys, machine secrets
        path = Path("/etc") / name
        if path.exists():
            cmd += ["--ro-bind", str(path), str(path)]
    for top in ("bin", "lib", "lib32", "lib64", "sbin"):
        host = Path("/") / top
        if host.is_symlink():
            cmd += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            cmd += ["--ro-bind", str(host), str(host)]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    for path in read_only_paths():
        cmd += ["--ro-bind", str(path), str(path)]
    cache = _model_cache()
    if cache.is_dir():
        cmd += ["--ro-bind", str(cache), CACHE]
    tmp = f"{HOME}/{layout.TMP}"
    cmd += ["--size", str(disk_mb * 2**20), "--tmpfs", HOME, "--dir", tmp, "--symlink", tmp, "/tmp"]
    for top, mb in RESULT_ROOM_MB.items():
        cmd += ["--size", str(mb * 2**20), "--tmpfs", f"{HOME}/{top}"]
    cmd += ["--remount-ro", "/", "--chdir", HOME, "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return cmd + ["--", *argv]


def sandbox_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "HOME": HOME,
        "USER": "learner",
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "LENSREF_CACHE": CACHE,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "MPLCONFIGDIR": f"{HOME}/.config/matplotlib",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),  # the grader sets it per run (jobs.run_threads)
    }
    env.update(extra or {})
    return env


def check_bwrap() -> None:
    """Raise one line saying why the sandbox cannot start on this machine, or return."""
    if shutil.which("bwrap") is None:
        raise LensError(
            "cannot sandbox submissions: bubblewrap (bwrap) is not installed "
            "(apt-get install bubblewrap), or grade with --no-sandbox at your own risk"
        )
    try:
        checked = run([sys.executable, "-c", "print('ok')"], Limits(disk_mb=64), 60)
        why = None if checked.returncode == 0 and checked.log.strip() == "ok" else _last_line(checked.log)
    except (OSError, LensError) as exc:  # bwrap could not start, or its home could not be reached
        why = str(exc)
    if why is not None:
        raise LensError(
            f"cannot sandbox submissions: bwrap failed ({why}); user namespaces may be disabled "
            "here (sysctl kernel.unprivileged_userns_clone), or grade with --no-sandbox at your own risk"
        )


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["no output"])[-1]


class Started:
    """A run already started over its home; :meth:`wait` ends it, reads what it left and reports."""

    def __init__(
        self, proc: subprocess.Popen, box: Confinement, home: Home, log: LogTail, pidfd: int | None, sandboxed: bool
    ):
        self.proc, self.box, self.home, self._log = proc, box, home, log
        self._pidfd, self.sandboxed = pidfd, sandboxed
        self.started = time.monotonic()
        self._result: SandboxRun | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def set_low_priority(self, low: bool) -> None:
        self.box.set_low_priority(low)

    def hand_over(self, files: dict[str, bytes]) -> None:
        """Give the waiting runner its job: the files, ``job.json`` last."""
        self.home.hand_over(files)

    def warmed_at(self) -> float | None:
        """When the runner finished warming up (:data:`layout.WARM_MARK`), or None if it has not yet."""
        return self.home.modified(layout.WARM_MARK)

    def wait(self, wall_s: float, since: float | None = None) -> SandboxRun:
        """Wait until it exits or ``wall_s`` seconds after ``since`` (default: its start), kill what is left, then
        read back what it left."""
        if self._result is not None:
            return self._result
        since = self.started if since is None else since
        timed_out = False
        try:
            self.proc.wait(timeout=max(0.0, since + wall_s - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
        self._result = self._finish(since, timed_out, collect=True)
        return self._result

    def kill(self) -> None:
        """Stop it now and free its home unread (an unused warm sandbox)."""
        if self._result is None:
            self._result = self._finish(time.monotonic(), self.alive(), collect=False)

    def _finish(self, since: float, timed_out: bool, collect: bool) -> SandboxRun:
        files: dict[str, bytes] = {}
        truncated = disk_full = False
        try:
            all_dead = self._kill_everything()
            seconds = time.monotonic() - since
            ooms = self.box.oom_kills()
            log = self._log.text(timeout=5)
            if collect and not all_dead:
                log += "\n[grader] a process of the run outlived the kill: nothing it left was read"
            elif collect:
                files, truncated = self.home.read_results()
                disk_full = self._disk_full()
        finally:
            self.box.close()
            self.home.close()
            if self._pidfd is not None:
                os.close(self._pidfd)
        returncode = None if timed_out else self.proc.returncode
        return SandboxRun(returncode, timed_out, ooms, seconds, log, files, truncated, disk_full)

    def _kill_everything(self) -> bool:
        """Kill the whole run; True once every process of it is dead (sandboxed: its PID namespace is gone)."""
        self.box.kill(self.proc.pid)
        self.proc.wait()
        with _LIVE_LOCK:
            _LIVE.pop(self.proc.pid, None)
        if self._pidfd is None:  # --no-sandbox: no namespace to watch, the kill above is all there is
            return True
        # the namespace's first process ends only after the kernel killed and reaped every other one in it
        return bool(select.select([self._pidfd], [], [], 10)[0])

    def _disk_full(self) -> bool:
        """It filled its home or a result folder (sandboxed: a host folder has no cap to hit)."""
        return self.sandboxed and self.home.full()


def _popen(
    cmd: list[str], box: Confinement, env: dict[str, str], cwd: str | None = None, pass_fds: Sequence[int] = ()
) -> subprocess.Popen:
    def preexec() -> None:
        _die_with_grader()
        box.preexec()

    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec,
        pass_fds=pass_fds,
    )
    with _LIVE_LOCK:
        _LIVE[proc.pid] = box
    return proc


def _read_until_closed(fd: int, timeout: float) -> bytes:
    """All that is written to the pipe ``fd`` until its writer closes it (or dies)."""
    data, deadline = b"", time.monotonic() + timeout
    while select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            return data
        data += chunk
    raise LensError(f"the sandbox did not start within {timeout:g} s")


def _child_pid(info: bytes) -> int:
    """The sandbox's first process, from what bwrap wrote to ``--info-fd``."""
    try:
        return int(json.loads(info)["child-pid"])
    except (ValueError, KeyError, TypeError):
        raise LensError(f"bwrap's --info-fd said {info[:80]!r}, not a child pid") from None


def _reach_home(log: LogTail, info_r: int, ready_r: int, limits: Limits) -> tuple[int, Home]:
    """Once the sandbox is set up and its launcher waits: a pidfd of its first process, and its home."""
    info = _read_until_closed(info_r, START_TIMEOUT_S)
    ready = _read_until_closed(ready_r, START_TIMEOUT_S)
    if not info or ready != b"r":
        raise LensError(f"the sandbox did not start ({_last_line(log.text(timeout=5))})")
    child = _child_pid(info)
    pidfd = os.pidfd_open(child)
    try:
        return pidfd, Home.of_sandbox(child, limits.disk_mb)
    except BaseException:
        os.close(pidfd)
        raise


def _start_sandboxed(argv: list[str], limits: Limits, env: dict[str, str], box: Confinement, files) -> Started:
    """bwrap over a fresh tmpfs home: the launcher waits while the files go in through the home's descriptor."""
    info_r, info_w = os.pipe()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    for_child = (info_w, ready_w, go_r)
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(ready_w), str(go_r)]
    cmd = bwrap_command([*launcher, *argv], env, limits.disk_mb, info_fd=info_w)
    proc: subprocess.Popen | None = None
    pidfd: int | None = None
    home: Home | None = None
    try:
        try:
            proc = _popen(cmd, box, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, pass_fds=for_child)
        finally:
            for fd in for_child:
                os.close(fd)
        log = LogTail(_output(proc))
        pidfd, home = _reach_home(log, info_r, ready_r, limits)
        home.hand_over(files)
        os.write(go_w, b"g")
    except BaseException:
        if proc is not None:
            _stop(proc, box)
        if home is not None:
            home.close()
        if pidfd is not None:
            os.close(pidfd)
        raise
    finally:
        for fd in (info_r, ready_r, go_w):
            os.close(fd)
    return Started(proc, box, home, log, pidfd, sandboxed=True)


def _start_on_host(argv: list[str], env: dict[str, str], box: Confinement, files) -> Started:
    """``--no-sandbox``: the program in a host scratch folder, the files written there first (no disk cap)."""
    home = Home.on_host()
    try:
        home.hand_over(files)
        folder = str(home.host_folder)
        host_env = {
            **env,
            "HOME": folder,
            "LENSREF_CACHE": str(_model_cache()),
            "MPLCONFIGDIR": f"{folder}/.config/matplotlib",
            "PATH": os.environ.get("PATH", ""),
        }
        proc = _popen(argv, box, host_env, cwd=folder)
    except BaseException:
        home.close()
        raise
    return Started(proc, box, home, LogTail(_output(proc)), None, sandboxed=False)


def _output(proc: subprocess.Popen) -> IO[bytes]:
    assert proc.stdout is not None  # _popen always pipes it
    return proc.stdout


def _stop(proc: subprocess.Popen, box: Confinement) -> None:
    """Kill a run that failed to start."""
    box.kill(proc.pid)
    proc.wait()
    with _LIVE_LOCK:
        _LIVE.pop(proc.pid, None)


def start(
    argv: list[str],
    limits: Limits,
    sandboxed: bool = True,
    env: dict[str, str] | None = None,
    low_priority: bool = False,
    files: dict[str, bytes] | None = None,
) -> Started:
    """Start ``argv`` in a new sandbox (or, unsandboxed, in a host scratch folder) with ``files`` already in its
    home (``job.json`` written last); do not wait. More files can follow with :meth:`Started.hand_over`.

    ``low_priority`` starts it on idle CPU only (a warm-up), where a cpu control group can be made."""
    box: Confinement = confinement(limits)
    box.set_low_priority(low_priority)
    try:
        if sandboxed:
            return _start_sandboxed(argv, limits, sandbox_env(env), box, files or {})
        return _start_on_host(argv, sandbox_env(env), box, files or {})
    except BaseException:
        box.close()
        raise


def run(
    argv: list[str],
    limits: Limits,
    wall_s: float,
    sandboxed: bool = True,
    env: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
) -> SandboxRun:
    """Run ``argv`` with ``files`` in its home, in the sandbox (or, unsandboxed, in a host scratch folder), within
    ``wall_s``; the result carries what it left under ``executed/`` and ``outputs/``."""
    return start(argv, limits, sandboxed, env, files=files).wait(wall_s)


def describe(limits: Limits, sandboxed: bool = True) -> str:
    """How runs are confined on this machine, in words (for the grading summary)."""
    box = confinement(limits)
    try:
        return box.describe(_disk_words(limits, sandboxed))
    finally:
        box.close()


def _disk_words(limits: Limits, sandboxed: bool) -> str:
    if not sandboxed:
        return "no disk cap per run (--no-sandbox: a host folder)"
    return f"{limits.disk_mb} MB disk per run (+ {sum(RESULT_ROOM_MB.values())} MB for its results)"

"""One learner's run inside a bubblewrap sandbox (Debian's ``bwrap``): what it sees, what it may use, when it dies.

Inside: a scratch folder (the learner's notebook, the cases, room for the outputs) as the home and working
folder; the system (``/usr`` and the few files of ``/etc`` programs need to start), the Python installation, the course's virtual environment, the ``lensref``
package and the model cache, all read-only; a private ``/tmp``, ``/proc`` and ``/dev``; no network but its own
loopback; new user, PID, IPC and UTS namespaces, no capabilities. Nothing else of the machine is mounted: not the
course folder (``solutions/``, the gradebook, other learners' work), not the grader's home. Memory and processes
are capped by :mod:`.limits`; at the wall limit, or when the grader stops, the whole process tree is killed.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ...errors import LensError
from .limits import Confinement, Limits, confinement

HOME = "/home/learner"  # where the scratch folder appears inside the sandbox
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


def _package_root() -> Path:
    """The folder that holds the ``lensref`` package (an editable checkout or site-packages)."""
    return Path(__file__).resolve().parents[3]


def _model_cache() -> Path:
    from ...models import cache_dir

    return Path(cache_dir())


def read_only_paths() -> list[Path]:
    """What a run may read besides its scratch folder: the system, Python, the venv, lensref, the model cache."""
    paths = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sysconfig.get_paths()["purelib"]),
        _package_root() / "lensref",
    }
    resolved = Path(sys.executable).resolve()
    paths.add(resolved.parent.parent)
    return sorted(p for p in paths if p.exists() and not str(p).startswith(("/usr/", "/etc/")) and p != Path("/usr"))


def bwrap_command(scratch: Path, argv: list[str], env: dict[str, str], network: bool = False) -> list[str]:
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
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in read_only_paths():
        cmd += ["--ro-bind", str(path), str(path)]
    cache = _model_cache()
    if cache.is_dir():
        cmd += ["--ro-bind", str(cache), CACHE]
    cmd += ["--bind", str(scratch), HOME, "--remount-ro", "/", "--chdir", HOME, "--clearenv"]
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
    with tempfile.TemporaryDirectory(prefix="lensref-bwrap-check-") as tmp:
        cmd = bwrap_command(Path(tmp), [sys.executable, "-c", "print('ok')"], sandbox_env())
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if run.returncode != 0 or run.stdout.strip() != "ok":
            why = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise LensError(
                f"cannot sandbox submissions: bwrap failed ({why}); user namespaces may be disabled "
                "here (sysctl kernel.unprivileged_userns_clone), or grade with --no-sandbox at your own risk"
            )


class Started:
    """A sandboxed process already running over its scratch folder; :meth:`wait` ends it and reports."""

    def __init__(self, scratch: Path, proc: subprocess.Popen, box: Confinement, log, started: float):
        self.scratch, self.proc, self.box, self._log, self.started = scratch, proc, box, log, started
        self._result: SandboxRun | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def set_low_priority(self, low: bool) -> None:
        self.box.set_low_priority(low)

    def wait(self, wall_s: float, since: float | None = None) -> SandboxRun:
        """Wait until it exits or ``wall_s`` seconds after ``since`` (default: its start), then kill what is left."""
        if self._result is not None:
            return self._result
        since = self.started if since is None else since
        timed_out = False
        try:
            try:
                self.proc.wait(timeout=max(0.0, since + wall_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                self.box.kill(self.proc.pid)
                self.proc.wait()
                with _LIVE_LOCK:
                    _LIVE.pop(self.proc.pid, None)
                self._log.close()
            ooms = self.box.oom_kills()
        finally:
            self.box.close()
        seconds = time.monotonic() - since
        log_path = self.scratch / ".sandbox.log"
        try:
            with open(log_path, "rb") as f:
                f.seek(max(0, log_path.stat().st_size - 20000))
                tail = f.read().decode("utf-8", "replace")
        except OSError:
            tail = ""
        self._result = SandboxRun(None if timed_out else self.proc.returncode, timed_out, ooms, seconds, tail)
        return self._result

    def kill(self) -> None:
        """Stop it now (an unused warm sandbox)."""
        self.wait(0.0)


def start(
    scratch: Path,
    argv: list[str],
    limits: Limits,
    sandboxed: bool = True,
    env: dict[str, str] | None = None,
    low_priority: bool = False,
) -> Started:
    """Start ``argv`` in the sandbox over ``scratch`` (or, unsandboxed, in ``scratch`` itself); do not wait.

    ``low_priority`` starts it on idle CPU only (a warm-up), where a cpu control group can be made."""
    full_env = sandbox_env(env)
    if sandboxed:
        cmd = bwrap_command(scratch, argv, full_env)
        cwd, proc_env = None, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    else:
        full_env = {
            **full_env,
            "HOME": str(scratch),
            "LENSREF_CACHE": str(_model_cache()),
            "MPLCONFIGDIR": str(scratch / ".config" / "matplotlib"),
            "PATH": os.environ.get("PATH", ""),
        }
        cmd, cwd, proc_env = argv, str(scratch), full_env
    box: Confinement = confinement(limits)
    box.set_low_priority(low_priority)

    def preexec() -> None:
        _die_with_grader()
        box.preexec()

    log = open(scratch / ".sandbox.log", "wb")
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=proc_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )
    except BaseException:
        log.close()
        box.close()
        raise
    with _LIVE_LOCK:
        _LIVE[proc.pid] = box
    return Started(scratch, proc, box, log, time.monotonic())


def run(
    scratch: Path,
    argv: list[str],
    limits: Limits,
    wall_s: float,
    sandboxed: bool = True,
    env: dict[str, str] | None = None,
) -> SandboxRun:
    """Run ``argv`` in the sandbox over ``scratch`` (or, unsandboxed, in ``scratch`` itself) within ``wall_s``."""
    return start(scratch, argv, limits, sandboxed, env).wait(wall_s)


def describe(limits: Limits) -> str:
    """How runs are confined on this machine, in words (for the grading summary)."""
    box = confinement(limits)
    try:
        return box.describe()
    finally:
        box.close()

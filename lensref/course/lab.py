"""``make lab`` / ``lensref lab``: the learner's JupyterLab, on their own copies of the exercises.

:func:`prepare_work` copies the released notebooks (``exercises/<assignment>/*.ipynb`` in a course
folder, or the copies an installed wheel carries: :mod:`lensref.course.release`) into a work folder (default
``my-work/`` in a course folder, else ``lensref-course/`` in the current folder) on first run; a notebook already there is never overwritten,
so re-running keeps the learner's work (delete a file to get a fresh copy). :func:`start_lab` starts
JupyterLab in that folder on 127.0.0.1, with this Python (the course's ``.venv``, which has ``lensref``) as
the notebooks' ``python3`` kernel whatever other kernels the machine has, no news or update checks (it
works offline), and a token of its own; it returns once the server answers, with the URL to open.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..errors import LensError
from .release import COURSE_ROOT, PACKAGED, in_checkout, release_folder, released_notebooks

__all__ = [
    "COURSE_ROOT",
    "DEFAULT_WORK",
    "RELEASE",
    "prepare_work",
    "release_folder",
    "released_notebooks",
    "start_lab",
]

# in a course folder the work folder sits beside exercises/ (make lab's my-work/); installed from a wheel,
# lensref lab makes it in the folder it is run from
DEFAULT_WORK = COURSE_ROOT / "my-work" if in_checkout() else Path("lensref-course")
RELEASE = COURSE_ROOT / "exercises" if in_checkout() else PACKAGED  # where lab copies from (release_folder())
DEFAULT_PORT = 8888
HOST = "127.0.0.1"
START_TIMEOUT = (
    120  # seconds for the server to answer (a first start on a slow machine builds nothing, but imports a lot)
)
KERNEL_NAME = "python3"  # the kernel the released notebooks name


@dataclass(frozen=True)
class WorkFolder:
    path: Path
    copied: tuple[str, ...]  # "<assignment>/<notebook>.ipynb" copied this time
    kept: tuple[str, ...]  # already there: left as they are

    def summary(self) -> str:
        parts = []
        if self.copied:
            parts.append(f"copied {len(self.copied)} notebook(s) into {self.path}: {', '.join(self.copied)}")
        if self.kept:
            parts.append(f"kept your {len(self.kept)} notebook(s) already in {self.path} (never overwritten)")
        return "; ".join(parts)


@dataclass
class LabServer:
    process: subprocess.Popen[bytes]
    url: str  # open this: it carries the token
    base_url: str  # http://127.0.0.1:PORT/
    token: str
    work: Path
    log: Path
    port: int
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def notebook_url(self, relpath: str) -> str:
        return f"{self.base_url}lab/tree/{relpath}?token={self.token}"

    def stop(self, timeout: float = 20) -> None:
        """Stop the server (and its kernels) and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                if hasattr(os, "killpg"):  # POSIX: the server's whole session (its kernels too)
                    os.killpg(self.process.pid, signal.SIGKILL)
                else:  # Windows
                    self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def prepare_work(work: Path = DEFAULT_WORK, release: Path | None = None) -> WorkFolder:
    """Copy every released notebook (default: :func:`release_folder`) into ``work`` unless a file of that name
    is already there."""
    work = Path(work).absolute()
    if work.exists() and not work.is_dir():
        raise LensError(f"work folder {work}: exists and is not a folder")
    if not work.parent.is_dir():
        raise LensError(f"work folder {work}: its folder {work.parent} does not exist")
    copied, kept = [], []
    for source in released_notebooks(release):
        rel = f"{source.parent.name}/{source.name}"
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(target, "xb") as out, open(source, "rb") as src:  # "x": never replace a learner's file
                shutil.copyfileobj(src, out)
        except FileExistsError:
            kept.append(rel)
            continue
        copied.append(rel)
    return WorkFolder(work, tuple(copied), tuple(kept))


def lab_home() -> Path:
    """Where lab keeps its kernel spec and settings: this Python's ``share/lensref-jupyter`` (a venv's), or, where
    that is not writable (lensref installed with ``pip install --user`` into a system Python), a folder of the
    user's cache named after this Python."""
    base = Path(sys.prefix) / "share" / "lensref-jupyter"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base
    except OSError:
        pass
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tag = hashlib.sha256(sys.executable.encode()).hexdigest()[:12]
    return Path(cache) / "lensref" / f"jupyter-{tag}"


def jupyter_dir() -> Path:
    """A Jupyter data folder whose only kernel is ``python3`` = this Python; written on every start.

    It goes first on ``JUPYTER_PATH``, so it wins over any ``python3`` kernel installed for the user or the
    system (which might be a Python without ``lensref``).
    """
    base = lab_home()
    spec_dir = base / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (Logit Lens course)",
        "language": "python",
        "env": {"PYTHONWARNINGS": "ignore::DeprecationWarning"},
        "metadata": {"debugger": True},
    }
    _write_json(spec_dir / "kernel.json", spec)
    return base


def lab_config() -> Path:
    """JupyterLab settings for an offline course: no news feed (nor its prompt), no update check, no
    extension search on PyPI. Returns the config file; its folder also holds ``labconfig/page_config.json``
    (found through ``JUPYTER_CONFIG_PATH``)."""
    base = lab_home() / "config"
    (base / "labconfig").mkdir(parents=True, exist_ok=True)
    _write_json(
        base / "labconfig" / "page_config.json",
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}},
    )
    path = base / "jupyter_lab_config.json"
    _write_json(
        path,
        {
            "LabApp": {
                "news_url": None,
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                "extension_manager": "readonly",
            }
        },
    )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]  # (host, port) for AF_INET
        return port


def check_port(port: int) -> int:
    if port == 0:
        return free_port()
    if not 1 <= port <= 65535:
        raise LensError(f"--port {port}: give a port between 1 and 65535 (or 0 for any free port)")
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            raise LensError(
                f"port {port} on {HOST} is in use (another JupyterLab?): choose another with "
                f"--port, e.g. make lab PORT={port + 1}"
            ) from None
    return port


def lab_command(work: Path, port: int, token: str, open_browser: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--config={lab_config()}",
        f"--ServerApp.root_dir={work}",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.open_browser={open_browser}",
        f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
    ] + (["--ServerApp.allow_root=True"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])


def start_lab(
    work: Path = DEFAULT_WORK,
    *,
    port: int = DEFAULT_PORT,
    open_browser: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
) -> LabServer:
    """Start JupyterLab in ``work`` (already prepared) on 127.0.0.1; returns once it answers.

    ``env`` adds to the server's environment (tests isolate Jupyter's own folders with it). The server's
    output goes to ``<work>/.lab.log``.
    """
    work = Path(work).resolve()
    port = check_port(port)
    token = secrets.token_hex(24)
    server_env = {**os.environ, **(env or {})}
    server_env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(jupyter_dir()), server_env.get("JUPYTER_PATH")]))
    server_env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        filter(None, [str(lab_config().parent), server_env.get("JUPYTER_CONFIG_PATH")])
    )
    log = work / ".lab.log"
    log_file = open(log, "ab")
    process = subprocess.Popen(
        lab_command(work, port, token, open_browser),
        cwd=work,
        env=server_env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # Ctrl-C goes to us; we stop the server cleanly
    base = f"http://{HOST}:{port}/"
    server = LabServer(process, f"{base}lab?token={token}", base, token, work, log, port, log_file)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            server.stop()
            raise LensError(
                f"JupyterLab stopped at start (exit {process.returncode}): {_last_line(log)} (full log: {log})"
            )
        try:
            with urllib.request.urlopen(f"{base}api/status?token={token}", timeout=5) as reply:
                if reply.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise LensError(f"JupyterLab did not answer on {base} within {timeout:.0f} s (log: {log})")
        time.sleep(0.3)


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "in use" in line.lower()]
    return " ".join((errors or lines or ["no output"])[-1].split())[:240]


def _write_json(path: Path, data: object) -> None:
    text = json.dumps(data, indent=1) + "\n"
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)

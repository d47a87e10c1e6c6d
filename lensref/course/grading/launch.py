"""Starting a run over a fresh home, its files already in: sandboxed, bwrap over a tmpfs home while a tiny launcher
waits for the files to go in through the home's descriptor; with ``--no-sandbox``, a host scratch folder."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from typing import IO

from ...errors import LensError
from .bwrap import bwrap_command, model_cache
from .home import Home
from .limits import Confinement, Limits
from .output_tail import LogTail, last_line
from .processes import popen, stop
from .started import Started

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
        raise LensError(f"the sandbox did not start ({last_line(log.text(timeout=5))})")
    child = _child_pid(info)
    pidfd = os.pidfd_open(child)
    try:
        return pidfd, Home.of_sandbox(child, limits.disk_mb)
    except BaseException:
        os.close(pidfd)
        raise


def start_sandboxed(
    argv: list[str], limits: Limits, env: dict[str, str], box: Confinement, files: dict[str, bytes]
) -> Started:
    """A run started under bwrap over a fresh tmpfs home: the launcher waits while the files go in
    through the home's descriptor."""
    info_r, info_w = os.pipe()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    for_child = (info_w, ready_w, go_r)
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(ready_w), str(go_r)]
    cmd = bwrap_command([*launcher, *argv], env, limits.disk_mb, info_fd=info_w)
    proc: subprocess.Popen[bytes] | None = None
    pidfd: int | None = None
    home: Home | None = None
    try:
        try:
            proc = popen(cmd, box, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, pass_fds=for_child)
        finally:
            for fd in for_child:
                os.close(fd)
        log = LogTail(_output(proc))
        pidfd, home = _reach_home(log, info_r, ready_r, limits)
        home.hand_over(files)
        os.write(go_w, b"g")
    except BaseException:
        if proc is not None:
            stop(proc, box)
        if home is not None:
            home.close()
        if pidfd is not None:
            os.close(pidfd)
        raise
    finally:
        for fd in (info_r, ready_r, go_w):
            os.close(fd)
    return Started(proc, box, home, log, pidfd, sandboxed=True)


def start_on_host(argv: list[str], env: dict[str, str], box: Confinement, files: dict[str, bytes]) -> Started:
    """``--no-sandbox``: the program in a host scratch folder, the files written there first (no disk cap)."""
    home = Home.on_host()
    try:
        home.hand_over(files)
        folder = str(home.host_folder)
        host_env = {
            **env,
            "HOME": folder,
            "LENSREF_CACHE": str(model_cache()),
            "MPLCONFIGDIR": f"{folder}/.config/matplotlib",
            "PATH": os.environ.get("PATH", ""),
        }
        proc = popen(argv, box, host_env, cwd=folder)
    except BaseException:
        home.close()
        raise
    return Started(proc, box, home, LogTail(_output(proc)), None, sandboxed=False)


def _output(proc: subprocess.Popen[bytes]) -> IO[bytes]:
    assert proc.stdout is not None  # popen always pipes it
    return proc.stdout

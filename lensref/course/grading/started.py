"""A run in progress (:class:`Started`) and how it ends: the whole run killed, then (once every process of it is
dead) what it left read back from its home, and the report (:class:`SandboxRun`)."""

from __future__ import annotations

import os
import select
import subprocess
import time
from dataclasses import dataclass, field

from . import layout
from .home import Home
from .limits import Confinement
from .output_tail import LogTail
from .processes import stop


@dataclass
class SandboxRun:
    """What a finished run reports: how it ended, its output's tail, and the files it left."""

    returncode: int | None
    timed_out: bool
    oom_kills: int
    seconds: float
    log: str
    files: dict[str, bytes] = field(default_factory=dict)  # what it left under executed/ and outputs/
    truncated: bool = False  # some of those files did not come back (home.MAX_RESULT_BYTES, home.MAX_RESULT_FILES)
    disk_full: bool = False  # it filled its home (the disk cap, Limits.disk_mb)


class Started:
    """A run already started over its home; :meth:`wait` ends it, reads what it left and reports."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        box: Confinement,
        home: Home,
        log: LogTail,
        pidfd: int | None,
        sandboxed: bool,
    ):
        self.proc, self.box, self.home, self._log = proc, box, home, log
        self._pidfd, self.sandboxed = pidfd, sandboxed
        self.started = time.monotonic()
        self._result: SandboxRun | None = None

    def alive(self) -> bool:
        """Whether the run's first process is still running."""
        return self.proc.poll() is None

    def set_low_priority(self, low: bool) -> None:
        """Give the run only idle CPU (a warm-up) or its full share again."""
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
        stop(self.proc, self.box)
        if self._pidfd is None:  # --no-sandbox: no namespace to watch, the kill above is all there is
            return True
        # the namespace's first process ends only after the kernel killed and reaped every other one in it
        return bool(select.select([self._pidfd], [], [], 10)[0])

    def _disk_full(self) -> bool:
        """It filled its home or a result folder (sandboxed: a host folder has no cap to hit)."""
        return self.sandboxed and self.home.full()

"""Resource limits for one sandboxed run: memory and processes, enforced by the kernel (the disk cap is the size of
the sandbox's home, a tmpfs: see :mod:`.sandbox`).

The grader prefers a control group of its own (cgroup v2, or the v1 ``memory`` + ``pids`` hierarchies): a memory
ceiling on the resident memory of the whole process tree, a ceiling on the number of processes, an OOM count to
report, and a way to kill every process of the run at once. Where no control group can be made (no permission),
it falls back to per-process rlimits (address space and, for a non-root user, the process count) and says so.
"""

from __future__ import annotations

import os
import resource
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use: resident memory, processes, and disk (the size of its home)."""

    memory_mb: int = 4096
    max_procs: int = 256
    disk_mb: int = 1024  # everything a sandboxed run may write, /tmp included (the size of its tmpfs home)


def _own_cgroup_path(controller: str | None) -> str | None:
    """This process's cgroup path in the v1 hierarchy of ``controller`` (or in v2 when ``controller`` is None)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller is None and controllers == "":
            return path
        if controller is not None and controller in controllers.split(","):
            return path
    return None


class Confinement:
    """Limits for one run: ``preexec()`` in the child before it execs, ``kill()``, ``oom_kills()``, ``close()``."""

    kind = "rlimits"

    def __init__(self, limits: Limits):
        self.limits = limits

    def preexec(self) -> None:
        """In the child before it execs: no core dumps, and (rlimits only) caps on address space and processes."""
        mem = self.limits.memory_mb * 2**20
        if self.kind == "rlimits":
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            resource.setrlimit(resource.RLIMIT_NPROC, (self.limits.max_procs, self.limits.max_procs))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def kill(self, pid: int | None) -> None:
        """Kill the run's process group led by ``pid`` (None: only what the control group holds)."""
        if pid is None or pid <= 1:
            return
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def oom_kills(self) -> int:
        """How many of the run's processes the kernel killed for memory (rlimits cannot tell: 0)."""
        return 0

    def set_low_priority(self, low: bool) -> None:
        """Give the run only idle CPU (a warm-up) or its full share again; without a cpu control group, no-op."""

    def close(self) -> None:
        """Release what the confinement holds (rlimits hold nothing)."""
        pass

    def describe(self, disk: str) -> str:
        """The limits in words, ``disk`` (the sandbox's words for its disk cap, "... per run") last."""
        note = "" if os.geteuid() != 0 else " (not enforced for root: give the grader a writable cgroup)"
        memory = f"address space {self.limits.memory_mb} MB per process"
        return f"rlimits: {memory}, {self.limits.max_procs} processes, {disk}{note}"


class CgroupConfinement(Confinement):
    """A fresh control group (v2, or v1 memory + pids) under the grader's own, removed on ``close()``."""

    def __init__(self, limits: Limits, dirs: dict[str, Path], version: int):
        super().__init__(limits)
        self.dirs, self.version = dirs, version
        self.kind = f"cgroup v{version}"
        mem = str(limits.memory_mb * 2**20)
        if version == 2:
            (dirs["unified"] / "memory.max").write_text(mem)
            if (dirs["unified"] / "memory.swap.max").exists():
                (dirs["unified"] / "memory.swap.max").write_text("0")
            (dirs["unified"] / "pids.max").write_text(str(limits.max_procs))
        else:
            (dirs["memory"] / "memory.limit_in_bytes").write_text(mem)
            swap = dirs["memory"] / "memory.memsw.limit_in_bytes"
            if swap.exists():
                try:
                    swap.write_text(mem)
                except OSError:
                    pass
            (dirs["pids"] / "pids.max").write_text(str(limits.max_procs))

    @classmethod
    def create(cls, limits: Limits) -> CgroupConfinement | None:
        """A control group of its own for one run, its limits set; None where none can be made (no permission, no
        controllers to delegate)."""
        name = f"lensref-grade-{uuid.uuid4().hex[:12]}"
        made: dict[str, Path] = {}
        try:
            if (CGROUP_ROOT / "cgroup.controllers").exists():  # a pure v2 host
                own = _own_cgroup_path(None)
                parent = CGROUP_ROOT / (own or "/").lstrip("/")
                wanted = {"memory", "pids"}
                if not wanted <= set((parent / "cgroup.subtree_control").read_text().split()):
                    return None
                made["unified"] = parent / name
                made["unified"].mkdir()
                return cls(limits, made, 2)
            for controller in ("memory", "pids", "cpu"):
                own = _own_cgroup_path(controller)
                try:
                    if own is None or not (CGROUP_ROOT / controller).is_dir():
                        raise OSError(f"no v1 {controller} hierarchy")
                    made[controller] = CGROUP_ROOT / controller / own.lstrip("/") / name
                    made[controller].mkdir()
                except OSError:
                    if controller != "cpu":  # cpu only sets priorities: optional
                        raise
                    made.pop(controller, None)
            return cls(limits, made, 1)
        except OSError:
            for path in made.values():
                try:
                    path.rmdir()
                except OSError:
                    pass
            return None

    def preexec(self) -> None:
        """In the child before it execs: join the control group, then the rlimits' part."""
        pid = str(os.getpid())
        for path in self.dirs.values():
            (path / "cgroup.procs").write_text(pid)
        super().preexec()

    def _pids(self) -> set[int]:
        pids: set[int] = set()
        for path in self.dirs.values():
            try:
                pids |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return pids

    def kill(self, pid: int | None) -> None:
        """Kill the run's process group, then whatever is left in its control group (v2: ``cgroup.kill``)."""
        super().kill(pid)
        kill_file = self.dirs.get("unified", Path("/nonexistent")) / "cgroup.kill"
        if kill_file.exists():
            kill_file.write_text("1")
        for _ in range(50):  # v1 has no cgroup.kill: kill what is left until nothing is
            pids = self._pids()
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def oom_kills(self) -> int:
        """The control group's OOM kills (v1 without an ``oom_kill`` count: 1 if the memory limit was ever hit)."""
        try:
            if self.version == 2:
                events = (self.dirs["unified"] / "memory.events").read_text().split()
                return int(events[events.index("oom_kill") + 1]) if "oom_kill" in events else 0
            text = (self.dirs["memory"] / "memory.oom_control").read_text().split()
            if "oom_kill" in text:
                return int(text[text.index("oom_kill") + 1])
            return int((self.dirs["memory"] / "memory.failcnt").read_text().strip() != "0")
        except (OSError, ValueError):
            return 0

    def set_low_priority(self, low: bool) -> None:
        """Give the control group idle-only CPU weight (a warm-up) or its normal weight again."""
        # a control group of its own is scheduled as one unit beside the grader's (autogroups do not apply)
        if self.version == 2:
            target, value = self.dirs["unified"] / "cpu.weight", "1" if low else "100"
        elif "cpu" in self.dirs:
            target, value = self.dirs["cpu"] / "cpu.shares", "2" if low else "1024"
        else:
            return
        try:
            target.write_text(value)
        except OSError:  # no cpu controller delegated here: the run keeps its normal share
            pass

    def close(self) -> None:
        """Kill what is left in the control group, then remove its folders."""
        if self._pids():
            self.kill(None)
        for path in self.dirs.values():
            for _ in range(20):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)

    def describe(self, disk: str) -> str:
        """The control group and its limits in words, ``disk`` last."""
        memory = f"{self.limits.memory_mb} MB resident memory"
        return f"{self.kind}: {memory}, {self.limits.max_procs} processes, {disk}"


def sweep_stale(max_age_s: float = 600) -> int:
    """Remove empty control groups that killed graders left behind (a non-empty one cannot be removed, and one
    younger than ``max_age_s`` may be a run just starting); returns how many went."""
    parents = []
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        parents.append(CGROUP_ROOT / (_own_cgroup_path(None) or "/").lstrip("/"))
    else:
        for controller in ("memory", "pids", "cpu"):
            own = _own_cgroup_path(controller)
            if own is not None:
                parents.append(CGROUP_ROOT / controller / own.lstrip("/"))
    removed = 0
    for parent in parents:
        try:
            stale = [c for c in parent.glob("lensref-grade-*") if time.time() - c.stat().st_mtime > max_age_s]
        except OSError:
            continue
        for child in stale:
            try:
                child.rmdir()
                removed += 1
            except OSError:  # in use, or not ours to remove
                pass
    return removed


def confinement(limits: Limits) -> Confinement:
    """The strongest confinement this machine allows for one run."""
    return CgroupConfinement.create(limits) or Confinement(limits)

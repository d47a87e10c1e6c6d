"""Logit difference through the lens: matches the full lens and the model, bad input fails in one line."""

import json

import pytest
import torch

from lensref import LensError, capture_residuals
from lensref.cli import main
from lensref.course.examples import EIFFEL, EIFFEL_DISTRACTOR, EIFFEL_TARGET
from lensref.logitdiff import LogitDiffResult, logit_diff
from lensref.tokens import encode_prompt

PROMPT = "hello world"


def test_matches_full_vocabulary_lens_and_model(tiny_lm):
    result = logit_diff(tiny_lm, PROMPT, "a", "b")
    ids = encode_prompt(tiny_lm.tokenizer, PROMPT)
    res = capture_residuals(tiny_lm, ids)
    full = tiny_lm.adapter.decode(res.states[:, 0])  # [L+1, T, V]
    a, b = ord("a"), ord("b")
    expected = full[..., a] - full[..., b]
    assert result.diff.shape == (tiny_lm.n_layers + 1, len(ids))
    assert torch.allclose(result.diff, expected, atol=1e-6, rtol=1e-5)
    assert torch.allclose(result.diff[-1], result.model_logit_diff, atol=1e-6, rtol=1e-5)
    assert result.diff.abs().max() > 1e-3  # the check above is not vacuous
    swapped = logit_diff(tiny_lm, PROMPT, "b", "a")
    assert torch.allclose(swapped.diff, -result.diff)


def test_first_positive_layer_needs_the_sign_to_hold():
    values = torch.tensor([[-1.0], [2.0], [-0.5], [0.3], [1.0]])
    result = LogitDiffResult("m", ["x"], [1], "a", "b", 1, 2, values, torch.zeros_like(values), values[-1])
    assert result.first_positive_layer() == 3
    assert result.at(0) == values[:, 0].tolist()
    never = LogitDiffResult("m", ["x"], [1], "a", "b", 1, 2, -values.abs(), torch.zeros_like(values), values[-1])
    assert never.first_positive_layer() is None


def test_to_dict_and_plot(tmp_path):
    from lensref import tiny_model
    from lensref.plotting.logitdiff import plot_logit_diff

    lm = tiny_model("gpt2")
    result = logit_diff(lm, PROMPT, "a", "b")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["target"] == {"text": "a", "id": ord("a")} and data["distractor"]["id"] == ord("b")
    assert len(data["layers"]) == lm.n_layers + 1 and len(data["layers"][0]["logit_diff"]) == len(PROMPT)
    assert data["layers"][-1]["logit_diff"][-1] == pytest.approx(data["model_logit_diff"][-1], abs=1e-5)
    path = tmp_path / "ld.png"
    plot_logit_diff(result, path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "target, distractor, message",
    [
        ("ab", "b", "the target 'ab' is 2 tokens"),
        ("a", "xy", "the distractor 'xy' is 2 tokens"),
        ("a", "a", "the target and distractor are the same token"),
        ("", "a", "the target is empty"),
    ],
)
def test_bad_tokens(target, distractor, message):
    from lensref import tiny_model

    with pytest.raises(LensError, match=message):
        logit_diff(tiny_model("llama"), PROMPT, target, distractor)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--target", "ab", "--distractor", "b"], "error: the target 'ab' is 2 tokens"),
        (
            ["--target", "a", "--distractor", "b", "--position", "11"],
            "error: position 11 is out of range for a prompt of 11 tokens",
        ),
        (["--target", "a", "--distractor", "b", "--position", "-12"], "error: position -12 is out of range"),
    ],
)
def test_cli_errors_are_one_line(monkeypatch, capsys, extra, message):
    from lensref import tiny_model

    monkeypatch.setattr("lensref.commands.logitdiff.load_model", lambda *a, **k: tiny_model("llama"))
    assert main(["logitdiff", PROMPT, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_cli_table_json_plot(monkeypatch, capsys, tmp_path):
    from lensref import tiny_model

    lm = tiny_model("qwen2")
    monkeypatch.setattr("lensref.commands.logitdiff.load_model", lambda *a, **k: lm)
    out_json, out_png = tmp_path / "d.json", tmp_path / "d.png"
    assert (
        main(
            ["logitdiff", PROMPT, "--target", "a", "--distractor", "b", "--json", str(out_json), "--plot", str(out_png)]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "tiny-qwen2: logit a - logit b after 'd'"
    assert len(lines) == 2 + lm.n_layers + 1 + 1 and lines[-2].split()[0] == str(lm.n_layers)
    assert float(lines[-2].split()[1]) == pytest.approx(
        float(logit_diff(lm, PROMPT, "a", "b").model_logit_diff[-1]), abs=1e-3
    )
    assert json.loads(out_json.read_text())["tokens"] == list(PROMPT)
    assert out_png.stat().st_size > 1000


@pytest.mark.real_model
def test_paris_beats_london_only_in_the_last_layers(real_lm):
    """Lesson claim: " Paris" - " London" is negative through layer 23, jumps positive at layer 24 and stays."""
    result = logit_diff(real_lm, EIFFEL, EIFFEL_TARGET, EIFFEL_DISTRACTOR)
    diff = result.at(-1)
    assert diff[-1] == pytest.approx(float(result.model_logit_diff[-1]), abs=1e-3)
    assert diff[-1] > 5
    assert result.first_positive_layer() == 24
    assert max(diff[:24]) < 0
    assert diff[24] - diff[23] > 5  # one block (attention 23, see DLA) writes most of it


def test_model_diff_is_a_deprecated_name_of_model_logit_diff(tiny_lm):
    result = logit_diff(tiny_lm, "xy", "y", "x")
    with pytest.warns(DeprecationWarning, match="use LogitDiffResult.model_logit_diff"):
        old = result.model_diff
    assert old is result.model_logit_diff

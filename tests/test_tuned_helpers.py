"""The tuned-lens helpers the book uses (``get_or_train_tuned_lens``, ``train_and_save``, ``default_lens_dir``)
and every option of ``lensref tuned train`` / ``lensref tuned eval``, on a tiny model.

The corpus is replaced by a few chunks of text made here, so these tests depend on no corpus file and train in
well under a second; what is checked is what the helpers do with it: train once, save where they say, record
how, load instead of training again.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

import lensref.tuned as tuned
from lensref import LensError, tiny_model
from lensref.cli import main
from lensref.tuned import TrainConfig, default_lens_dir, get_or_train_tuned_lens, load_tuned_lens, read_config

SEQ = 32
SMALL = TrainConfig(max_tokens=4 * SEQ, seq_len=SEQ, steps=2, batch_tokens=32, layers_per_step=0, lr=1e-3)


@pytest.fixture(scope="module")
def lm():
    return tiny_model("llama")


def chunks(text: str, n: int) -> torch.Tensor:
    ids = list((text * 50).encode())[: n * SEQ]
    return torch.tensor(ids).view(n, SEQ)


@pytest.fixture
def corpus_calls(monkeypatch):
    """``load_corpus`` replaced by a fixed small corpus; each call's keyword arguments are recorded."""
    calls = []

    def fake(tokenizer, extra_texts=None, **kwargs):
        calls.append(dict(kwargs, extra_texts=list(extra_texts or [])))
        return SimpleNamespace(
            train=chunks("the lens reads the residual stream. ", 4),
            heldout=chunks("a held-out sentence about layers. ", 2),
            train_topics=["t1", "t2"],
            heldout_topics=["h1"],
        )

    monkeypatch.setattr(tuned, "load_corpus", fake)
    return calls


@pytest.fixture
def trainings(monkeypatch):
    """Every call of the real ``train_tuned_lens``, with the config it was given."""
    seen = []
    real = tuned.train_tuned_lens

    def spy(lm, ids, config, progress=True):
        seen.append(SimpleNamespace(config=config, progress=progress, n_chunks=ids.shape[0]))
        return real(lm, ids, config, progress=False)

    monkeypatch.setattr(tuned, "train_tuned_lens", spy)
    return seen


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LENSREF_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_default_lens_dir_is_under_the_cache(cache):
    assert default_lens_dir("smollm2-135m-instruct") == cache / "tuned" / "smollm2-135m-instruct"
    assert default_lens_dir("org/model") == cache / "tuned" / "org--model"  # a hub id stays one folder


def test_train_and_save_records_how_it_was_trained(lm, cache, corpus_calls, trainings):
    lens, report, folder = tuned.train_and_save(lm, SMALL, extra_texts=["my notes"], progress=False)
    assert folder == cache / "tuned" / "tiny-llama"
    assert [t.config for t in trainings] == [SMALL] and trainings[0].n_chunks == 4
    assert corpus_calls[0]["extra_texts"] == ["my notes"]
    assert corpus_calls[0]["max_train_tokens"] == SMALL.max_tokens and corpus_calls[0]["seq_len"] == SEQ
    config = read_config(folder)
    assert (config["model"], config["preset"], config["n_extra_text_files"]) == ("tiny-llama", "custom", 1)
    assert config["heldout_topics"] == ["h1"] and config["train"]["n_tokens"] == report.n_tokens == 4 * (SEQ - 1)
    loaded = load_tuned_lens(folder, lm)
    assert torch.equal(loaded.weight, lens.weight) and torch.equal(loaded.bias, lens.bias)
    assert not torch.equal(lens.weight, torch.eye(lm.adapter.d_model).expand_as(lens.weight))  # it did train


def test_a_preset_by_name(lm, tmp_path, corpus_calls, trainings, monkeypatch):
    monkeypatch.setitem(tuned.PRESETS, "quick", SMALL)
    _, _, folder = tuned.train_and_save(lm, "quick", tmp_path / "lens", progress=False)
    assert read_config(folder)["preset"] == "quick" and trainings[0].config is SMALL


def test_get_or_train_trains_once_then_loads(lm, tmp_path, corpus_calls, trainings):
    folder = tmp_path / "lens"
    first = get_or_train_tuned_lens(lm, SMALL, folder)
    assert len(trainings) == 1 and trainings[0].progress is False and (folder / "config.json").is_file()
    again = get_or_train_tuned_lens(lm, SMALL, folder)
    assert len(trainings) == 1  # loaded, not trained again
    assert torch.equal(again.weight, first.weight) and torch.equal(again.bias, first.bias)


def test_get_or_train_uses_the_cache_folder_by_default(lm, cache, corpus_calls, trainings):
    lens = get_or_train_tuned_lens(lm, SMALL)
    assert (cache / "tuned" / "tiny-llama" / "config.json").is_file() and len(trainings) == 1
    assert torch.equal(load_tuned_lens(default_lens_dir(lm.name), lm).weight, lens.weight)


def test_get_or_train_refuses_a_lens_of_another_model(lm, tmp_path, corpus_calls, trainings):
    folder = tmp_path / "lens"
    get_or_train_tuned_lens(lm, SMALL, folder)
    with pytest.raises(LensError, match="tiny-llama"):
        get_or_train_tuned_lens(tiny_model("gpt2"), SMALL, folder)


# --- lensref tuned train / eval ------------------------------------------------------------------------------


@pytest.fixture
def use_tiny(monkeypatch, lm):
    calls = []

    def fake(spec=None, device="cpu"):
        calls.append((spec, device))
        return lm

    monkeypatch.setattr("lensref.models.load_model", fake)
    return calls


def test_cli_train_options(lm, tmp_path, capsys, use_tiny, corpus_calls, trainings, monkeypatch):
    monkeypatch.setitem(tuned.PRESETS, "quick", SMALL)
    text = tmp_path / "notes.txt"
    text.write_text("my own prose about lenses. " * 20, encoding="utf-8")
    out = tmp_path / "lens"
    argv = [
        "tuned",
        "train",
        "--out",
        str(out),
        "--preset",
        "quick",
        "--max-tokens",
        str(6 * SEQ),
        "--steps",
        "1",
        "--text",
        str(text),
        "--text",
        str(text),
        "--quiet",
        "--model",
        "m",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"saved to {out}" in printed and "trained a tuned lens for tiny-llama on 124 tokens" in printed
    assert use_tiny == [("m", "cpu")]
    [training] = trainings
    assert (training.config.max_tokens, training.config.steps, training.config.seq_len) == (6 * SEQ, 1, SEQ)
    assert training.progress is False  # --quiet
    assert SMALL.max_tokens == 4 * SEQ and SMALL.steps == 2  # the preset itself is left as it was
    assert corpus_calls[0]["extra_texts"] == [text.read_text(encoding="utf-8")] * 2
    config = read_config(out)
    assert (config["preset"], config["n_extra_text_files"]) == ("custom", 2)


def test_cli_train_preset_alone(lm, tmp_path, capsys, use_tiny, corpus_calls, trainings, monkeypatch):
    monkeypatch.setitem(tuned.PRESETS, "full", SMALL)
    assert main(["tuned", "train", "--out", str(tmp_path / "lens")]) == 0  # the default preset is full
    assert trainings[0].config.max_tokens == SMALL.max_tokens and trainings[0].progress is True
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max-tokens", "10"], "--max-tokens must be at least one chunk"),
        (["--steps", "-1"], "--steps must be 0 or more, got -1"),
        (["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
        (["--text", "{tmp}/missing.txt"], "text file"),
        (["--max-tokens", "many"], "argument --max-tokens: invalid int value: 'many'"),
    ],
)
def test_cli_train_bad_options_are_one_line(tmp_path, capsys, use_tiny, corpus_calls, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(["tuned", "train", "--out", str(tmp_path / "lens"), *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "lens").exists()


def test_cli_eval_options(lm, tmp_path, capsys, use_tiny, corpus_calls, trainings):
    folder = tmp_path / "lens"
    get_or_train_tuned_lens(lm, SMALL, folder)
    out_json, out_png = tmp_path / "eval.json", tmp_path / "eval.png"
    argv = [
        "tuned",
        "eval",
        "--lens",
        str(folder),
        "--max-tokens",
        "256",
        "--json",
        str(out_json),
        "--plot",
        str(out_png),
        "--quiet",
        "--model",
        "m",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert use_tiny == [("m", "cpu")] and corpus_calls[-1]["max_heldout_tokens"] == 256
    data = json.loads(out_json.read_text())
    assert data["lens"] == str(folder) and data["model"] == "tiny-llama" and len(data["kl_tuned"]) == lm.n_layers + 1
    assert data["kl_tuned"][-1] == data["kl_logit"][-1] == 0.0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(lines) == 2 + lm.n_layers + 1 + 1 and lines[-1].startswith("tuned lens KL is")


def test_cli_eval_uses_the_cache_folder_by_default(lm, cache, capsys, use_tiny, corpus_calls, trainings):
    get_or_train_tuned_lens(lm, SMALL)
    assert main(["tuned", "eval", "--quiet"]) == 0
    assert corpus_calls[-1]["max_heldout_tokens"] == 1024  # the default
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max-tokens", "100"], "--max-tokens must be at least one chunk (128 tokens), got 100"),
        (["--lens", "{tmp}/nolens"], "no tuned lens at {tmp}/nolens"),
        (["--json", "{tmp}/no/e.json"], "--json {tmp}/no/e.json: folder {tmp}/no does not exist"),
        (["--plot", "{tmp}/no/e.png"], "--plot {tmp}/no/e.png: folder {tmp}/no does not exist"),
        (["--plot", "{tmp}/e.bmpx"], "--plot {tmp}/e.bmpx: cannot write a .bmpx figure"),
    ],
)
def test_cli_eval_bad_options_are_one_line(tmp_path, capsys, use_tiny, corpus_calls, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["tuned", "eval", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {message.replace('{tmp}', str(tmp_path))}\n" or (
        err.startswith(f"error: {message.replace('{tmp}', str(tmp_path))}") and err.count("\n") == 1
    )

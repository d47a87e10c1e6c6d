"""The tuned lens: translators, least squares, training, evaluation, save/load, CLI, and the lesson's claim."""

import json

import pytest
import torch

from lensref import LensError, logit_lens, tiny_model
from lensref.cli import main
from lensref.residual import capture_residuals
from lensref.tuned import (
    TrainConfig,
    TunedLens,
    compare_lenses,
    load_corpus,
    load_tuned_lens,
    read_config,
    save_tuned_lens,
    train_tuned_lens,
)
from lensref.tuned.data import chunk, pydoc_topics, split_topics, tokenize_stream
from lensref.tuned.train import cache_states, least_squares_init


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def tiny_corpus(tiny):
    return load_corpus(tiny.tokenizer, max_train_tokens=4096, max_heldout_tokens=512, seq_len=64)


def random_lens(lm, seed=1):
    lens = TunedLens(lm.n_layers, lm.adapter.d_model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lens.weight.add_(0.1 * torch.randn(lens.weight.shape, generator=gen))
        lens.bias.add_(0.1 * torch.randn(lens.bias.shape, generator=gen))
    return lens


# --- data ---------------------------------------------------------------------------------------


def test_topic_split_is_deterministic_disjoint_and_about_ten_percent():
    topics = pydoc_topics()
    train, heldout = split_topics(topics)
    assert (train, heldout) == split_topics(dict(reversed(list(topics.items()))))
    assert not set(train) & set(heldout) and set(train) | set(heldout) == set(topics)
    share = sum(len(topics[n]) for n in heldout) / sum(len(t) for t in topics.values())
    assert 0.1 <= share < 0.2, share


def test_chunks_are_shuffled_whole_and_capped():
    ids = torch.arange(1000)
    chunks = chunk(ids, seq_len=100, seed=0)
    assert chunks.shape == (10, 100)
    assert sorted(chunks[:, 0].tolist()) == list(range(0, 1000, 100))
    assert chunks[:, 0].tolist() != list(range(0, 1000, 100))
    assert torch.equal(chunks[:, 1:] - chunks[:, :-1], torch.ones(10, 99, dtype=torch.long))
    assert chunk(ids, seq_len=100, max_tokens=350).shape == (3, 100)
    with pytest.raises(LensError, match="shorter than one chunk"):
        chunk(torch.arange(50), seq_len=100)


def test_stream_joins_texts_with_a_blank_line(tiny):
    assert tokenize_stream(tiny.tokenizer, ["ab", "c"]).tolist() == list(b"ab\n\nc")


# --- translator ---------------------------------------------------------------------------------


def test_identity_init_is_exactly_the_logit_lens(tiny_lm):
    lens = TunedLens(tiny_lm.n_layers, tiny_lm.adapter.d_model)
    plain = logit_lens(tiny_lm, "hello lens", top_k=3, keep_logits=True)
    tuned = logit_lens(tiny_lm, "hello lens", top_k=3, keep_logits=True, translator=lens)
    assert torch.equal(plain.logits, tuned.logits)
    assert torch.equal(plain.kl_to_final, tuned.kl_to_final)


def test_translator_changes_every_layer_but_the_last(tiny):
    lens = random_lens(tiny)
    plain = logit_lens(tiny, "hello lens", keep_logits=True)
    tuned = logit_lens(tiny, "hello lens", keep_logits=True, translator=lens)
    L = tiny.n_layers
    for layer in range(L):
        assert (plain.logits[layer] - tuned.logits[layer]).abs().max() > 1e-3
    assert torch.equal(plain.logits[L], tuned.logits[L])
    with pytest.raises(IndexError):
        lens.translate(L + 1, torch.zeros(1, tiny.adapter.d_model))


# --- caching and least squares ------------------------------------------------------------------


def test_cached_states_match_capture_residuals(tiny, tiny_corpus):
    ids = tiny_corpus.train[:3]
    cached = cache_states(tiny, ids, dtype=torch.float32, batch=2, progress=False)
    full = capture_residuals(tiny, ids).states  # [L+1, 3, T, d]
    assert cached.shape == (tiny.n_layers + 1, 3 * (ids.shape[1] - 1), tiny.adapter.d_model)
    assert torch.allclose(cached, full[:, :, 1:].reshape_as(cached), atol=1e-6)


def test_least_squares_recovers_a_known_map():
    L, N, d = 2, 400, 8
    x = torch.randn(L + 1, N, d)
    perm = torch.randperm(d, generator=torch.Generator().manual_seed(0))
    x[L] = 3.0 * x[0][:, perm]  # layer 0 -> final: a permutation (and a scale the final norm removes)
    x[1] = x[L]  # layer 1 is already the final state
    lens = TunedLens(L, d)
    least_squares_init(lens, x, ridge=0.0, progress=False)
    assert torch.allclose(lens.weight[0], torch.eye(d)[perm], atol=1e-4)
    assert torch.allclose(lens.weight[1], torch.eye(d), atol=1e-4)
    assert lens.bias.abs().max() < 1e-4


def test_a_huge_ridge_keeps_the_identity():
    x = torch.randn(3, 200, 8)
    lens = TunedLens(2, 8)
    least_squares_init(lens, x, ridge=1e6, progress=False)
    assert torch.allclose(lens.weight, torch.eye(8).expand(2, 8, 8), atol=1e-3)


# --- training and evaluation --------------------------------------------------------------------


def test_identity_lens_evaluates_like_the_logit_lens(tiny, tiny_corpus):
    result = compare_lenses(
        tiny, tiny_corpus.heldout[:2], TunedLens(tiny.n_layers, tiny.adapter.d_model), progress=False
    )
    assert result.kl_tuned == result.kl_logit and result.ce_tuned == result.ce_logit
    assert result.kl_logit[-1] == 0.0 and min(result.kl_logit[:-1]) > 1e-4
    ids = tiny_corpus.heldout[:2]
    logits = tiny.model(input_ids=ids).logits[:, 1:-1]
    model_ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 2:].reshape(-1))
    assert result.n_tokens == 2 * (ids.shape[1] - 2)
    assert abs(result.model_ce - float(model_ce)) < 1e-4
    assert result.layers_where_tuned_not_better() == list(range(tiny.n_layers))


@pytest.mark.parametrize("steps", [0, 30])
def test_training_lowers_heldout_kl_at_every_layer(tiny, tiny_corpus, steps):
    config = TrainConfig(max_tokens=4096, seq_len=64, steps=steps, batch_tokens=64, layers_per_step=0, lr=3e-3)
    lens, report = train_tuned_lens(tiny, tiny_corpus.train, config, progress=False)
    result = compare_lenses(tiny, tiny_corpus.heldout, lens, progress=False)
    assert result.layers_where_tuned_not_better() == [], result.format_table()
    assert report.n_tokens == tiny_corpus.train.shape[0] * 63
    if steps:
        assert len(report.losses) == steps and report.loss_end < report.loss_start


def test_finetune_lowers_training_kl_from_identity(tiny, tiny_corpus):
    config = TrainConfig(
        max_tokens=4096, seq_len=64, ridge=float("inf"), steps=40, batch_tokens=64, layers_per_step=0, lr=1e-2
    )
    _, report = train_tuned_lens(tiny, tiny_corpus.train, config, progress=False)
    assert report.loss_end < 0.8 * report.loss_start, (report.loss_start, report.loss_end)


# --- save / load --------------------------------------------------------------------------------


def test_save_load_round_trip(tiny, tmp_path):
    lens = random_lens(tiny)
    folder = save_tuned_lens(lens, tiny, tmp_path / "lens", {"preset": "test"})
    config = read_config(folder)
    assert (config["model"], config["n_layers"], config["d_model"], config["preset"]) == ("tiny-llama", 3, 32, "test")
    loaded = load_tuned_lens(folder, tiny)
    assert torch.equal(loaded.weight, lens.weight) and torch.equal(loaded.bias, lens.bias)
    save_tuned_lens(TunedLens(3, 32), tiny, folder)  # replaces the old one whole
    assert torch.equal(load_tuned_lens(folder, tiny).weight, torch.eye(32).expand(3, 32, 32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lens"]


@pytest.mark.parametrize(
    "other, words",
    [
        (dict(family="gpt2"), "is for model 'tiny-llama'"),
        (dict(family="llama", n_layers=4), "is for n layers 3"),
        (dict(family="llama", d_model=64), "is for d model 32"),
    ],
)
def test_a_lens_for_another_model_is_refused(tiny, tmp_path, other, words):
    folder = save_tuned_lens(TunedLens(3, 32), tiny, tmp_path / "lens")
    with pytest.raises(LensError, match=words) as info:
        load_tuned_lens(folder, tiny_model(**other))
    assert "\n" not in str(info.value)


def test_broken_lens_folders_get_one_line_errors(tiny, tmp_path):
    with pytest.raises(LensError, match="no tuned lens at"):
        load_tuned_lens(tmp_path / "missing", tiny)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LensError, match="is not a tuned lens"):
        load_tuned_lens(tmp_path / "empty", tiny)
    folder = save_tuned_lens(TunedLens(3, 32), tiny, tmp_path / "lens")
    (folder / "translators.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(LensError, match="not a readable safetensors file"):
        load_tuned_lens(folder, tiny)
    (folder / "config.json").write_text("{")
    with pytest.raises(LensError, match="not valid JSON"):
        load_tuned_lens(folder, tiny)


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_train_eval_and_lens(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("lensref.models.load_model", lambda *a, **k: tiny)
    monkeypatch.setattr("lensref.commands.lens.load_model", lambda *a, **k: tiny)
    out = tmp_path / "lens"
    text = tmp_path / "extra.txt"
    text.write_text("some more prose to read. " * 40)
    assert (
        main(
            [
                "tuned",
                "train",
                "--out",
                str(out),
                "--max-tokens",
                "1024",
                "--steps",
                "3",
                "--quiet",
                "--text",
                str(text),
            ]
        )
        == 0
    )
    assert "saved to" in capsys.readouterr().out
    assert read_config(out)["n_extra_text_files"] == 1
    js, png = tmp_path / "eval.json", tmp_path / "eval.png"
    assert (
        main(
            [
                "tuned",
                "eval",
                "--lens",
                str(out),
                "--max-tokens",
                "256",
                "--quiet",
                "--json",
                str(js),
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + tiny.n_layers + 1 + 1
    data = json.loads(js.read_text())
    assert data["model"] == "tiny-llama" and len(data["kl_tuned"]) == tiny.n_layers + 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["lens", "hello", "--tuned", str(out)]) == 0


def test_cli_mismatched_lens_is_one_line_error(tiny, tmp_path, monkeypatch, capsys):
    folder = save_tuned_lens(TunedLens(3, 32), tiny, tmp_path / "lens")
    other = tiny_model("gpt2")
    monkeypatch.setattr("lensref.commands.lens.load_model", lambda *a, **k: other)
    assert main(["lens", "hello", "--tuned", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the tuned lens at") and "tiny-gpt2" in err and err.count("\n") == 1
    assert main(["tuned", "train", "--text", str(tmp_path / "nope.txt")]) == 2
    assert "error: text file" in capsys.readouterr().err


# --- the lesson's claim, on the real model ------------------------------------------------------


@pytest.mark.real_model
@pytest.mark.slow
def test_tuned_lens_beats_logit_lens_at_every_layer_on_heldout_text(real_lm):
    corpus = load_corpus(real_lm.tokenizer, max_train_tokens=4096, max_heldout_tokens=256)
    config = TrainConfig(max_tokens=4096, steps=0)  # least squares only: the quickest honest version
    lens, _ = train_tuned_lens(real_lm, corpus.train, config, progress=False)
    result = compare_lenses(real_lm, corpus.heldout, lens, progress=False)
    assert result.layers_where_tuned_not_better() == [], result.format_table()
    L = result.n_layers
    assert sum(result.kl_tuned[:L]) < 0.5 * sum(result.kl_logit[:L]), result.format_table()
    assert result.kl_tuned[L] == result.kl_logit[L] == 0.0

"""Patchscopes: patching writes the right state at the right place, maps between models fit, errors are clear."""

import json

import pytest
import torch

from lensref import LensError, capture_residuals, tiny_model
from lensref.cli import main
from lensref.corpus import prose_windows
from lensref.course.examples import EIFFEL
from lensref.patchscope import (
    IDENTITY_PROMPT,
    PLACEHOLDER,
    find_placeholder,
    generate_patched,
    patched_logits,
    patchscope,
)
from lensref.residual_map import fit_affine, fit_residual_map
from lensref.tokens import encode_prompt

SOURCE = "the cat sat"


@torch.no_grad()
def greedy(lm, ids, n_tokens, hook_module=None, hook=None):
    """Reference generation: no cache, the whole sequence every step, an optional pre-hook on every step.
    Returns the new tokens and the first one's probability (random tiny models often agree on the
    argmax token, so the tests compare the probability too)."""
    handle = hook_module.register_forward_pre_hook(hook, with_kwargs=True) if hook_module is not None else None
    try:
        seq, first_prob = ids[None], None
        for _ in range(n_tokens):
            logits = lm.model(input_ids=seq, use_cache=False).logits[0, -1]
            first_prob = float(torch.softmax(logits, -1).max()) if first_prob is None else first_prob
            seq = torch.cat([seq, logits.argmax().view(1, 1)], dim=1)
    finally:
        if handle is not None:
            handle.remove()
    return [lm.tokenizer.decode([int(i)]) for i in seq[0, len(ids) :]], first_prob


def same(readout, reference) -> bool:
    tokens, first_prob = reference
    return readout.tokens == tokens and readout.first_prob == pytest.approx(first_prob, rel=1e-5)


def test_layer_0_patch_is_swapping_the_placeholder_token():
    """At layer 0 (the embedding) of a rotary model, patching a token's state = writing that token."""
    lm = tiny_model("llama")
    result = patchscope(lm, SOURCE, position=4, layers=[0], n_tokens=3)  # 'c'
    assert result.source_token == "c" and result.placeholder_position == IDENTITY_PROMPT.rindex("?")
    swapped = IDENTITY_PROMPT[: result.placeholder_position] + "c" + IDENTITY_PROMPT[result.placeholder_position + 1 :]
    assert same(result.continuation(0), greedy(lm, encode_prompt(lm.tokenizer, swapped), 3))
    assert not same(result.continuation(0), greedy(lm, encode_prompt(lm.tokenizer, IDENTITY_PROMPT), 3))


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_cached_generation_matches_patching_every_full_step(family):
    lm = tiny_model(family)
    layer, position = 2, -1
    result = patchscope(lm, SOURCE, position=position, layers=[layer], n_tokens=3)
    state = capture_residuals(lm, encode_prompt(lm.tokenizer, SOURCE)).states[layer, 0, position]
    slot = result.placeholder_position

    def hook(module, args, kwargs):
        hidden = args[0].clone()
        hidden[:, slot] = state
        return (hidden, *args[1:]), kwargs

    target_ids = encode_prompt(lm.tokenizer, IDENTITY_PROMPT)
    assert same(result.continuation(layer), greedy(lm, target_ids, 3, lm.adapter.blocks[layer], hook))
    assert not same(result.continuation(layer), greedy(lm, target_ids, 3))


def test_last_layer_patch_goes_through_the_final_norm():
    """Patched at layer L into the last position, the first readout token is the source's own prediction."""
    lm = tiny_model("qwen2")
    result = patchscope(lm, SOURCE, position=-1, layers=[lm.n_layers], target_prompt="x -> ?", n_tokens=1)
    logits = capture_residuals(lm, encode_prompt(lm.tokenizer, SOURCE)).logits[0, -1]
    readout = result.continuation(lm.n_layers)
    assert readout.tokens == [lm.tokenizer.decode([int(logits.argmax())])]
    assert readout.first_prob == pytest.approx(float(torch.softmax(logits, -1).max()), rel=1e-4)


def test_batched_layers_match_one_at_a_time():
    lm = tiny_model("mistral")
    together = patchscope(lm, SOURCE, layers=[0, 1, 2, 3], n_tokens=3)
    for layer in range(4):
        alone = patchscope(lm, SOURCE, layers=[layer], n_tokens=3).continuation(layer)
        assert together.continuation(layer).tokens == alone.tokens
        assert together.continuation(layer).first_prob == pytest.approx(alone.first_prob, rel=1e-5)
    assert len({round(r.first_prob, 6) for r in together.continuations}) == 4  # each layer's patch differs


def test_target_layer_and_to_dict():
    lm = tiny_model("gpt2")
    result = patchscope(lm, SOURCE, layers=[1, 3], target_layer=0, n_tokens=2)
    assert [r.target_layer for r in result.continuations] == [0, 0]
    data = json.loads(json.dumps(result.to_dict()))
    assert data["source_token"] == "t" and [r["layer"] for r in data["continuations"]] == [1, 3]
    assert all(len(r["tokens"]) == 2 and r["map"] is None for r in data["continuations"])


def test_the_old_readout_names_still_work_and_warn():
    """``Readout``, ``.readouts``, ``.readout(layer)`` and the JSON key ``"readouts"`` are deprecated names (until 0.3)."""
    import lensref.patchscope as ps

    result = patchscope(tiny_model("gpt2"), SOURCE, layers=[1, 3], n_tokens=2)
    with pytest.warns(DeprecationWarning, match=r"lensref.patchscope.Readout is deprecated; use .*Continuation"):
        assert ps.Readout is ps.Continuation
    with pytest.warns(DeprecationWarning, match=r"PatchscopeResult.readouts is deprecated; use .*continuations"):
        assert result.readouts == result.continuations
    with pytest.warns(DeprecationWarning, match=r"PatchscopeResult.readout\(\) is deprecated"):
        assert result.readout(3) is result.continuation(3)
    data = result.to_dict()
    assert data["readouts"] == data["continuations"] and len(data["continuations"]) == 2
    with pytest.raises(AttributeError):
        ps.NoSuchName  # noqa: B018


def test_fit_affine_recovers_an_exact_map_and_needs_enough_rows():
    torch.manual_seed(0)
    x = torch.randn(200, 8)
    w, b = torch.randn(8, 5), torch.randn(5)
    weight, bias, error = fit_affine(x, x @ w + b)
    assert torch.allclose(weight.float(), w, atol=1e-4) and torch.allclose(bias.float(), b, atol=1e-4)
    assert error < 1e-10
    _, _, noisy = fit_affine(x, torch.randn(200, 5))
    assert 0.8 < noisy < 1.0  # unrelated targets: barely better than predicting the mean
    with pytest.raises(LensError, match="needs at least 9 aligned tokens"):
        fit_affine(x[:8], x[:8, :5])


def test_cross_width_map_beats_the_baseline_and_patches_through():
    source = tiny_model("llama", seed=0)
    target = tiny_model("llama", seed=1, d_model=48)
    texts = prose_windows(8, 200)
    residual_map = fit_residual_map(source, target, texts, source_layer=1, target_layer=1)
    assert residual_map.weight.shape == (32, 48) and residual_map.n_fit == 1600
    assert residual_map.fit_error < 0.5  # the trivial baseline (the mean target state) scores 1.0
    own = fit_residual_map(source, source, texts, 2, 2)  # a model onto itself: the identity
    assert own.fit_error < 1e-8 and torch.allclose(own.weight, torch.eye(32), atol=1e-4)

    with pytest.raises(LensError, match="the source model is 32 wide and the target model 48"):
        patchscope(source, SOURCE, layers=[1], target_lm=target)
    result = patchscope(source, SOURCE, layers=[1], target_lm=target, maps={1: residual_map}, n_tokens=2)
    assert result.target_model == "tiny-llama" and result.continuation(1).target_layer == 1
    state = capture_residuals(source, encode_prompt(source.tokenizer, SOURCE)).states[1, 0, -1]
    mapped = residual_map(state[None])[0]
    slot = result.placeholder_position

    def hook(module, args, kwargs):
        hidden = args[0].clone()
        hidden[:, slot] = mapped
        return (hidden, *args[1:]), kwargs

    expected = greedy(target, encode_prompt(target.tokenizer, IDENTITY_PROMPT), 2, target.adapter.blocks[1], hook)
    assert same(result.continuation(1), expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(position=11), "position 11 is out of range for a prompt of 11 tokens"),
        (dict(layers=[4]), "source layer 4 is out of range; this model has layers 0..3"),
        (dict(target_layer=-1), "target layer -1 is out of range"),
        (dict(target_prompt="no placeholder here"), "the placeholder '\\?' is not a token of the target prompt"),
        (dict(n_tokens=0), "at least 1"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(LensError, match=message):
        patchscope(tiny_model("llama"), "hello world", **kwargs)


def test_missing_placeholder_is_reported_on_one_line():
    """A target prompt with a newline in it: the error lists its tokens with the newline made visible."""
    with pytest.raises(LensError) as caught:
        patchscope(tiny_model("llama"), "hello world", target_prompt="first line\nsecond line")
    message = str(caught.value)
    assert "\n" not in message and "is not a token of the target prompt" in message


def test_cli_table_and_json(monkeypatch, capsys, tmp_path):
    lm = tiny_model("llama")
    monkeypatch.setattr("lensref.commands.patchscope.load_model", lambda *a, **k: lm)
    out = tmp_path / "p.json"
    assert main(["patchscope", SOURCE, "--position", "4", "--layers", "0-2", "--tokens", "2", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny-llama -> tiny-llama: 'c' (position 4)") and len(lines) == 2 + 3
    assert json.loads(out.read_text())["continuations"][2]["layer"] == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--layers", "9"], "error: layer 9 is out of range"),
        (["--position", "-40"], "error: position -40 is out of range"),
        (["--target-prompt", "nothing"], "error: the placeholder '?' is not a token"),
    ],
)
def test_cli_errors_are_one_line(monkeypatch, capsys, extra, message):
    monkeypatch.setattr("lensref.commands.patchscope.load_model", lambda *a, **k: tiny_model("llama"))
    assert main(["patchscope", SOURCE, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.real_model
def test_real_model_reads_eiffel_from_the_iffel_token(real_lm):
    """Lesson claim: the state of 'iffel' (the second half of ' E' + 'iffel') reads back as the whole word
    ' Eiffel' in the early-middle layers, while its embedding alone (layer 0) reads as lower-case ' eiffel'."""
    result = patchscope(real_lm, EIFFEL, position=2, layers=[0, 4, 8], n_tokens=2)
    assert result.source_token == "iffel"
    answers = result.answers()
    assert answers[0] == "eiffel"
    assert [answers[layer] for layer in (4, 8)] == ["Eiffel"] * 2


def test_cli_target_model_fits_maps(monkeypatch, capsys, tmp_path):
    models = {None: tiny_model("llama", seed=0), "wide": tiny_model("gpt2", seed=1, d_model=48, n_layers=2)}
    monkeypatch.setattr("lensref.commands.patchscope.load_model", lambda spec=None, **k: models[spec])
    out = tmp_path / "x.json"
    assert (
        main(["patchscope", SOURCE, "--layers", "0,3", "--tokens", "1", "--target-model", "wide", "--json", str(out)])
        == 0
    )
    continuations = json.loads(out.read_text())["continuations"]
    assert [(r["layer"], r["target_layer"]) for r in continuations] == [(0, 0), (3, 2)]  # same relative depth
    assert all(r["map"]["shape"] == [32, 48] and 0 < r["map"]["fit_error"] < 1 for r in continuations)
    assert capsys.readouterr().out.startswith("tiny-llama -> tiny-gpt2:")


@pytest.mark.parametrize("layer", [0, 2])
def test_patched_logits_is_the_first_step_of_generate_patched(layer):
    """One home for the patch: the forward pass the exercise's judge uses and the first generation step of the
    patchscope write the same vector at the same place (the same next token, the same probability)."""
    lm = tiny_model("llama")
    ids = encode_prompt(lm.tokenizer, IDENTITY_PROMPT)
    slot = find_placeholder(lm.tokenizer, ids, PLACEHOLDER)
    vector = torch.randn(lm.adapter.d_model, generator=torch.Generator().manual_seed(layer)) * 4
    logits = patched_logits(lm, IDENTITY_PROMPT, layer, vector, [slot])[0]
    clean = lm.model(input_ids=ids[None]).logits[0, -1]
    assert not torch.allclose(logits, clean, atol=1e-3)
    new_ids, first_prob = generate_patched(lm, ids, slot, [layer], vector[None], 1)
    assert new_ids[0][0] == int(logits.argmax())
    assert first_prob[0] == pytest.approx(float(torch.softmax(logits.float(), -1).max()), abs=1e-5)
    both = patched_logits(lm, IDENTITY_PROMPT, layer, vector, [slot, 0])  # one row per position, one pass
    torch.testing.assert_close(both[0], logits)
    assert not torch.allclose(both[1], logits, atol=1e-3)

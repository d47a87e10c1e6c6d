"""Visible checks for assignment 3: logit difference, direct logit attribution, patchscope, a fitted translator."""
from __future__ import annotations

import random

import torch

from ...models import LoadedModel
from ...residual import capture_residuals
from ...tokens import encode_prompt
from ._core import CheckFailed, as_tensor, call, close, default_lm, expect_shape, fresh_prompts, max_err, passed

IDENTITY_PROMPT = "cat -> cat; 135 -> 135; hello -> hello; ? ->"


def _pair(lm: LoadedModel) -> tuple[int, int]:
    vocab = lm.adapter.unembed.weight.shape[0]
    a, b = random.sample(range(min(vocab, 5000)), 2)
    return a, b


def _states(lm: LoadedModel, prompt: str):
    return capture_residuals(lm, encode_prompt(lm.tokenizer, prompt))


# --- logit difference -------------------------------------------------------------------------------

def check_logit_diff_by_layer(fn, lm: LoadedModel | None = None, n_prompts: int = 1) -> None:
    """``fn(lm, states [L+1, T, d], target_id, distractor_id) -> [L+1, T]``: lens logit(target) - logit(distractor)."""
    lm = lm or default_lm()
    name = "logit_diff_by_layer"
    norm, unembed = lm.adapter.final_norm, lm.adapter.unembed
    for prompt in fresh_prompts(n_prompts):
        res = _states(lm, prompt)
        states = res.states[:, 0]
        t, d = _pair(lm)
        with torch.no_grad():
            logits = unembed(norm(states))
            ref = logits[..., t] - logits[..., d]
            got = as_tensor(call(fn, lm, states.clone(), t, d, name=name), name)
            expect_shape(got, tuple(ref.shape), name, {
                (ref.shape[0],): "keep every position: return [L+1, T].",
                tuple(logits.shape): "take the difference of two logits, not the whole vocabulary.",
            })
            if close(got, ref):
                continue
            if close(got, -ref):
                raise CheckFailed(name, "the sign is flipped: you computed distractor minus target.",
                                  "logit diff = logit[target] - logit[distractor].")
            raw = unembed(states)
            if close(got, raw[..., t] - raw[..., d]):
                raise CheckFailed(name, "you forgot the final norm.", "decode as the lens does: final norm, then unembedding.")
            twice = unembed(norm(norm(states)))
            if close(got, twice[..., t] - twice[..., d]):
                raise CheckFailed(name, "you normalized twice.", "apply the final norm once.")
            p = torch.softmax(logits, -1)
            if close(got, p[..., t] - p[..., d]):
                raise CheckFailed(name, "that is a difference of probabilities, not of logits.", "subtract the logits themselves.")
            final = res.logits[0]
            raise CheckFailed(name, f"differs from the reference (max error {max_err(got, ref):.3g}); at the last layer "
                                    "it must equal the model's own logit difference.",
                              f"the model's own value at the last position: {float(final[-1, t] - final[-1, d]):.3f}.")
    passed(name, "matches the reference; the last layer equals the model's own logit difference.")


# --- direct logit attribution -----------------------------------------------------------------------

def ref_attribute(lm: LoadedModel, components: torch.Tensor, target_id: int, distractor_id: int) -> torch.Tensor:
    """Each component's share of the logit difference with the final RMSNorm's scale frozen at the full residual."""
    norm = lm.adapter.final_norm
    final = components.sum(0).double()
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6))
    scale = torch.rsqrt(final.pow(2).mean() + eps)
    w = lm.adapter.unembed.weight.double()
    direction = scale * norm.weight.double() * (w[target_id] - w[distractor_id])
    return components.double() @ direction


def block_components(lm: LoadedModel, prompt: str, position: int = -1) -> torch.Tensor:
    """``[L+1, d]`` at one position: the embedding, then what each block added to the residual stream."""
    states = _states(lm, prompt).states[:, 0, position]
    return torch.cat([states[:1], states[1:] - states[:-1]])


def check_attribute(fn, lm: LoadedModel | None = None, n_prompts: int = 1) -> None:
    """``fn(lm, components [C, d], target_id, distractor_id) -> [C]`` summing to the logit difference."""
    lm = lm or default_lm()
    name = "attribute"
    if not hasattr(lm.adapter.final_norm, "variance_epsilon") and not type(lm.adapter.final_norm).__name__.endswith("RMSNorm"):
        raise ValueError("check_attribute needs a model with an RMSNorm final norm (Llama-style)")
    for prompt in fresh_prompts(n_prompts):
        comps = block_components(lm, prompt)
        t, d = _pair(lm)
        ref = ref_attribute(lm, comps, t, d)
        with torch.no_grad():
            logits = lm.adapter.decode(comps.sum(0))
        total = float(logits[t] - logits[d])
        got = as_tensor(call(fn, lm, comps.clone(), t, d, name=name), name)
        expect_shape(got, tuple(ref.shape), name, {(comps.shape[0], lm.adapter.unembed.weight.shape[0]):
                                                   "project onto the target-minus-distractor direction: one number per component."})
        if close(got, ref, atol=1e-3 * max(1.0, abs(total))):
            continue
        got_sum = float(got.double().sum())
        w = lm.adapter.unembed.weight
        per_component = lm.adapter.unembed(lm.adapter.final_norm(comps))
        if close(got, per_component[:, t] - per_component[:, d], atol=1e-3 * max(1.0, abs(total))):
            raise CheckFailed(name, f"your parts sum to {got_sum:.3f}, not the logit difference {total:.3f}: you normalized "
                                    "each component on its own.",
                              "freeze the norm's scale at its value on the full residual (the sum of all components).")
        u = (w[t] - w[d]).double()
        if close(got, comps.double() @ u, atol=1e-3 * max(1.0, abs(total))):
            raise CheckFailed(name, "you skipped the final norm.", "multiply by the frozen scale and the norm's weight.")
        final = comps.sum(0).double()
        scale = torch.rsqrt(final.pow(2).mean() + getattr(lm.adapter.final_norm, "variance_epsilon", 1e-6))
        if close(got, comps.double() @ (scale * u), atol=1e-3 * max(1.0, abs(total))):
            raise CheckFailed(name, "you forgot the norm's weight (its learned per-dimension gain).",
                              "direction = scale * final_norm.weight * (W_U[target] - W_U[distractor]).")
        if abs(got_sum - total) > 1e-2 * max(1.0, abs(total)):
            raise CheckFailed(name, f"your parts sum to {got_sum:.3f}, not the logit difference {total:.3f}.",
                              "with the scale frozen the map is linear, so the parts must add up exactly.")
        raise CheckFailed(name, f"the sum is right but the parts differ (max error {max_err(got, ref):.3g}).",
                          "use one direction for every component.")
    passed(name, "the parts add up to the model's logit difference and match the reference.")


# --- identity patchscope ----------------------------------------------------------------------------

def placeholder_position(lm: LoadedModel, ids: torch.Tensor) -> int:
    texts = [lm.tokenizer.decode([int(i)]) for i in ids]
    return max(i for i, text in enumerate(texts) if text.strip() == "?")


@torch.no_grad()
def ref_patch_readout(lm: LoadedModel, vector: torch.Tensor, layer: int, prompt: str = IDENTITY_PROMPT,
                      position: int | None = None) -> torch.Tensor:
    ids = encode_prompt(lm.tokenizer, prompt)
    position = placeholder_position(lm, ids) if position is None else position
    module = lm.adapter.blocks[layer] if layer < lm.n_layers else lm.adapter.final_norm

    def hook(mod, args, kwargs):
        hidden = (args[0] if args else kwargs["hidden_states"]).clone()
        hidden[:, position] = vector
        return ((hidden, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": hidden})

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        return lm.model(input_ids=ids[None]).logits[0, -1]
    finally:
        handle.remove()


def check_patch_readout(fn, lm: LoadedModel | None = None, layers=None) -> None:
    """``fn(lm, vector [d], layer, prompt) -> logits [V]`` of the next token with ``vector`` patched at the placeholder."""
    lm = lm or default_lm()
    name = "patch_readout"
    L = lm.n_layers
    prompt = fresh_prompts(1)[0]
    source = _states(lm, prompt).states[:, 0, -1]  # [L+1, d]
    ids = encode_prompt(lm.tokenizer, IDENTITY_PROMPT)
    with torch.no_grad():
        clean = lm.model(input_ids=ids[None]).logits[0, -1]
    for layer in layers or sorted({1, L // 2, L - 2}):
        ref = ref_patch_readout(lm, source[layer], layer)
        got = as_tensor(call(fn, lm, source[layer].clone(), layer, IDENTITY_PROMPT, name=name), name)
        expect_shape(got, tuple(ref.shape), name, {(len(ids), ref.shape[0]): "return the logits of the last position only.",
                                                   (1, len(ids), ref.shape[0]): "return the logits of the last position only."})
        with torch.no_grad():
            after = lm.model(input_ids=ids[None]).logits[0, -1]
        if not close(after, clean):
            raise CheckFailed(name, "your hook is still attached after the call: the model's outputs have changed.",
                              "remove the hook (handle.remove()) in a finally: block.")
        if close(got, ref):
            continue
        if close(got, clean):
            raise CheckFailed(name, f"at layer {layer} the patch had no effect (the output equals the unpatched run).",
                              "the hook must return the modified inputs (or change them in place).")
        if layer + 1 <= L and close(got, ref_patch_readout(lm, source[layer], layer + 1)):
            raise CheckFailed(name, f"off by one layer: you patched what block {layer + 1} reads.",
                              f"layer {layer} is what block {layer} reads: a forward *pre*-hook on blocks[{layer}].")
        if layer >= 1 and close(got, ref_patch_readout(lm, source[layer], layer - 1)):
            raise CheckFailed(name, f"off by one layer: you patched what block {layer - 1} reads.",
                              f"layer {layer} is what block {layer} reads.")
        if close(got, ref_patch_readout(lm, source[layer], layer, position=len(ids) - 1)):
            raise CheckFailed(name, "you patched the last token, not the placeholder '?'.",
                              "find the position of the '?' token in the target prompt.")
        raise CheckFailed(name, f"at layer {layer} the logits differ from the reference (max error {max_err(got, ref):.3g}).",
                          "replace the residual state at the placeholder position with the vector, at that layer only.")
    passed(name, "matches the reference at several layers and leaves the model unhooked.")


# --- a translator fitted on cached states ----------------------------------------------------------------

def ref_fit_translator(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = x.double(), y.double()
    xm, ym = x.mean(0), y.mean(0)
    weight = torch.linalg.lstsq(x - xm, y - ym).solution
    return weight, ym - xm @ weight


def check_fit_translator(fn, n: int = 300, d: int = 12) -> None:
    """``fn(x [N, d], y [N, d]) -> (W [d, d], b [d])`` minimizing ||x @ W + b - y||²."""
    name = "fit_translator"
    gen = torch.Generator().manual_seed(random.randrange(2**31))
    x = torch.randn(n, d, generator=gen) * 2 + 3
    true_w = torch.randn(d, d, generator=gen)
    y = x @ true_w + torch.randn(d, generator=gen) * 5 + 0.1 * torch.randn(n, d, generator=gen)
    ref_w, ref_b = ref_fit_translator(x, y)
    out = call(fn, x.clone(), y.clone(), name=name)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise CheckFailed(name, f"expected a pair (W, b), got {type(out).__name__}.", "return weight, bias.")
    w, b = (as_tensor(v, name) for v in out)
    expect_shape(w, (d, d), name)
    expect_shape(b, (d,), name, {(1, d): "return the bias as a vector [d]."})
    pred_err = float(((x.double() @ w.double() + b.double() - y.double()) ** 2).mean())
    ref_err = float(((x.double() @ ref_w + ref_b - y.double()) ** 2).mean())
    if close(w, ref_w, atol=1e-3) and close(b, ref_b, atol=1e-3):
        passed(name, f"the least-squares translator (mean squared error {ref_err:.4f}).")
        return
    if close(w.T, ref_w, atol=1e-3):
        raise CheckFailed(name, "your W is transposed: apply it as x @ W.", "solve for W in x @ W ≈ y (shape [d_in, d_out]).")
    no_bias = torch.linalg.lstsq(x.double(), y.double()).solution
    if close(w, no_bias, atol=1e-3):
        raise CheckFailed(name, f"you fitted without a bias (error {pred_err:.3g} vs {ref_err:.3g}).",
                          "centre x and y first (the bias is ȳ − x̄ W), or append a column of ones to x.")
    raise CheckFailed(name, f"not the least-squares fit (error {pred_err:.3g}, best {ref_err:.3g}).",
                      "torch.linalg.lstsq on centred x and y gives W; then b = ȳ − x̄ W.")

"""Visible checks for assignment 1: the residual stream and the logit lens."""
from __future__ import annotations

import math
import random

import torch

from ...models import LoadedModel
from ...residual import capture_residuals
from ...tokens import encode_prompt
from ._core import CheckFailed, as_tensor, call, close, default_lm, expect_shape, fresh_prompts, max_err, passed

LN2 = math.log(2.0)


def _ids(lm: LoadedModel, prompt: str) -> torch.Tensor:
    return encode_prompt(lm.tokenizer, prompt)


def _random_logits(shape: tuple[int, ...], seed: int | None = None) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed if seed is not None else random.randrange(2**31))
    return torch.randn(*shape, generator=gen) * 3.0


# --- capture_states ---------------------------------------------------------------------------------

def check_capture_states(fn, lm: LoadedModel | None = None, n_prompts: int = 2) -> None:
    """``fn(lm, input_ids [T]) -> states [L+1, T, d]``: embeddings, then each block's output, pre-final-norm."""
    lm = lm or default_lm()
    name = "capture_states"
    L, d = lm.n_layers, lm.adapter.d_model
    for prompt in fresh_prompts(n_prompts):
        ids = _ids(lm, prompt)
        T = len(ids)
        ref = capture_residuals(lm, ids).states[:, 0]
        got = as_tensor(call(fn, lm, ids.clone(), name=name), name)
        expect_shape(got, (L + 1, T, d), name, {
            (L + 1, 1, T, d): "drop the batch dimension (take row 0 of each captured state).",
            (L, T, d): f"{L} blocks give {L + 1} states: layer 0 is the embeddings, layer {L} the last block's output.",
            (L + 2, T, d): f"{L} blocks give {L + 1} states, not {L + 2}: did you keep both the last block's "
                           "output and the final norm's output?",
            (T, L + 1, d): "layers come first: stack the per-layer states along dim 0.",
        })
        _diagnose_states(got.detach().float(), ref, lm, name)
    passed(name, f"matches the reference on {n_prompts} fresh prompts ({L + 1} states each).")


def _diagnose_states(got: torch.Tensor, ref: torch.Tensor, lm: LoadedModel, name: str) -> None:
    L = ref.shape[0] - 1
    ok = [close(got[layer], ref[layer]) for layer in range(L + 1)]
    if all(ok):
        return
    if all(ok[:L]) and close(got[L], lm.adapter.final_norm(ref[L])):
        raise CheckFailed(name, f"layer {L} is already final-normed.",
                          "output_hidden_states' last entry has the final norm applied; layer L must be the "
                          "input of the final norm (hook lm.adapter.final_norm).")
    if all(close(got[layer], ref[layer + 1]) for layer in range(L)):
        raise CheckFailed(name, "off by one layer: your layer l holds the reference's layer l+1.",
                          "layer 0 is the embedding output (what block 0 reads); layer l is block l-1's output.")
    if all(close(got[layer], ref[layer - 1]) for layer in range(1, L + 1)):
        raise CheckFailed(name, "off by one layer: your layer l holds the reference's layer l-1.",
                          "layer l is the output of block l-1, so layer L is the last block's output.")
    bad = ok.index(False)
    raise CheckFailed(name, f"layer {bad} differs from the reference (max abs error {max_err(got[bad], ref[bad]):.3g}).",
                      f"layer {bad} must be " + ("the embedding output." if bad == 0 else f"the output of block {bad - 1}."))


# --- lens_logits ------------------------------------------------------------------------------------

def check_lens_logits(fn, lm: LoadedModel | None = None, n_prompts: int = 1) -> None:
    """``fn(lm, states [..., d]) -> logits [..., V]``: the final norm, then the unembedding."""
    lm = lm or default_lm()
    name = "lens_logits"
    norm, unembed = lm.adapter.final_norm, lm.adapter.unembed
    for prompt in fresh_prompts(n_prompts):
        res = capture_residuals(lm, _ids(lm, prompt))
        states = res.states[:, 0]
        L, T, d = states.shape
        V = unembed.weight.shape[0]
        with torch.no_grad():
            ref = unembed(norm(states))
            got = as_tensor(call(fn, lm, states.clone(), name=name), name)
            expect_shape(got, (L, T, V), name, {
                (L, T, d): "these are still residual states: apply the unembedding (lm.adapter.unembed) after the norm.",
                (T, V): "decode every layer, not only the last one (keep the leading dimensions).",
            })
            if close(got, ref):
                if not close(got[-1], res.logits[0]):  # pragma: no cover - the reference itself would be wrong
                    raise CheckFailed(name, "the last layer does not reproduce the model's logits.")
                continue
            if close(got, unembed(states)):
                raise CheckFailed(name, "you forgot the final norm.",
                                  "apply lm.adapter.final_norm before lm.adapter.unembed (the model never "
                                  "unembeds an un-normed state).")
            if close(got, unembed(norm(norm(states)))):
                raise CheckFailed(name, "you normalized twice.",
                                  "apply lm.adapter.final_norm exactly once, then lm.adapter.unembed.")
            if not close(got[-1], res.logits[0]):
                raise CheckFailed(name, f"the last layer does not reproduce the model's own logits "
                                        f"(max abs error {max_err(got[-1], res.logits[0]):.3g}).",
                                  "logits = unembed(final_norm(state)), with the model's own modules.")
            bad = next(layer for layer in range(L) if not close(got[layer], ref[layer]))
            raise CheckFailed(name, f"layer {bad} differs from the reference.",
                              "use the same final norm and unembedding at every layer.")
    passed(name, f"matches the reference and reproduces the model's logits at layer {lm.n_layers}.")


# --- to_probs -------------------------------------------------------------------------------------------

def check_to_probs(fn, shape: tuple[int, ...] = (4, 3, 50)) -> None:
    """``fn(logits [..., V]) -> probs [..., V]``, a softmax over the vocabulary."""
    name = "to_probs"
    logits = _random_logits(shape)
    ref = torch.softmax(logits, dim=-1)
    got = as_tensor(call(fn, logits.clone(), name=name), name)
    expect_shape(got, shape, name, {shape[:-1]: "keep the vocabulary dimension: one probability per token."})
    if close(got, ref):
        passed(name, "a softmax over the vocabulary: every row sums to 1.")
        return
    if float(got.min()) < 0:
        raise CheckFailed(name, "some values are negative: these are not probabilities.",
                          "exponentiate and normalize: torch.softmax(logits, dim=-1).")
    sums = got.sum(-1)
    if not close(sums, torch.ones_like(sums), atol=1e-3):
        for dim in range(len(shape) - 1):
            if close(got, torch.softmax(logits, dim=dim)):
                raise CheckFailed(name, f"probabilities do not sum to 1 over the vocabulary (softmax over dim={dim}).",
                                  "the vocabulary is the last dimension: dim=-1.")
        raise CheckFailed(name, f"probabilities do not sum to 1 over the vocabulary (row sums from "
                                f"{float(sums.min()):.3g} to {float(sums.max()):.3g}).",
                          "torch.softmax(logits, dim=-1) exponentiates and normalizes in one step.")
    raise CheckFailed(name, f"rows sum to 1 but differ from softmax(logits) (max error {max_err(got, ref):.3g}).",
                      "no temperature, no extra scaling: torch.softmax(logits, dim=-1).")


# --- top_k ---------------------------------------------------------------------------------------

def check_top_k(fn, k: int = 5, shape: tuple[int, ...] = (3, 4, 60)) -> None:
    """``fn(logits [..., V], k) -> (probs [..., k], ids [..., k])``, most likely first."""
    name = "top_k"
    logits = _random_logits(shape)
    probs = torch.softmax(logits, dim=-1)
    ref_p, ref_i = probs.topk(k, dim=-1)
    out = call(fn, logits.clone(), k, name=name)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise CheckFailed(name, f"expected a pair (probs, ids), got {type(out).__name__}.",
                          "return probs, ids (for example the two parts of torch.topk).")
    got_p, got_i = (as_tensor(x, name) for x in out)
    expect_shape(got_p, ref_p.shape, name, {tuple(shape): "keep only the k best tokens (topk along the last dim)."})
    expect_shape(got_i, ref_i.shape, name)
    if torch.equal(got_i.long(), ref_i) and close(got_p, ref_p):
        passed(name, f"the {k} most likely tokens with their probabilities, best first.")
        return
    if close(got_p, logits.topk(k, dim=-1).values):
        raise CheckFailed(name, "your values are logits, not probabilities.",
                          "softmax over the whole vocabulary first, then take the top k.")
    if close(got_p.sum(-1), torch.ones(got_p.shape[:-1]), atol=1e-4) and not close(ref_p.sum(-1), torch.ones(got_p.shape[:-1])):
        raise CheckFailed(name, "your top-k probabilities sum to 1: you renormalized over the k tokens.",
                          "softmax over the whole vocabulary, then take the top k (they sum to less than 1).")
    low_p, low_i = probs.topk(k, dim=-1, largest=False)
    if torch.equal(got_i.long(), low_i) or torch.equal(got_i.long(), low_i.flip(-1)):
        raise CheckFailed(name, "these are the k least likely tokens.", "torch.topk picks the largest by default.")
    if torch.equal(got_i.long(), ref_i.flip(-1)):
        raise CheckFailed(name, "right tokens, wrong order: most likely must come first.",
                          "sort in descending order of probability.")
    raise CheckFailed(name, "the ids or probabilities differ from the reference.",
                      "probs = softmax(logits, -1); take the k largest along the last dimension.")


# --- entropy --------------------------------------------------------------------------------------

def _entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits.double(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def check_entropy(fn, shape: tuple[int, ...] = (5, 4, 80)) -> None:
    """``fn(logits [..., V]) -> entropy [...]`` in nats."""
    name = "entropy"
    logits = _random_logits(shape)
    ref = _entropy(logits)
    got = as_tensor(call(fn, logits.clone(), name=name), name)
    expect_shape(got, shape[:-1], name, {shape: "sum over the vocabulary: one entropy per row."})
    if close(got, ref):
        passed(name, "entropy in nats, one value per row.")
        return
    if close(got, ref / LN2):
        raise CheckFailed(name, "your entropy is in bits.", "use the natural log (torch.log / log_softmax): nats.")
    if close(got, -ref):
        raise CheckFailed(name, "your entropy has the wrong sign (it must be ≥ 0).", "H = -Σ p log p.")
    raw = -(logits.double() * torch.log_softmax(logits.double(), -1)).sum(-1)
    if close(got, raw):
        raise CheckFailed(name, "you weighted by logits instead of probabilities.", "H = -Σ p log p with p = softmax(logits).")
    raise CheckFailed(name, f"differs from the reference (max error {max_err(got, ref):.3g}).",
                      "H = -Σ p log p over the vocabulary, p = softmax(logits), natural log.")


# --- kl_to_final ------------------------------------------------------------------------------------

def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) along the last dim."""
    logp, logq = torch.log_softmax(p_logits.double(), -1), torch.log_softmax(q_logits.double(), -1)
    return (logp.exp() * (logp - logq)).sum(-1)


def check_kl_to_final(fn, shape: tuple[int, ...] = (6, 3, 70)) -> None:
    """``fn(logits [L+1, ..., V]) -> [L+1, ...]``: KL(final || layer) in nats; the last layer is the final one."""
    name = "kl_to_final"
    logits = _random_logits(shape)
    final = logits[-1:].expand_as(logits)
    ref = _kl(final, logits)
    got = as_tensor(call(fn, logits.clone(), name=name), name)
    expect_shape(got, shape[:-1], name, {shape: "sum over the vocabulary: one KL per layer and position."})
    if close(got, ref):
        passed(name, "KL(final ‖ layer) in nats; 0 at the last layer.")
        return
    if close(got, _kl(logits, final)):
        raise CheckFailed(name, "the KL is reversed: you computed KL(layer ‖ final).",
                          "KL(final ‖ layer) = Σ p_final (log p_final − log p_layer).")
    if close(got, ref / LN2):
        raise CheckFailed(name, "your KL is in bits.", "use the natural log: nats.")
    if close(got[:-1], _kl(logits[:1].expand_as(logits), logits)[:-1]) or close(got, _kl(logits[:1].expand_as(logits), logits)):
        raise CheckFailed(name, "you compared with layer 0, not the final layer.", "the final layer is logits[-1].")
    if float(got[-1].abs().max()) > 1e-4:
        raise CheckFailed(name, "the last layer's KL to itself is not 0.", "compare every layer with logits[-1].")
    raise CheckFailed(name, f"differs from the reference (max error {max_err(got, ref):.3g}).",
                      "KL(final ‖ layer) = Σ p_final (log p_final − log p_layer), over the vocabulary.")


# --- target_rank ------------------------------------------------------------------------------------

def check_target_rank(fn, shape: tuple[int, ...] = (5, 4, 90)) -> None:
    """``fn(logits [..., V], target_id) -> ranks [...]``, 1 = the most likely token."""
    name = "target_rank"
    logits = _random_logits(shape)
    target_id = random.randrange(shape[-1])
    ref = (logits > logits[..., target_id : target_id + 1]).sum(-1) + 1
    got = as_tensor(call(fn, logits.clone(), target_id, name=name), name)
    expect_shape(got, shape[:-1], name, {shape: "one rank per row: count over the vocabulary."})
    if torch.is_floating_point(got) and not torch.equal(got, got.round()):
        raise CheckFailed(name, "ranks must be whole numbers.", "count the tokens with a larger logit, plus 1.")
    got = got.long()
    if torch.equal(got, ref):
        passed(name, "1 = most likely; matches the reference.")
        return
    if torch.equal(got, ref - 1):
        raise CheckFailed(name, "off by one: your ranks start at 0.", "the most likely token has rank 1.")
    if torch.equal(got, shape[-1] - ref + 1) or torch.equal(got, shape[-1] - ref):
        raise CheckFailed(name, "your ranks count from the least likely token.", "rank 1 = the largest logit.")
    raise CheckFailed(name, "differs from the reference.", "rank = 1 + the number of tokens with a larger logit.")

"""Checks for assignment 1: the residual stream and the logit lens.

The model-facing exercises take their reference from the library (``capture_residuals``, ``adapter.decode``);
the statistics (softmax, top-k, entropy, KL, rank) are plain maths written here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ...models import LoadedModel
from ...tokens import encode_prompt
from ._core import (
    Case,
    CheckFailed,
    Exercise,
    ModelRef,
    PromptCase,
    as_tensor,
    captured,
    case_model,
    close,
    expect_shape,
    fresh_prompts,
    make_check,
    max_err,
    model_of,
    random_logits,
)
from .mistakes import FORGOT_FINAL_NORM, NORMALIZED_TWICE, raise_decode_mistake

LN2 = math.log(2.0)


@dataclass(frozen=True)
class LogitsCase(Case):
    """Random logits of ``shape``, drawn from ``seed`` (:func:`random_logits`)."""

    shape: tuple[int, ...]
    seed: int


@dataclass(frozen=True)
class TopKCase(LogitsCase):
    """Random logits and the ``k`` to keep."""

    k: int


@dataclass(frozen=True)
class TargetRankCase(LogitsCase):
    """Random logits (rounded to whole numbers when ``ties``) and the target token's id."""

    target: int
    ties: bool


@dataclass(frozen=True)
class LensCase(PromptCase):
    """A prompt's states to decode: every layer and position (``"all"``), or the last position only."""

    rows: Literal["all", "last"]


def _other_rank(shape: tuple[int, ...], matrix: tuple[int, ...] = (5,)) -> list[int]:
    """A second shape with the same vocabulary but another number of leading dimensions: a function that
    hard-codes a dimension index (``dim=2``, ``logits[:, -1]``) fails on one of the two."""
    vocab = shape[-1]
    return [*matrix, vocab] if len(shape) != len(matrix) + 1 else [2, 3, vocab]


def _statistic_cases(seed: int, shape: Sequence[int]) -> list[LogitsCase]:
    rng = random.Random(seed)
    sizes = [int(s) for s in shape]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"shape must be a non-empty list of positive sizes, got {sizes}")
    return [
        LogitsCase(tuple(sizes), rng.randrange(2**31)),
        LogitsCase(tuple(_other_rank(tuple(sizes))), rng.randrange(2**31)),
    ]


# --- capture_states ---------------------------------------------------------------------------------


class _OnRandomLogits(Exercise[LogitsCase]):
    """An exercise whose learner function takes one tensor of seeded random logits."""

    case_type = LogitsCase

    def inputs(self, case: LogitsCase) -> tuple[Any, ...]:
        return (random_logits(case.shape, case.seed),)


class CaptureStates(Exercise[PromptCase]):
    """``capture_states(lm, input_ids [T]) -> states [L+1, T, d]``: embeddings, each block's output, pre-final-norm."""

    name = "capture_states"
    case_type = PromptCase
    prompt_fields = ("prompt",)
    forbidden = (
        "capture_residuals",
        "read_states",
        "logit_lens",
        "paired_states",
        "cache_states",
        "capture_block_writes",
    )

    def cases(self, seed: int, lm: ModelRef | None = None, n_prompts: int = 2) -> list[PromptCase]:
        ref = case_model(lm)
        return [PromptCase(ref, p) for p in fresh_prompts(n_prompts, random.Random(seed))]

    def inputs(self, case: PromptCase) -> tuple[Any, ...]:
        lm = model_of(case)
        return lm, encode_prompt(lm.tokenizer, case.prompt)

    def judge(self, case: PromptCase, got: Any) -> str:
        lm, ids = self.inputs(case)
        name, L, d, T = self.name, lm.n_layers, lm.adapter.d_model, len(ids)
        ref, _ = captured(case, case.prompt)
        got = as_tensor(got, name)
        expect_shape(
            got,
            (L + 1, T, d),
            name,
            {
                (L + 1, 1, T, d): "drop the batch dimension (take row 0 of each captured state).",
                (
                    L,
                    T,
                    d,
                ): f"{L} blocks give {L + 1} states: layer 0 is the embeddings, layer {L} the last block's output.",
                (L + 2, T, d): f"{L} blocks give {L + 1} states, not {L + 2}: did you keep both the last block's "
                "output and the final norm's output?",
                (T, L + 1, d): "layers come first: stack the per-layer states along dim 0.",
                (L + 1, d): "keep every position: the states of all T tokens, not only the last one.",
            },
        )
        got = got.detach().float()
        ok = [close(got[layer], ref[layer]) for layer in range(L + 1)]
        if all(ok):
            return f"matches the reference ({L + 1} states of {T} tokens)."
        with torch.no_grad():
            normed_last = lm.adapter.final_norm(ref[L])
        if all(ok[:L]) and close(got[L], normed_last):
            raise CheckFailed(
                name,
                f"layer {L} is already final-normed.",
                "output_hidden_states' last entry has the final norm applied; layer L must be the "
                "input of the final norm (hook lm.adapter.final_norm).",
            )
        if close(got[:L], ref[1:]):
            raise CheckFailed(
                name,
                "off by one layer: your layer l holds the reference's layer l+1.",
                "layer 0 is the embedding output (what block 0 reads); layer l is block l-1's output.",
            )
        if close(got[1:], ref[:L]):
            raise CheckFailed(
                name,
                "off by one layer: your layer l holds the reference's layer l-1.",
                "layer l is the output of block l-1, so layer L is the last block's output.",
            )
        bad = ok.index(False)
        raise CheckFailed(
            name,
            f"layer {bad} differs from the reference (max abs error {max_err(got[bad], ref[bad]):.3g}).",
            "layer 0 must be the embedding output."
            if bad == 0
            else f"layer {bad} must be the output of block {bad - 1}.",
        )

    def summary(self, cases: list[PromptCase], detail: str) -> str:
        return f"matches the reference on {len(cases)} fresh prompts ({model_of(cases[0]).n_layers + 1} states each)."


# --- lens_logits ------------------------------------------------------------------------------------


LENS_LOGITS_HINTS = {
    FORGOT_FINAL_NORM: "apply lm.adapter.final_norm before lm.adapter.unembed "
    "(the model never unembeds an un-normed state).",
    NORMALIZED_TWICE: "apply lm.adapter.final_norm exactly once, then lm.adapter.unembed.",
}


class LensLogits(Exercise[LensCase]):
    """``lens_logits(lm, states [..., d]) -> logits [..., V]``: the final norm, then the unembedding.

    Cases decode every layer and position ``[L+1, T, d]`` and, once, the last position only ``[L+1, d]``."""

    name = "lens_logits"
    case_type = LensCase
    prompt_fields = ("prompt",)
    forbidden = ("decode", "logit_lens", "read_states", "token_logits", "Unembed")

    def cases(self, seed: int, lm: ModelRef | None = None, n_prompts: int = 1) -> list[LensCase]:
        ref = case_model(lm)
        prompts = fresh_prompts(n_prompts, random.Random(seed))
        return [LensCase(ref, p, "all") for p in prompts] + [LensCase(ref, prompts[0], "last")]

    def _capture(self, case: LensCase) -> tuple[LoadedModel, torch.Tensor, torch.Tensor]:
        lm = model_of(case)
        states, model_logits = captured(case, case.prompt)
        if case.rows == "last":
            states, model_logits = states[:, -1], model_logits[-1]
        return lm, states, model_logits

    def inputs(self, case: LensCase) -> tuple[Any, ...]:
        lm, states, _ = self._capture(case)
        return lm, states

    @torch.no_grad()
    def judge(self, case: LensCase, got: Any) -> str:
        name = self.name
        lm, states, model_logits = self._capture(case)
        V, d = lm.adapter.unembed.weight.shape
        lead = tuple(states.shape[:-1])
        ref = lm.adapter.decode(states)
        got = as_tensor(got, name)
        expect_shape(
            got,
            (*lead, V),
            name,
            {
                (
                    *lead,
                    d,
                ): "these are still residual states: apply the unembedding (lm.adapter.unembed) after the norm.",
                lead[1:] + (V,): "decode every layer, not only the last one (keep the leading dimensions).",
            },
        )
        if close(got, ref):
            if not close(got[-1], model_logits):  # pragma: no cover - the library itself would be wrong
                raise CheckFailed(name, "the last layer does not reproduce the model's logits.")
            return f"matches the reference and reproduces the model's logits at layer {lm.n_layers}."
        raise_decode_mistake(name, lm, states, lambda wrong: close(got, wrong), LENS_LOGITS_HINTS)
        if close(got, torch.softmax(ref, -1)) or close(got, torch.log_softmax(ref, -1)):
            raise CheckFailed(
                name,
                "these are (log-)probabilities, not logits.",
                "return the unembedding's output itself; the softmax comes in the next exercise.",
            )
        if not close(got[-1], model_logits):
            raise CheckFailed(
                name,
                f"the last layer does not reproduce the model's own logits "
                f"(max abs error {max_err(got[-1], model_logits):.3g}).",
                "logits = unembed(final_norm(state)), with the model's own modules.",
            )
        bad = next(layer for layer in range(len(ref)) if not close(got[layer], ref[layer]))
        raise CheckFailed(
            name, f"layer {bad} differs from the reference.", "use the same final norm and unembedding at every layer."
        )


# --- to_probs -------------------------------------------------------------------------------------------


class ToProbs(_OnRandomLogits):
    """``to_probs(logits [..., V]) -> probs [..., V]``, a softmax over the vocabulary."""

    name = "to_probs"

    def cases(self, seed: int, shape: Sequence[int] = (4, 3, 50)) -> list[LogitsCase]:
        return _statistic_cases(seed, shape)

    def judge(self, case: LogitsCase, got: Any) -> str:
        name = self.name
        (logits,) = self.inputs(case)
        shape = tuple(logits.shape)
        ref = torch.softmax(logits.double(), dim=-1)
        got = as_tensor(got, name)
        expect_shape(got, shape, name, {shape[:-1]: "keep the vocabulary dimension: one probability per token."})
        if close(got, ref):
            return "a softmax over the vocabulary: every row sums to 1."
        if float(got.min()) < 0:
            raise CheckFailed(
                name,
                "some values are negative: these are not probabilities.",
                "exponentiate and normalize: torch.softmax(logits, dim=-1).",
            )
        sums = got.double().sum(-1)
        if not close(sums, torch.ones_like(sums), atol=1e-3):
            for dim in range(len(shape) - 1):
                if close(got, torch.softmax(logits.double(), dim=dim)):
                    raise CheckFailed(
                        name,
                        f"probabilities do not sum to 1 over the vocabulary (softmax over dim={dim}).",
                        "the vocabulary is the last dimension: dim=-1.",
                    )
            raise CheckFailed(
                name,
                f"probabilities do not sum to 1 over the vocabulary (row sums from "
                f"{float(sums.min()):.3g} to {float(sums.max()):.3g}).",
                "torch.softmax(logits, dim=-1) exponentiates and normalizes in one step.",
            )
        raise CheckFailed(
            name,
            f"rows sum to 1 but differ from softmax(logits) (max error {max_err(got, ref):.3g}).",
            "no temperature, no extra scaling: torch.softmax(logits, dim=-1).",
        )


# --- top_k ---------------------------------------------------------------------------------------


class TopK(Exercise[TopKCase]):
    """``top_k(logits [..., V], k) -> (probs [..., k], ids [..., k])``, most likely first."""

    name = "top_k"
    case_type = TopKCase
    forbidden = ("topk_rows",)

    def cases(self, seed: int, k: int = 5, shape: Sequence[int] = (3, 4, 60)) -> list[TopKCase]:
        first, second = _statistic_cases(seed, shape)
        other_k = 1 if k != 1 else 3
        return [
            TopKCase(first.shape, first.seed, int(k)),
            TopKCase(second.shape, second.seed, min(other_k, second.shape[-1])),
        ]

    def inputs(self, case: TopKCase) -> tuple[Any, ...]:
        return random_logits(case.shape, case.seed), case.k

    def judge(self, case: TopKCase, out: Any) -> str:
        name = self.name
        logits, k = self.inputs(case)
        shape = tuple(logits.shape)
        probs = torch.softmax(logits.double(), dim=-1)
        ref_p, ref_i = probs.topk(k, dim=-1)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise CheckFailed(
                name,
                f"expected a pair (probs, ids), got {type(out).__name__}.",
                "return probs, ids (for example the two parts of torch.topk).",
            )
        got_p, got_i = (as_tensor(x, name) for x in out)
        if not torch.is_floating_point(got_p) and torch.is_floating_point(got_i):
            raise CheckFailed(
                name, "the pair is the wrong way round: return (probs, ids).", "probabilities first, then token ids."
            )
        expect_shape(got_p, ref_p.shape, name, {shape: "keep only the k best tokens (topk along the last dim)."})
        expect_shape(got_i, ref_i.shape, name)
        if torch.equal(got_i.long(), ref_i) and close(got_p, ref_p):
            return f"top-{k}: the most likely tokens with their probabilities, best first."
        if close(got_p, logits.topk(k, dim=-1).values):
            raise CheckFailed(
                name,
                "your values are logits, not probabilities.",
                "softmax over the whole vocabulary first, then take the top k.",
            )
        if close(got_p, ref_p.log()):
            raise CheckFailed(
                name, "your values are log-probabilities, not probabilities.", "torch.softmax, not torch.log_softmax."
            )
        ones = torch.ones(got_p.shape[:-1])
        if close(got_p.double().sum(-1), ones, atol=1e-4) and not close(ref_p.sum(-1), ones):
            raise CheckFailed(
                name,
                "your top-k probabilities sum to 1: you renormalized over the k tokens.",
                "softmax over the whole vocabulary, then take the top k (they sum to less than 1).",
            )
        if torch.equal(got_i.long(), ref_i):
            raise CheckFailed(
                name,
                "right tokens in the right order, but the probabilities differ from the reference.",
                "probs = softmax(logits, -1) over the whole vocabulary, with no temperature or scaling.",
            )
        low_i = probs.topk(k, dim=-1, largest=False).indices
        if torch.equal(got_i.long(), low_i) or torch.equal(got_i.long(), low_i.flip(-1)):
            raise CheckFailed(name, "these are the k least likely tokens.", "torch.topk picks the largest by default.")
        if torch.equal(got_i.long(), ref_i.flip(-1)):
            raise CheckFailed(
                name,
                "right tokens, wrong order: most likely must come first.",
                "sort in descending order of probability.",
            )
        raise CheckFailed(
            name,
            f"for k = {k} and logits of shape {shape}, the ids or probabilities differ from the reference.",
            "probs = softmax(logits, -1); take the k largest along the last dimension.",
        )

    def summary(self, cases: list[TopKCase], detail: str) -> str:
        return f"top-{cases[0].k}: the most likely tokens with their probabilities, best first."


# --- entropy --------------------------------------------------------------------------------------


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits.double(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


class Entropy(_OnRandomLogits):
    """``entropy(logits [..., V]) -> [...]`` in nats."""

    name = "entropy"

    def cases(self, seed: int, shape: Sequence[int] = (5, 4, 80)) -> list[LogitsCase]:
        return _statistic_cases(seed, shape)

    def judge(self, case: LogitsCase, got: Any) -> str:
        name = self.name
        (logits,) = self.inputs(case)
        shape = tuple(logits.shape)
        ref = _entropy(logits)
        got = as_tensor(got, name)
        expect_shape(got, shape[:-1], name, {shape: "sum over the vocabulary: one entropy per row."})
        if close(got, ref):
            return "entropy in nats, one value per row."
        if close(got, ref / LN2):
            raise CheckFailed(name, "your entropy is in bits.", "use the natural log (torch.log / log_softmax): nats.")
        if close(got, -ref):
            raise CheckFailed(name, "your entropy has the wrong sign (it must be ≥ 0).", "H = -Σ p log p.")
        if close(got, ref / shape[-1]):
            raise CheckFailed(name, "you averaged over the vocabulary instead of summing.", "H = -Σ p log p: a sum.")
        raw = -(logits.double() * torch.log_softmax(logits.double(), -1)).sum(-1)
        if close(got, raw):
            raise CheckFailed(
                name, "you weighted by logits instead of probabilities.", "H = -Σ p log p with p = softmax(logits)."
            )
        raise CheckFailed(
            name,
            f"differs from the reference (max error {max_err(got, ref):.3g}).",
            "H = -Σ p log p over the vocabulary, p = softmax(logits), natural log.",
        )


# --- kl_to_final ------------------------------------------------------------------------------------


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) along the last dim."""
    logp, logq = torch.log_softmax(p_logits.double(), -1), torch.log_softmax(q_logits.double(), -1)
    return (logp.exp() * (logp - logq)).sum(-1)


class KLToFinal(_OnRandomLogits):
    """``kl_to_final(logits [L+1, ..., V]) -> [L+1, ...]``: KL(final || layer) in nats; the last layer is final."""

    name = "kl_to_final"
    forbidden = ("kl_final_to_lens",)

    def cases(self, seed: int, shape: Sequence[int] = (6, 3, 70)) -> list[LogitsCase]:
        sizes = [int(s) for s in shape]
        if len(sizes) < 2:
            raise ValueError(f"kl_to_final needs logits [L+1, ..., V], got shape {sizes}")
        rng = random.Random(seed)
        second = (5, sizes[-1]) if len(sizes) != 2 else (4, 2, sizes[-1])
        return [LogitsCase(tuple(sizes), rng.randrange(2**31)), LogitsCase(second, rng.randrange(2**31))]

    def judge(self, case: LogitsCase, got: Any) -> str:
        name = self.name
        (logits,) = self.inputs(case)
        shape = tuple(logits.shape)
        final = logits[-1:].expand_as(logits)
        ref = _kl(final, logits)
        got = as_tensor(got, name)
        expect_shape(
            got,
            shape[:-1],
            name,
            {
                shape: "sum over the vocabulary: one KL per layer and position.",
                shape[1:-1]: "keep the layer dimension: one KL per layer.",
            },
        )
        if close(got, ref):
            return "KL(final ‖ layer) in nats; 0 at the last layer."
        if close(got, _kl(logits, final)):
            raise CheckFailed(
                name,
                "the KL is reversed: you computed KL(layer ‖ final).",
                "KL(final ‖ layer) = Σ p_final (log p_final − log p_layer).",
            )
        if close(got, ref / LN2):
            raise CheckFailed(name, "your KL is in bits.", "use the natural log: nats.")
        first = _kl(logits[:1].expand_as(logits), logits)
        if close(got[:-1], first[:-1]):  # (whatever it put at the last layer)
            raise CheckFailed(name, "you compared with layer 0, not the final layer.", "the final layer is logits[-1].")
        if len(shape) > 2 and close(got, _kl(logits[:, -1:].expand_as(logits), logits)):
            raise CheckFailed(
                name,
                "you compared with the last position, not the last layer.",
                "layers are the first dimension: the final layer is logits[-1].",
            )
        if close(got, ref / shape[-1]):
            raise CheckFailed(name, "you averaged over the vocabulary instead of summing.", "KL is a sum over tokens.")
        if float(got[-1].abs().max()) > 1e-4:
            raise CheckFailed(name, "the last layer's KL to itself is not 0.", "compare every layer with logits[-1].")
        raise CheckFailed(
            name,
            f"differs from the reference (max error {max_err(got, ref):.3g}).",
            "KL(final ‖ layer) = Σ p_final (log p_final − log p_layer), over the vocabulary.",
        )


# --- target_rank ------------------------------------------------------------------------------------


class TargetRank(Exercise[TargetRankCase]):
    """``target_rank(logits [..., V], target_id) -> ranks [...]``, 1 = the most likely token.

    The second case has whole-number logits, so the target ties with other tokens: rank = 1 + the number of
    tokens with a strictly larger logit (ties share a rank)."""

    name = "target_rank"
    case_type = TargetRankCase

    def cases(self, seed: int, shape: Sequence[int] = (5, 4, 90)) -> list[TargetRankCase]:
        cases = _statistic_cases(seed, shape)  # the target id: drawn with the logits, from their seed
        return [TargetRankCase(c.shape, c.seed, c.seed % c.shape[-1], i == 1) for i, c in enumerate(cases)]

    def inputs(self, case: TargetRankCase) -> tuple[Any, ...]:
        logits = random_logits(case.shape, case.seed)
        if case.ties:
            logits = logits.round()
        return logits, case.target

    def judge(self, case: TargetRankCase, got: Any) -> str:
        name = self.name
        logits, target_id = self.inputs(case)
        shape = tuple(logits.shape)
        target = logits[..., target_id : target_id + 1]
        ref = (logits > target).sum(-1) + 1
        got = as_tensor(got, name)
        expect_shape(got, shape[:-1], name, {shape: "one rank per row: count over the vocabulary."})
        if torch.is_floating_point(got) and not torch.equal(got, got.round()):
            raise CheckFailed(name, "ranks must be whole numbers.", "count the tokens with a larger logit, plus 1.")
        got = got.long()
        if torch.equal(got, ref):
            return "1 = most likely; ties share a rank; matches the reference."
        if torch.equal(got, ref - 1):
            raise CheckFailed(name, "off by one: your ranks start at 0.", "the most likely token has rank 1.")
        if torch.equal(got, shape[-1] - ref + 1) or torch.equal(got, shape[-1] - ref):
            raise CheckFailed(name, "your ranks count from the least likely token.", "rank 1 = the largest logit.")
        tied = (logits == target).sum(-1) - 1  # other tokens with the target's logit
        if bool(((got >= ref) & (got <= ref + tied)).all()):
            raise CheckFailed(
                name,
                "wrong where the target ties with other tokens: you counted tied tokens (or broke the tie by sorting).",
                "rank = 1 + the number of tokens with a strictly larger logit.",
            )
        raise CheckFailed(name, "differs from the reference.", "rank = 1 + the number of tokens with a larger logit.")

    def summary(self, cases: list[TargetRankCase], detail: str) -> str:
        return "1 = most likely; matches the reference (ties included)."


CAPTURE_STATES, LENS_LOGITS, TO_PROBS, TOP_K = CaptureStates(), LensLogits(), ToProbs(), TopK()
ENTROPY, KL_TO_FINAL, TARGET_RANK = Entropy(), KLToFinal(), TargetRank()
EXERCISES = (CAPTURE_STATES, LENS_LOGITS, TO_PROBS, TOP_K, ENTROPY, KL_TO_FINAL, TARGET_RANK)


check_capture_states = make_check(
    CAPTURE_STATES,
    """``fn(lm, input_ids [T]) -> states [L+1, T, d]``: embeddings, then each block's output, pre-final-norm.""",
)


check_lens_logits = make_check(
    LENS_LOGITS,
    """``fn(lm, states [..., d]) -> logits [..., V]``: the final norm, then the unembedding.""",
)


check_to_probs = make_check(
    TO_PROBS,
    """``fn(logits [..., V]) -> probs [..., V]``, a softmax over the vocabulary.""",
)


check_top_k = make_check(
    TOP_K,
    """``fn(logits [..., V], k) -> (probs [..., k], ids [..., k])``, most likely first.""",
)


check_entropy = make_check(
    ENTROPY,
    """``fn(logits [..., V]) -> entropy [...]`` in nats.""",
)


check_kl_to_final = make_check(
    KL_TO_FINAL,
    """``fn(logits [L+1, ..., V]) -> [L+1, ...]``: KL(final || layer) in nats; the last layer is the final one.""",
)


check_target_rank = make_check(
    TARGET_RANK,
    """``fn(logits [..., V], target_id) -> ranks [...]``, 1 = the most likely token.""",
)

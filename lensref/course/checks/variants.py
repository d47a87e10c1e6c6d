"""Checks for assignment 3: logit difference, direct logit attribution, an identity patchscope, a fitted translator.

References come from the library: the lens decode (``adapter.decode``), the frozen-norm direction of
:mod:`lensref.unembed`, the block writes and residual deltas of :mod:`lensref.hooks`, the layer names of
:mod:`lensref.indices`, the placeholder search, identity prompt and patched forward pass of
:mod:`lensref.patchscope`, the least-squares fit of :mod:`lensref.residual_map`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ...errors import LensError
from ...hooks import capture_block_writes, residual_deltas
from ...indices import MIDDLE, resolve_layer
from ...models import LoadedModel
from ...patchscope import IDENTITY_PROMPT, PLACEHOLDER, find_placeholder, patched_logits
from ...residual import Residuals, capture_residuals
from ...residual_map import fit_affine
from ...tokens import encode_prompt
from ...unembed import Unembed
from ._core import (
    FRESH_PROMPTS,
    Case,
    CheckFailed,
    Exercise,
    ModelCase,
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
)
from .mistakes import FORGOT_FINAL_NORM, NORMALIZED_TWICE, raise_decode_mistake

__all__ = [
    "IDENTITY_PROMPT",
    "block_components",
    "check_logit_diff_by_layer",
    "check_attribute",
    "check_patch_readout",
    "check_fit_translator",
]


def _pair(lm: LoadedModel, pair_seed: int) -> tuple[int, int]:
    """A target and a distractor id, from the first 5000 tokens of the vocabulary."""
    vocab = lm.adapter.unembed.weight.shape[0]
    a, b = random.Random(pair_seed).sample(range(min(vocab, 5000)), 2)
    return a, b


@dataclass(frozen=True)
class PairCase(PromptCase):
    """A prompt, and the seed that draws a target and a distractor token (:func:`_pair`)."""

    pair_seed: int


@dataclass(frozen=True)
class AttributionCase(PairCase):
    """A prompt's last-position residual split into components: per block, per attention/MLP write, or at random
    into ``parts`` vectors drawn from ``split_seed`` (both None for the other splits)."""

    split: Literal["blocks", "writes", "random"]
    parts: int | None = None
    split_seed: int | None = None


@dataclass(frozen=True)
class PatchCase(ModelCase):
    """The last state of ``source`` at ``layer`` (an int, or ``"middle"``), patched at the placeholder of
    ``prompt``."""

    layer: int | str
    source: str
    prompt: str


@dataclass(frozen=True)
class TranslatorCase(Case):
    """``n`` samples of ``d``-dimensional inputs and outputs of a noisy affine map, drawn from ``seed``."""

    n: int
    d: int
    seed: int


def _prompt_cases(seed: int, lm: ModelRef | None, n_prompts: int) -> list[PairCase]:
    rng = random.Random(seed)
    ref = case_model(lm)
    return [PairCase(ref, p, rng.randrange(2**31)) for p in fresh_prompts(n_prompts, rng)]


def _states(lm: LoadedModel, prompt: str) -> Residuals:
    return capture_residuals(lm, encode_prompt(lm.tokenizer, prompt))


# --- logit difference -------------------------------------------------------------------------------


LOGIT_DIFF_HINTS = {
    FORGOT_FINAL_NORM: "decode as the lens does: final norm, then unembedding.",
    NORMALIZED_TWICE: "apply the final norm once.",
}


class LogitDiffByLayer(Exercise[PairCase]):
    """``logit_diff_by_layer(lm, states [L+1, T, d], target_id, distractor_id) -> [L+1, T]``."""

    name = "logit_diff_by_layer"
    case_type = PairCase
    prompt_fields = ("prompt",)
    forbidden = ("logit_diff", "token_logits", "Unembed")

    def cases(self, seed: int, lm: ModelRef | None = None, n_prompts: int = 1) -> list[PairCase]:
        return _prompt_cases(seed, lm, n_prompts)

    def inputs(self, case: PairCase) -> tuple[Any, ...]:
        lm = model_of(case)
        return (lm, captured(case, case.prompt)[0], *_pair(lm, case.pair_seed))

    @torch.no_grad()
    def judge(self, case: PairCase, got: Any) -> str:
        name = self.name
        lm, states, t, d = self.inputs(case)
        logits = lm.adapter.decode(states)
        ref = logits[..., t] - logits[..., d]
        got = as_tensor(got, name)
        expect_shape(
            got,
            tuple(ref.shape),
            name,
            {
                (ref.shape[0],): "keep every position: return [L+1, T].",
                tuple(logits.shape): "take the difference of two logits, not the whole vocabulary.",
            },
        )
        if close(got, ref):
            return "matches the reference; the last layer equals the model's own logit difference."
        if close(got, -ref):
            raise CheckFailed(
                name,
                "the sign is flipped: you computed distractor minus target.",
                "logit diff = logit[target] - logit[distractor].",
            )
        raise_decode_mistake(
            name, lm, states, lambda wrong: close(got, wrong[..., t] - wrong[..., d]), LOGIT_DIFF_HINTS
        )
        p = torch.softmax(logits, -1)
        if close(got, p[..., t] - p[..., d]):
            raise CheckFailed(
                name, "that is a difference of probabilities, not of logits.", "subtract the logits themselves."
            )
        final = captured(case, case.prompt)[1]
        raise CheckFailed(
            name,
            f"differs from the reference (max error {max_err(got, ref):.3g}); at the last layer "
            "it must equal the model's own logit difference.",
            f"the model's own value at the last position: {float(final[-1, t] - final[-1, d]):.3f}.",
        )


# --- direct logit attribution -----------------------------------------------------------------------


def block_components(lm: LoadedModel, prompt: str, position: int = -1) -> torch.Tensor:
    """``[L+1, d]`` at one position: the embedding, then what each block added to the residual stream."""
    return residual_deltas(_states(lm, prompt).states[:, 0, position])


def _write_components(lm: LoadedModel, prompt: str) -> torch.Tensor:
    """``[2L+1, d]`` at the last position: the embedding, then each attention block's and MLP's write in turn."""
    return capture_block_writes(lm, encode_prompt(lm.tokenizer, prompt), position=-1).components()


def _random_split(final: torch.Tensor, n_parts: int, seed: int) -> torch.Tensor:
    """``n_parts`` random vectors that sum exactly (in float64) to ``final``."""
    gen = torch.Generator().manual_seed(seed)
    scale = float(final.double().pow(2).mean().sqrt())
    parts = torch.randn(n_parts - 1, final.shape[-1], generator=gen, dtype=torch.float64) * scale
    return torch.cat([parts, (final.double() - parts.sum(0))[None]]).to(final.dtype)


class Attribute(Exercise[AttributionCase]):
    """``attribute(lm, components [C, d], target_id, distractor_id) -> [C]`` summing to the logit difference.

    Components are the per-block writes, the per-attention/MLP writes, and a random split of the final residual."""

    name = "attribute"
    case_type = AttributionCase
    prompt_fields = ("prompt",)
    forbidden = ("direct_logit_attribution", "frozen_norm_direction", "frozen_direction", "Unembed")

    def cases(self, seed: int, lm: ModelRef | None = None, n_prompts: int = 1) -> list[AttributionCase]:
        cases = [AttributionCase(c.lm, c.prompt, c.pair_seed, "blocks") for c in _prompt_cases(seed, lm, n_prompts)]
        first = cases[0]
        return cases + [
            AttributionCase(first.lm, first.prompt, first.pair_seed, "writes"),
            AttributionCase(first.lm, first.prompt, first.pair_seed, "random", 4, random.Random(seed).randrange(2**31)),
        ]

    def inputs(self, case: AttributionCase) -> tuple[Any, ...]:
        lm = model_of(case)
        if isinstance(lm.adapter.final_norm, torch.nn.LayerNorm):  # the exercise's formula has no centring
            raise LensError("check_attribute needs a model with an RMSNorm final norm (Llama-style)")
        if case.split == "writes":
            comps = _write_components(lm, case.prompt)
        else:
            comps = residual_deltas(captured(case, case.prompt)[0][:, -1])
            if case.split == "random":
                if case.parts is None or case.split_seed is None:
                    raise LensError("a random split needs parts and split_seed")
                comps = _random_split(comps.sum(0), case.parts, case.split_seed)
        return (lm, comps, *_pair(lm, case.pair_seed))

    @torch.no_grad()
    def judge(self, case: AttributionCase, got: Any) -> str:
        name = self.name
        lm, comps, t, d = self.inputs(case)
        final = comps.sum(0)
        frozen = Unembed.of(lm).frozen_direction(final, t, d)
        ref = comps.double() @ frozen.v
        logits = lm.adapter.decode(final)
        total = float(logits[t] - logits[d])

        def near(a: torch.Tensor, b: torch.Tensor) -> bool:  # float32 parts of a logit difference: 1e-3 of it
            return close(a, b, atol=1e-3 * max(1.0, abs(total)))

        got = as_tensor(got, name)
        expect_shape(
            got,
            tuple(ref.shape),
            name,
            {
                (
                    comps.shape[0],
                    lm.adapter.unembed.weight.shape[0],
                ): "project onto the target-minus-distractor direction: one number per component."
            },
        )
        if near(got, ref):
            return "the parts add up to the model's logit difference and match the reference."
        got_sum = float(got.double().sum())
        w = lm.adapter.unembed.weight.double()
        per_component = lm.adapter.decode(comps)
        if near(got, per_component[:, t] - per_component[:, d]):
            raise CheckFailed(
                name,
                f"your parts sum to {got_sum:.3f}, not the logit difference {total:.3f}: you "
                "normalized each component on its own.",
                "freeze the norm's scale at its value on the full residual (the sum of all components).",
            )
        if near(got, -ref):
            raise CheckFailed(
                name,
                "the sign is flipped: you attributed distractor minus target.",
                "use W_U[target] − W_U[distractor].",
            )
        u = w[t] - w[d]
        if near(got, comps.double() @ u):
            raise CheckFailed(
                name, "you skipped the final norm.", "multiply by the frozen scale and the norm's weight."
            )
        if near(got, comps.double() @ (frozen.scale * u)):
            raise CheckFailed(
                name,
                "you forgot the norm's weight (its learned per-dimension gain).",
                "direction = scale * final_norm.weight * (W_U[target] - W_U[distractor]).",
            )
        if abs(got_sum - total) > 1e-2 * max(1.0, abs(total)):
            raise CheckFailed(
                name,
                f"your parts sum to {got_sum:.3f}, not the logit difference {total:.3f}.",
                "with the scale frozen the map is linear, so the parts must add up exactly.",
            )
        raise CheckFailed(
            name,
            f"the sum is right but the parts differ (max error {max_err(got, ref):.3g}).",
            "use one direction for every component.",
        )

    def summary(self, cases: list[AttributionCase], detail: str) -> str:
        return f"the parts add up to the model's logit difference and match the reference ({len(cases)} splits)."


# --- identity patchscope ----------------------------------------------------------------------------

# Target prompts: the placeholder near the end (after a first '?'), and inside the prompt (a second '?' or
# text after it), so a position counted from the end, the first '?' or the last token all miss it.
PROMPTS_NEAR_END = (IDENTITY_PROMPT, "Where? Here.\ncat -> cat\n? ->")
PROMPTS_INSIDE = ("dog -> dog\n? -> ?\nred -> red\n42 -> 42\nsun ->", "x -> x\n? ->\nmoon -> moon\n12 ->")


class PatchReadout(Exercise[PatchCase]):
    """``patch_readout(lm, vector [d], layer, prompt) -> logits [V]`` with ``vector`` at the last '?' in ``layer``."""

    name = "patch_readout"
    case_type = PatchCase
    prompt_fields = ("source", "prompt")
    forbidden = ("patchscope", "generate_patched", "patched_logits", "patch_hook")

    def cases(self, seed: int, lm: ModelRef | None = None, layers: list[int | str] | None = None) -> list[PatchCase]:
        rng = random.Random(seed)
        ref = case_model(lm)
        specs: list[int | str] = [1, MIDDLE, -3] if layers is None else list(layers)
        if not specs or not all(s == MIDDLE or (isinstance(s, int) and not isinstance(s, bool)) for s in specs):
            raise LensError(f"layers must be a non-empty list of ints (negative: from the end), got {layers!r}")
        if len(specs) == 1:  # one layer: read it through both kinds of target prompt
            specs = specs * 2
        return [
            PatchCase(
                ref,
                layer=spec,
                source=rng.choice(FRESH_PROMPTS),
                prompt=(PROMPTS_NEAR_END, PROMPTS_INSIDE)[i % 2][(seed + i // 2) % 2],
            )
            for i, spec in enumerate(specs)
        ]

    def inputs(self, case: PatchCase) -> tuple[Any, ...]:
        lm = model_of(case)
        layer = resolve_layer(case.layer, lm.n_layers)
        vector = captured(case, case.source)[0][layer, -1]
        return lm, vector, layer, case.prompt

    @torch.no_grad()
    def judge(self, case: PatchCase, got: Any) -> str:
        name = self.name
        lm, vector, layer, prompt = self.inputs(case)
        L = lm.n_layers
        ids = encode_prompt(lm.tokenizer, prompt)
        slot = find_placeholder(lm.tokenizer, ids, PLACEHOLDER)
        ref = patched_logits(lm, prompt, layer, vector, [slot])[0]
        T, V = len(ids), ref.shape[0]
        got = as_tensor(got, name)
        expect_shape(
            got,
            (V,),
            name,
            {
                (T, V): "return the logits of the last position only.",
                (1, T, V): "return the logits of the last position only.",
                (1, V): "return a 1-D tensor [V]: drop the batch dimension.",
            },
        )
        if close(got, ref):
            return f"matches the reference at layer {layer} with the placeholder at position {slot} of {T}."
        clean = lm.model(input_ids=ids[None]).logits[0, -1]
        if close(got, clean):
            raise CheckFailed(
                name,
                f"at layer {layer} the patch had no effect (the output equals the unpatched run).",
                "the hook must return the modified inputs (or change them in place).",
            )
        if layer + 1 <= L and close(got, patched_logits(lm, prompt, layer + 1, vector, [slot])[0]):
            raise CheckFailed(
                name,
                f"off by one layer: you patched what block {layer + 1} reads.",
                f"layer {layer} is what block {layer} reads: a forward *pre*-hook on blocks[{layer}].",
            )
        if layer >= 1 and close(got, patched_logits(lm, prompt, layer - 1, vector, [slot])[0]):
            raise CheckFailed(
                name,
                f"off by one layer: you patched what block {layer - 1} reads.",
                f"layer {layer} is what block {layer} reads.",
            )
        everywhere = patched_logits(lm, prompt, layer, vector, list(range(T)))
        wrong = next((p for p in range(T) if p != slot and close(got, everywhere[p])), None)
        if wrong == T - 1:
            raise CheckFailed(
                name,
                "you patched the last token, not the placeholder '?'.",
                "find the position of the '?' token in the target prompt.",
            )
        if wrong is not None:
            token = lm.tokenizer.decode([int(ids[wrong])])
            raise CheckFailed(
                name,
                f"for {prompt!r} you patched position {wrong} ({token!r}), not the placeholder '?' at position {slot}.",
                "find the last token of the prompt whose text is '?' (the prompt changes: never count "
                "positions from the end).",
            )
        raise CheckFailed(
            name,
            f"at layer {layer} the logits differ from the reference (max error {max_err(got, ref):.3g}).",
            "replace the residual state at the placeholder position with the vector, at that layer only.",
        )

    def summary(self, cases: list[PatchCase], detail: str) -> str:
        n_layers = model_of(cases[0]).n_layers
        return (
            f"matches the reference at {len({resolve_layer(c.layer, n_layers) for c in cases})} layer(s) on "
            f"{len({c.prompt for c in cases})} target prompts and leaves the model unhooked."
        )


# --- a translator fitted on cached states ----------------------------------------------------------------


# W and b count as the least-squares fit within this (plus 1e-3 relative): float32 solutions of the default case
# are within 3.5e-4 of the float64 reference (normal equations; lstsq and pinv within 2e-5).
FIT_ATOL = 1e-3


def _fit_close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return close(a, b, atol=FIT_ATOL)


class FitTranslator(Exercise[TranslatorCase]):
    """``fit_translator(x [N, d], y [N, d]) -> (W [d, d], b [d])`` minimizing ||x @ W + b - y||²."""

    name = "fit_translator"
    case_type = TranslatorCase
    forbidden = ("fit_affine", "fit_residual_map", "fit_residual_maps", "least_squares_init")

    def cases(self, seed: int, n: int = 300, d: int = 12) -> list[TranslatorCase]:
        if not (isinstance(n, int) and isinstance(d, int) and 1 <= d and n >= d + 1):
            raise LensError(f"fit_translator needs n >= d + 1 >= 2 samples, got n={n}, d={d}")
        return [TranslatorCase(n, d, random.Random(seed).randrange(2**31))]

    def inputs(self, case: TranslatorCase) -> tuple[Any, ...]:
        n, d = case.n, case.d
        gen = torch.Generator().manual_seed(case.seed)
        x = torch.randn(n, d, generator=gen) * 2 + 3
        true_w = torch.randn(d, d, generator=gen)
        y = x @ true_w + torch.randn(d, generator=gen) * 5 + 0.1 * torch.randn(n, d, generator=gen)
        return x, y

    def judge(self, case: TranslatorCase, out: Any) -> str:
        name = self.name
        x, y = self.inputs(case)
        d = x.shape[1]
        ref_w, ref_b, _ = fit_affine(x, y)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise CheckFailed(name, f"expected a pair (W, b), got {type(out).__name__}.", "return weight, bias.")
        w, b = (as_tensor(v, name) for v in out)
        expect_shape(w, (d, d), name)
        expect_shape(b, (d,), name, {(1, d): "return the bias as a vector [d]."})
        xd, yd = x.double(), y.double()
        pred_err = float(((xd @ w.double() + b.double() - yd) ** 2).mean())
        ref_err = float(((xd @ ref_w + ref_b - yd) ** 2).mean())
        if _fit_close(w, ref_w) and _fit_close(b, ref_b):
            return f"the least-squares translator (mean squared error {ref_err:.4f})."
        if _fit_close(w.T, ref_w):
            raise CheckFailed(
                name, "your W is transposed: apply it as x @ W.", "solve for W in x @ W ≈ y (shape [d_in, d_out])."
            )
        if _fit_close(w, torch.linalg.lstsq(xd, yd).solution):
            raise CheckFailed(
                name,
                f"you fitted without a bias (error {pred_err:.3g} vs {ref_err:.3g}).",
                "centre x and y first (the bias is ȳ − x̄ W), or append a column of ones to x.",
            )
        if _fit_close(w, fit_affine(y, x)[0]):
            raise CheckFailed(
                name,
                "you fitted x from y: the translator maps x (the layer) to y (the final layer).",
                "solve x @ W + b ≈ y, not y @ W + b ≈ x.",
            )
        if _fit_close(w, ref_w):
            raise CheckFailed(
                name,
                f"W is right but the bias is not (max error {max_err(b, ref_b):.3g}).",
                "b = ȳ − x̄ W, with the means over the N samples.",
            )
        raise CheckFailed(
            name,
            f"not the least-squares fit (error {pred_err:.3g}, best {ref_err:.3g}).",
            "torch.linalg.lstsq on centred x and y gives W; then b = ȳ − x̄ W.",
        )


LOGIT_DIFF_BY_LAYER, ATTRIBUTE, PATCH_READOUT, FIT_TRANSLATOR = (
    LogitDiffByLayer(),
    Attribute(),
    PatchReadout(),
    FitTranslator(),
)
EXERCISES = (LOGIT_DIFF_BY_LAYER, ATTRIBUTE, PATCH_READOUT, FIT_TRANSLATOR)


check_logit_diff_by_layer = make_check(
    LOGIT_DIFF_BY_LAYER,
    """``fn(lm, states [L+1, T, d], target_id, distractor_id) -> [L+1, T]``: lens logit(target) - logit(distractor).""",
)


check_attribute = make_check(
    ATTRIBUTE,
    """``fn(lm, components [C, d], target_id, distractor_id) -> [C]`` summing to the logit difference.""",
)


check_patch_readout = make_check(
    PATCH_READOUT,
    """``fn(lm, vector [d], layer, prompt) -> logits [V]`` of the next token with ``vector`` patched at the
    placeholder. ``layers``: ints, negative ones counted from the end (-1 is layer L, the final norm's input).""",
)


check_fit_translator = make_check(
    FIT_TRANSLATOR,
    """``fn(x [N, d], y [N, d]) -> (W [d, d], b [d])`` minimizing ||x @ W + b - y||².""",
)

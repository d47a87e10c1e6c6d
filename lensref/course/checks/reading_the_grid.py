"""Checks for assignment 2: reading the grid (where the answer appears, where it settles, corrected or lost).

The three trajectory exercises are plain logic on a list of ranks (1 = top), so their references are written
here as the notebook defines them (the settled layer is the library's :func:`lensref.indices.first_layer_holding`);
``answer_ranks`` takes its reference from the library's decode.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ...errors import LensError
from ...indices import first_layer_holding
from ...tokens import single_token_id
from ._core import Case, CheckFailed, Exercise, ModelRef, PromptCase, captured, case_model, make_check, model_of

CORRECTED, STAYS_WRONG, LOST, RIGHT_THROUGHOUT = "corrected", "stays wrong", "lost", "right throughout"
LABELS = (CORRECTED, STAYS_WRONG, LOST, RIGHT_THROUGHOUT)


@dataclass(frozen=True)
class RanksCase(Case):
    """A rank trajectory (1 = top, one rank per layer) and, for ``first_top_k_layer``, the ``k`` to reach."""

    ranks: tuple[int, ...]
    k: int | None = None


@dataclass(frozen=True)
class AnswerCase(PromptCase):
    """A prompt on a model and the answer whose rank is read at its last position."""

    answer: str


Explain = Callable[[RanksCase, Any, Any], str]  # (case, the answer, the reference) -> the hint


# --- the definitions, as the notebook states them ---------------------------------------------------------


def reference_first_top_k_layer(ranks: list[int], k: int) -> int | None:
    """The first layer whose rank is at most ``k``, or None."""
    return next((layer for layer, r in enumerate(ranks) if r <= k), None)


def reference_settled_layer(ranks: list[int]) -> int | None:
    """The first layer from which the rank is 1 at every later layer through the last, or None."""
    return first_layer_holding([rank == 1 for rank in ranks])


def reference_classify(ranks: list[int]) -> str:
    """'right throughout' (top-1 everywhere), 'corrected' (top-1 at the last layer, not at some earlier one),
    'lost' (top-1 somewhere, not at the last layer) or 'stays wrong' (never top-1)."""
    if all(r == 1 for r in ranks):
        return RIGHT_THROUGHOUT
    if ranks[-1] == 1:
        return CORRECTED
    return LOST if 1 in ranks else STAYS_WRONG


# --- rank trajectories ----------------------------------------------------------------------------------

# Each one separates a definition from a plausible misreading of it (noted on the right).
EDGE_CASES = (
    [9, 1, 4, 1, 1],  # top-1 early, lost, back: settles at 3, first top-1 at 1 (not the last top-1 at 4)
    [7, 3, 1, 1],  # corrected; settles at 2 (not at the last layer)
    [6, 2, 1, 2, 3],  # lost; never settles although top-1 once
    [8, 5, 3, 2, 2],  # stays wrong, reaches rank 2 (k = 2) and rank 5 at layer 1 (k = 5, <= not <)
    [1, 1, 1],  # right throughout; settles at 0
    [1],  # a single layer
    [3],  # a single layer, never top-1
    [4, 4, 4, 4],  # never moves (constant but not top-1: does not settle)
    [1, 5, 1],  # starts and ends top-1, lost in between: corrected, settles at 2
    [1, 1, 2],  # starts top-1 and loses it: lost
    [1, 3],  # lost right after the embeddings
    [2, 1],  # corrected by the last block
    [2, 1, 2],  # lost, top-1 only in the middle
    [1, 2, 2, 1, 1],  # corrected, settles at 3
    [5, 1, 1, 3],  # lost after two top-1 layers
    [6, 5, 4, 3, 2, 1],  # climbs one rank per layer
)
K_VALUES = (1, 2, 5)


def random_ranks(rng: random.Random) -> list[int]:
    """A trajectory of 1..12 layers; how often it is top-1 is itself random, so every story shows up."""
    n = rng.randint(1, 12)
    p_top = rng.choice((0.0, 0.25, 0.5, 0.8, 1.0))
    worst = rng.choice((3, 6, 60))
    return [1 if rng.random() < p_top else rng.randint(2, worst) for _ in range(n)]


def _ranks_list(value: Any, what: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(r, int) and r >= 1 for r in value):
        raise LensError(f"{what} must be a non-empty list of ranks (ints >= 1), got {value!r}")
    return [int(r) for r in value]


def _trajectories(seed: int, n_random: int, cases: list[Any] | None) -> list[list[int]]:
    if cases is not None:
        return [_ranks_list(c, "each case") for c in cases]
    rng = random.Random(seed)
    return [list(c) for c in EDGE_CASES] + [random_ranks(rng) for _ in range(n_random)]


def _kinds(cases: list[RanksCase]) -> str:
    """How the visible check's ✓ line describes its trajectories."""
    drawn = {tuple(c) for c in EDGE_CASES} <= {case.ranks for case in cases}
    n = len(cases)
    return f"{n} trajector{'y' if n == 1 else 'ies'}" + (" (edge cases and random ones" if drawn else " (given")


def _as_answer(got: Any, name: str) -> int | str | None:
    """The learner's answer as an int, a label or None (0-d tensors and whole floats become ints). Classify's
    judge has refused every non-label before, so anything else here was meant to be a layer index."""
    if got is None or isinstance(got, str):
        return got
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)) or not float(got).is_integer():
        shown = f" {got!r}." if isinstance(got, (bool, float)) else "."
        raise CheckFailed(name, f"expected an int or None, got {type(got).__name__}{shown}")
    return int(got)


def _judge_one(name: str, case: RanksCase, got: Any, want: Any, explain: Explain) -> str:
    got = _as_answer(got, name)
    ranks = list(case.ranks)  # shown as the learner's list
    if got != want:
        args = f"ranks={ranks}" + (f", k={case.k}" if case.k is not None else "")
        raise CheckFailed(name, f"for {args} you returned {got!r}, expected {want!r}.", explain(case, got, want))
    return f"right for ranks={ranks}."


def _k(case: RanksCase) -> int:
    if case.k is None:
        raise LensError("a first_top_k_layer case needs k")
    return case.k


# --- first_top_k_layer ------------------------------------------------------------------------------------


def _explain_first(case: RanksCase, got: Any, want: Any) -> str:
    ranks, k = list(case.ranks), _k(case)
    if want is None:
        return f"the target never reaches the top {k} here: return None."
    if k > 1 and got is not None and got == reference_first_top_k_layer(ranks, 1):
        return f"you looked for rank 1: any rank up to k = {k} counts."
    if got == want + 1:
        return "layers are numbered from 0 (the embeddings): return the index, not the position."
    if ranks[want] == k and (got is None or (0 <= got < len(ranks) and ranks[got] < k)):
        return f"rank {k} is inside the top {k}: compare with <=, not <."
    if got is not None and 0 <= got < len(ranks) and ranks[got] <= k and got > want:
        return "return the first layer where it happens, not a later one."
    return f"the first layer whose rank is at most {k}."


class FirstTopKLayer(Exercise[RanksCase]):
    """``first_top_k_layer(ranks, k) -> int | None``: the first layer where the rank is at most ``k``."""

    name = "first_top_k_layer"
    case_type = RanksCase
    forbidden = ("reference_first_top_k_layer",)

    def cases(self, seed: int, n_random: int = 20, cases: list[Any] | None = None) -> list[RanksCase]:
        if cases is not None:
            pairs = []
            for c in cases:
                if not isinstance(c, (list, tuple)) or len(c) != 2 or not isinstance(c[1], int):
                    raise LensError(f"each first_top_k_layer case is (ranks, k), got {c!r}")
                pairs.append(RanksCase(tuple(_ranks_list(c[0], "ranks")), int(c[1])))
            return pairs
        return [RanksCase(tuple(ranks), k) for k in K_VALUES for ranks in _trajectories(seed + k, n_random, None)]

    def inputs(self, case: RanksCase) -> tuple[Any, ...]:
        return list(case.ranks), _k(case)

    def judge(self, case: RanksCase, got: Any) -> str:
        want = reference_first_top_k_layer(list(case.ranks), _k(case))
        return _judge_one(self.name, case, got, want, _explain_first)

    def summary(self, cases: list[RanksCase], detail: str) -> str:
        ks = sorted({_k(c) for c in cases})
        return f"right on {_kinds(cases)}, k = {', '.join(map(str, ks))})."


# --- settled_layer ------------------------------------------------------------------------------------


def _explain_settled(case: RanksCase, got: Any, want: Any) -> str:
    ranks = list(case.ranks)
    if want is None:
        return "the target is not top-1 at the last layer, so it never settles: return None."
    if got is None:
        return f"the target is top-1 from layer {want} through the last layer: it settles there."
    if 0 <= got < want and ranks[got] == 1:
        return (
            f"the target is top-1 at layer {got} but drops again later: 'settled' means it stays top-1 "
            "through the last layer (search backwards from the end)."
        )
    if 0 <= got < want:
        return f"layer {got} has rank {ranks[got]}, not 1: the settled layer is the first of the final top-1 run."
    if got > want:
        return "go back while the layer before is also top-1."
    return "the first layer from which the rank is 1 at every later layer."


class SettledLayer(Exercise[RanksCase]):
    """``settled_layer(ranks) -> int | None``: the first layer from which the target stays top-1 to the end."""

    name = "settled_layer"
    case_type = RanksCase
    forbidden = ("reference_settled_layer", "first_layer_holding")

    def cases(self, seed: int, n_random: int = 30, cases: list[Any] | None = None) -> list[RanksCase]:
        return [RanksCase(tuple(ranks)) for ranks in _trajectories(seed, n_random, cases)]

    def inputs(self, case: RanksCase) -> tuple[Any, ...]:
        return (list(case.ranks),)

    def judge(self, case: RanksCase, got: Any) -> str:
        return _judge_one(self.name, case, got, reference_settled_layer(list(case.ranks)), _explain_settled)

    def summary(self, cases: list[RanksCase], detail: str) -> str:
        return f"right on {_kinds(cases)})."


# --- classify ------------------------------------------------------------------------------------


def _explain_classify(case: RanksCase, got: Any, want: Any) -> str:
    if got not in LABELS:
        return f"return one of {', '.join(repr(x) for x in LABELS)}."
    return {
        CORRECTED: "the final layer is right and an earlier one was not: later layers corrected it.",
        STAYS_WRONG: "it is never top-1 at any layer: the answer never surfaces.",
        LOST: "it is top-1 at some layer but not at the last: the right answer was there and got overwritten.",
        RIGHT_THROUGHOUT: "it is top-1 at every layer.",
    }[want]


class Classify(Exercise[RanksCase]):
    """``classify(ranks) -> str``: 'corrected', 'stays wrong', 'lost' or 'right throughout'."""

    name = "classify"
    case_type = RanksCase
    forbidden = ("reference_classify",)

    def cases(self, seed: int, n_random: int = 40, cases: list[Any] | None = None) -> list[RanksCase]:
        return [RanksCase(tuple(ranks)) for ranks in _trajectories(seed, n_random, cases)]

    def inputs(self, case: RanksCase) -> tuple[Any, ...]:
        return (list(case.ranks),)

    def judge(self, case: RanksCase, got: Any) -> str:
        if got is not None and not isinstance(got, str):
            raise CheckFailed(
                self.name,
                f"expected a label, got {type(got).__name__}.",
                f"return one of {', '.join(repr(x) for x in LABELS)}.",
            )
        return _judge_one(self.name, case, got, reference_classify(list(case.ranks)), _explain_classify)

    def summary(self, cases: list[RanksCase], detail: str) -> str:
        return f"right on {_kinds(cases)})."


# --- answer_ranks ------------------------------------------------------------------------------------

DEFAULT_ANSWER_CASES = (
    ("The opposite of up is", " down"),
    ("A baker makes bread, and a carpenter makes", " furniture"),
)


def rank_window(logits: torch.Tensor, target: int) -> tuple[list[int], list[int]]:
    """Per row of ``logits [L+1, V]``: the lowest and the highest rank of ``target`` that float noise allows.
    A token whose logit is within ``1e-5 * max(1, max |row|)`` of the target's (inclusive, on both sides) may
    order either way."""
    logits = logits.double()
    mine = logits[:, target : target + 1]
    tol = 1e-5 * logits.abs().amax(-1, keepdim=True).clamp(min=1.0)
    return ((logits > mine + tol).sum(-1) + 1).tolist(), ((logits >= mine - tol).sum(-1)).tolist()


@torch.no_grad()
def _rank_window(case: AnswerCase) -> tuple[list[int], list[int]]:
    """The answer's rank window at the last position, layer by layer, on the case's model."""
    lm = model_of(case)
    target = single_token_id(lm.tokenizer, case.answer)
    return rank_window(lm.adapter.decode(captured(case, case.prompt)[0][:, -1]), target)


class AnswerRanks(Exercise[AnswerCase]):
    """``answer_ranks(lm, prompt, answer) -> list[int]``: the answer's rank at the last position, layer by layer."""

    name = "answer_ranks"
    case_type = AnswerCase
    prompt_fields = ("prompt",)
    forbidden = ("reference_first_top_k_layer", "reference_settled_layer", "reference_classify", "first_layer_holding")

    def cases(self, seed: int, lm: ModelRef | None = None, cases: list[Any] | None = None) -> list[AnswerCase]:
        ref = case_model(lm)
        pairs = cases
        if pairs is None:  # the byte tokenizer of tiny models has one token per character
            pairs = [(p, a if ref.family is None else a.strip()[0]) for p, a in DEFAULT_ANSWER_CASES]
        out = []
        for pair in pairs:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(x, str) for x in pair):
                raise LensError(f"each answer_ranks case is (prompt, answer), got {pair!r}")
            out.append(AnswerCase(ref, pair[0], pair[1]))
        return out

    def inputs(self, case: AnswerCase) -> tuple[Any, ...]:
        return model_of(case), case.prompt, case.answer

    def judge(self, case: AnswerCase, got: Any) -> str:
        name = self.name
        lm, prompt, answer = self.inputs(case)
        low, high = _rank_window(case)
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        if not isinstance(got, (list, tuple)):
            raise CheckFailed(name, f"expected a list of ints, got {type(got).__name__}.", "return one rank per layer.")
        got = [x.item() if isinstance(x, torch.Tensor) and x.numel() == 1 else x for x in got]
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in got):
            raise CheckFailed(
                name,
                "expected a list of ints, one rank per layer.",
                "read the last position only: result.target_rank[:, -1].",
            )
        got = [int(x) for x in got]
        if len(got) != len(low):
            raise CheckFailed(
                name,
                f"expected {len(low)} ranks (layers 0..{len(low) - 1}), got {len(got)}.",
                "one rank per layer, embeddings included, at the last position only.",
            )
        bad = next((i for i, (g, lo, hi) in enumerate(zip(got, low, high)) if not lo <= g <= hi), None)
        if bad is None:
            return f"right for {prompt!r} / {answer!r}."
        if all(lo - 1 <= g <= hi - 1 for g, lo, hi in zip(got, low, high)):
            raise CheckFailed(name, "off by one: your ranks start at 0.", "the most likely token has rank 1.")
        raise CheckFailed(
            name,
            f"for {prompt!r} / {answer!r}, layer {bad}: rank {got[bad]}, expected {low[bad]}.",
            "read the last position (-1) with the target's rank (1 = top).",
        )

    def summary(self, cases: list[AnswerCase], detail: str) -> str:
        return f"matches the reference on {len(cases)} prompt{'s' if len(cases) != 1 else ''}."


FIRST_TOP_K_LAYER, SETTLED_LAYER, CLASSIFY, ANSWER_RANKS = FirstTopKLayer(), SettledLayer(), Classify(), AnswerRanks()
EXERCISES = (ANSWER_RANKS, FIRST_TOP_K_LAYER, SETTLED_LAYER, CLASSIFY)


check_first_top_k_layer = make_check(
    FIRST_TOP_K_LAYER,
    """``fn(ranks, k) -> int | None``: the first layer where the target's rank is at most ``k``.
    ``cases``: ``[(ranks, k), ...]`` to check instead of the edge cases and random trajectories.""",
)


check_settled_layer = make_check(
    SETTLED_LAYER,
    """``fn(ranks) -> int | None``: the first layer from which the target stays top-1 to the end.
    ``cases``: rank lists to check instead of the edge cases and random trajectories.""",
)


check_classify = make_check(
    CLASSIFY,
    """``fn(ranks) -> str``: 'corrected', 'stays wrong', 'lost' or 'right throughout'.
    ``cases``: rank lists to check instead of the edge cases and random trajectories.""",
)


check_answer_ranks = make_check(
    ANSWER_RANKS,
    """``fn(lm, prompt, answer) -> list[int]``: the answer's rank at the last position, layer by layer.""",
)

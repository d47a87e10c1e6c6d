"""Visible checks for assignment 2: reading the grid (where the answer appears, corrected vs stays wrong)."""
from __future__ import annotations

import random

import torch

from ...models import LoadedModel
from ...residual import capture_residuals
from ...tokens import encode_prompt, single_token_id
from ._core import CheckFailed, call, default_lm, passed

CORRECTED, STAYS_WRONG, LOST, RIGHT_THROUGHOUT = "corrected", "stays wrong", "lost", "right throughout"
LABELS = (CORRECTED, STAYS_WRONG, LOST, RIGHT_THROUGHOUT)


# --- reference answers -----------------------------------------------------------------------------

def ref_first_top_k_layer(ranks: list[int], k: int = 1) -> int | None:
    return next((layer for layer, r in enumerate(ranks) if r <= k), None)


def ref_settled_layer(ranks: list[int]) -> int | None:
    if not ranks or ranks[-1] != 1:
        return None
    layer = len(ranks) - 1
    while layer > 0 and ranks[layer - 1] == 1:
        layer -= 1
    return layer


def ref_classify(ranks: list[int]) -> str:
    if all(r == 1 for r in ranks):
        return RIGHT_THROUGHOUT
    if ranks[-1] == 1:
        return CORRECTED
    return LOST if 1 in ranks else STAYS_WRONG


@torch.no_grad()
def ref_answer_ranks(lm: LoadedModel, prompt: str, answer: str) -> list[int]:
    ids = encode_prompt(lm.tokenizer, prompt)
    target = single_token_id(lm.tokenizer, answer)
    logits = lm.adapter.decode(capture_residuals(lm, ids).states[:, 0, -1])  # [L+1, V]
    return ((logits > logits[:, target : target + 1]).sum(-1) + 1).tolist()


# --- synthetic rank trajectories -------------------------------------------------------------------

EDGE_CASES = (
    [7, 3, 1, 1],        # corrected, settles at 2
    [9, 1, 4, 1, 1],     # top-1 early, lost, back: settles at 3
    [6, 2, 1, 2, 3],     # lost
    [8, 5, 3, 2, 2],     # stays wrong, reaches the top 2
    [1, 1, 1],           # right throughout
    [1],                 # a single layer
    [4, 4, 4, 4],        # never moves
)


def random_ranks(rng: random.Random, n_layers: int | None = None) -> list[int]:
    n = n_layers or rng.randint(4, 12)
    kind = rng.choice(LABELS)
    ranks = [rng.randint(2, 60) for _ in range(n)]
    if kind == RIGHT_THROUGHOUT:
        return [1] * n
    if kind in (CORRECTED, LOST):
        start = rng.randint(1, n - 2)
        for layer in range(start, n):
            ranks[layer] = 1
        if kind == LOST:
            ranks[-1] = rng.randint(2, 5)
    return ranks


def _cases(n_random: int) -> list[list[int]]:
    rng = random.Random()
    return [list(c) for c in EDGE_CASES] + [random_ranks(rng) for _ in range(n_random)]


def _compare(name: str, fn, cases, ref, extra=(), explain=None) -> None:
    for ranks in cases:
        want = ref(list(ranks), *extra)
        got = call(fn, list(ranks), *extra, name=name)
        if got is not None and not isinstance(got, str):
            try:
                got = int(got)
            except (TypeError, ValueError):
                raise CheckFailed(name, f"expected {'a label' if isinstance(want, str) else 'an int or None'}, "
                                        f"got {type(got).__name__}.") from None
        if got != want:
            args = f"ranks={ranks}" + "".join(f", k={e}" for e in extra)
            hint = explain(ranks, got, want, *extra) if explain else ""
            raise CheckFailed(name, f"for {args} you returned {got!r}, expected {want!r}.", hint)


# --- the checks ------------------------------------------------------------------------------------

def _explain_first(ranks, got, want, k):
    if want is None:
        return f"the target never reaches the top {k} here: return None."
    if got == want + 1:
        return "layers are numbered from 0 (the embeddings): return the index, not the position."
    if got is not None and ranks[got] <= k and got > want:
        return "return the first layer where it happens, not a later one."
    if ranks[want] == k:
        return f"rank {k} is inside the top {k}: compare with <=, not <."
    return f"the first layer whose rank is at most {k}."


def check_first_top_k_layer(fn, n_random: int = 20) -> None:
    """``fn(ranks, k) -> int | None``: the first layer where the target's rank is at most ``k``."""
    name = "first_top_k_layer"
    for k in (1, 2, 5):
        _compare(name, fn, _cases(n_random), ref_first_top_k_layer, (k,), _explain_first)
    passed(name, f"right on {len(EDGE_CASES)} edge cases and {3 * n_random} random trajectories.")


def _explain_settled(ranks, got, want):
    if want is None:
        return "the target is not top-1 at the last layer, so it never settles: return None."
    if got is not None and got < want:
        return (f"the target is top-1 at layer {got} but drops again later: 'settled' means it stays top-1 "
                "through the last layer (search backwards from the end).")
    if got == len(ranks) - 1 and want < got:
        return "go back while the layer before is also top-1."
    return "the first layer from which the rank is 1 at every later layer."


def check_settled_layer(fn, n_random: int = 30) -> None:
    """``fn(ranks) -> int | None``: the first layer from which the target stays top-1 to the end."""
    name = "settled_layer"
    _compare(name, fn, _cases(n_random), ref_settled_layer, (), _explain_settled)
    passed(name, f"right on {len(EDGE_CASES)} edge cases and {n_random} random trajectories.")


def _explain_classify(ranks, got, want):
    if got not in LABELS:
        return f"return one of {', '.join(repr(x) for x in LABELS)}."
    why = {
        CORRECTED: "the final layer is right and an earlier one was not: later layers corrected it.",
        STAYS_WRONG: "it is never top-1 at any layer: the answer never surfaces.",
        LOST: "it is top-1 at some layer but not at the last: the right answer was there and got overwritten.",
        RIGHT_THROUGHOUT: "it is top-1 at every layer.",
    }
    return why[want]


def check_classify(fn, n_random: int = 40) -> None:
    """``fn(ranks) -> str``: 'corrected', 'stays wrong', 'lost' or 'right throughout'."""
    name = "classify"
    _compare(name, fn, _cases(n_random), ref_classify, (), _explain_classify)
    passed(name, f"right on {len(EDGE_CASES)} edge cases and {n_random} random trajectories.")


def check_answer_ranks(fn, lm: LoadedModel | None = None, cases=None) -> None:
    """``fn(lm, prompt, answer) -> list[int]``: the answer's rank at the last position, layer by layer."""
    lm = lm or default_lm()
    name = "answer_ranks"
    cases = cases or [("The opposite of up is", " down"), ("A baker makes bread, and a carpenter makes", " furniture")]
    for prompt, answer in cases:
        want = ref_answer_ranks(lm, prompt, answer)
        got = call(fn, lm, prompt, answer, name=name)
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        if not isinstance(got, (list, tuple)):
            raise CheckFailed(name, f"expected a list of ints, got {type(got).__name__}.", "return one rank per layer.")
        got = [int(x) for x in got]
        if len(got) != len(want):
            raise CheckFailed(name, f"expected {len(want)} ranks (layers 0..{len(want) - 1}), got {len(got)}.",
                              "one rank per layer, embeddings included, at the last position only.")
        if got == [r - 1 for r in want]:
            raise CheckFailed(name, "off by one: your ranks start at 0.", "the most likely token has rank 1.")
        if got != want:
            bad = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
            raise CheckFailed(name, f"for {prompt!r} / {answer!r}, layer {bad}: rank {got[bad]}, expected {want[bad]}.",
                              "read the last position (-1) with the target's rank (1 = top).")
    passed(name, f"matches the reference on {len(cases)} prompts.")

"""Decoding a stack of residual states into the lens statistics, fast and in bounded memory.

For every row (one layer at one position) the lens needs, over the whole vocabulary: the top-k tokens and
their probabilities, the entropy, KL(final || row), and a target's probability and rank. Computing the logits
is one big matmul; everything after it is a handful of passes over ``V`` numbers per row, and on a CPU those
passes cost as much as the matmul unless they are arranged with care:

- the logits are computed in blocks of up to 2048 rows (from there the matmul runs as fast as one big one) into
  a scratch buffer kept between calls (a fresh 400 MB buffer costs ~0.2 s of page faults every time);
- the statistics then walk each block in slices of 32 rows that stay in the CPU cache, so only the first pass
  over a slice reads main memory;
- top-k reads a row once for the maxima of 64-logit groups, then ranks only the best ``k`` groups (a plain
  ``topk`` over 49,152 logits costs as much as an ``exp``); the exponentials are ``exp2`` of logits pre-scaled
  by ``1 / ln 2`` in the same pass that subtracts the row maximum (``exp2`` is ~30% cheaper than ``exp``);
- KL needs no pass at all: ``sum_v p_final(v) z_v`` is linear in the logits ``z = norm(h) @ W.T``, so it is the
  d-wide dot product ``norm(h) . (p_final @ W)``.

Maths, per row with logits ``z``, ``m = max z``, ``s = sum(exp(z - m))``, ``lse = m + log s``:
entropy ``= log s - sum(exp(z - m) (z - m)) / s``; ``sum(p_final log p) = sum(p_final z) - lse`` and
``KL(final || row) = sum(p_final log p_final) - sum(p_final log p)``, where the first term is the final row's
own value of the second, so KL at the last layer is exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .errors import LensError, warn_deprecated
from .models import LoadedModel
from .unembed import Unembed

# A translator maps (layer, states [N, d]) to states [N, d] before decoding: identity for the
# logit lens, a learned affine map for the tuned lens.
Translator = Callable[[int, torch.Tensor], torch.Tensor]

DEFAULT_CHUNK_ROWS = 2048  # rows per unembedding matmul: from ~2000 rows it runs as fast as one big matmul
SLICE_ROWS = 32  # rows per statistics slice: 32 x 49,152 float32 = 6 MB, two of them fit the L3 cache
TOPK_GROUP = 64  # top-k looks at the maxima of groups of this many logits first
LOG2_E = 1.4426950408889634  # 1 / ln 2
LN_2 = 0.6931471805599453


@dataclass
class GridStats:
    """Lens statistics for a stack of states, indexed ``[layer, position]`` (``[..., k]`` for the top-k)."""

    top_ids: torch.Tensor  # long
    top_probs: torch.Tensor
    entropy: torch.Tensor  # nats
    kl_to_final: torch.Tensor  # KL(final || layer), nats: the name LensResult and the JSON use
    target_prob: torch.Tensor | None
    target_rank: torch.Tensor | None  # 1 = top

    @property
    def kl(self) -> torch.Tensor:
        """Deprecated name of :attr:`kl_to_final`."""
        warn_deprecated("GridStats.kl", "GridStats.kl_to_final")
        return self.kl_to_final


def topk_rows(z: torch.Tensor, k: int, group: int = TOPK_GROUP) -> tuple[torch.Tensor, torch.Tensor]:
    """``z.topk(k, dim=-1)`` for a 2-D ``z``, reading ``z`` once through the maxima of groups of ``group`` logits.

    The k largest values lie in the k groups with the largest maxima (each group ranked above an element's own
    group holds a larger element), so only those ``k * group`` candidates are ranked. Falls back to ``topk``
    when the vocabulary is too small or not a multiple of ``group``.
    """
    n, vocab = z.shape
    n_groups = vocab // group
    if vocab % group or n_groups < 2 * k:
        return z.topk(k, dim=-1)
    grouped = z.view(n, n_groups, group)
    best_groups = grouped.amax(-1).topk(k, dim=-1).indices  # [n, k]
    candidates = grouped.gather(1, best_groups[:, :, None].expand(n, k, group)).view(n, k * group)
    values, where = candidates.topk(k, dim=-1)
    ids = best_groups.gather(1, where // group) * group + where % group
    return values, ids


class _Accumulator:
    """Per-row outputs for ``n_rows`` rows (flattened ``layer * T + position``), filled slice by slice."""

    def __init__(self, n_rows: int, T: int, vocab: int, top_k: int, with_target: bool, device: torch.device):
        def new(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.empty(*shape, dtype=dtype, device=device)

        self.top_z, self.top_ids = new(n_rows, top_k), new(n_rows, top_k, dtype=torch.long)
        self.max_z, self.log_s = new(n_rows), new(n_rows)  # log-sum-exp = max_z + log_s
        self.entropy = new(n_rows)
        self.target_z = new(n_rows) if with_target else None
        self.larger = new(n_rows) if with_target else None  # how many logits exceed the target's
        self.final_p = new(T, vocab)  # the last layer's distribution at each position


def _slice_stats(
    z: torch.Tensor,
    rows: slice,
    final_positions: slice | None,
    target_id: int | None,
    work: torch.Tensor,
    acc: _Accumulator,
) -> None:
    """Statistics of the rows ``z [n, V]`` (one layer, consecutive positions); ``z`` is overwritten.

    ``final_positions`` is set when these rows are the last layer's: their distribution is the final one.
    """
    top_z, top_ids = topk_rows(z, acc.top_z.shape[1])
    acc.top_z[rows], acc.top_ids[rows] = top_z, top_ids
    if target_id is not None and acc.target_z is not None and acc.larger is not None:
        target_z = z[:, target_id : target_id + 1]
        acc.target_z[rows] = target_z[:, 0]
        # Counting into a float buffer is far faster than summing a bool tensor; counts < 2^24 are exact.
        acc.larger[rows] = torch.gt(z, target_z, out=work).sum(-1)
    m = top_z[:, :1]
    # u = (z - m) / ln 2 <= 0 in one pass, so that exp(z - m) = 2^u: exp2 is ~30% cheaper than exp here,
    # the exponent never overflows and the sums below have no cancellation.
    u = torch.add(-LOG2_E * m, z, alpha=LOG2_E, out=z)
    e = torch.exp2(u, out=work)
    s = e.sum(-1)  # torch's pairwise sums; a BLAS dot loses ~1e-4 relative over 49k terms
    if final_positions is not None:
        torch.div(e, s[:, None], out=acc.final_p[final_positions])
    log_s = s.log()
    acc.entropy[rows] = log_s - LN_2 * e.mul_(u).sum(-1) / s
    acc.max_z[rows], acc.log_s[rows] = m[:, 0], log_s


_WORKSPACES: dict[torch.device, torch.Tensor] = {}


def workspace(n_elements: int, device: torch.device) -> torch.Tensor:
    """A float32 scratch buffer of ``n_elements``, kept between calls (one per device, grown when needed).

    The logits of a 2048-row block of SmolLM2 take 400 MB; allocating them afresh on every call costs ~0.2 s of
    page faults on a CPU, as much as the statistics of 20 layers. :func:`release_workspace` frees the buffers.
    """
    device = torch.device(device)
    buffer = _WORKSPACES.get(device)
    if buffer is None or buffer.numel() < n_elements:
        _WORKSPACES.pop(device, None)  # free the old one before allocating the larger one
        buffer = _WORKSPACES[device] = torch.empty(n_elements, device=device)
    return buffer[:n_elements]


def release_workspace() -> None:
    """Free the scratch buffers that :func:`read_states` keeps between calls."""
    _WORKSPACES.clear()


def _slices(first: int, last: int, T: int, slice_rows: int) -> Iterator[tuple[int, int]]:
    """Split flattened rows ``[first, last)`` into runs of at most ``slice_rows`` rows inside one layer."""
    row = first
    while row < last:
        end = min(row + slice_rows, last, (row // T + 1) * T)
        yield row, end
        row = end


@torch.no_grad()
def read_states(
    lm: LoadedModel,
    states: torch.Tensor,
    top_k: int = 5,
    target_id: int | None = None,
    translator: Translator | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    keep_logits: bool = False,
) -> tuple[GridStats, torch.Tensor | None]:
    """Decode residual ``states [L+1, T, d]`` (layer ``L`` = the last block's output, before the final norm).

    ``translator`` maps layers ``0..L-1`` before decoding (a tuned lens); layer ``L`` is always decoded as it is:
    it is the model's own output, which every layer is compared with. Logits are computed ``chunk_rows`` rows
    at a time; extra memory is O(chunk_rows x vocab). The full ``[L+1, T, vocab]`` logits are built only when
    ``keep_logits`` asks for them (returned second, else None).
    """
    n_layers_plus, T, d = states.shape
    L = n_layers_plus - 1
    dev = states.device
    unembed = Unembed.of(lm)
    vocab = unembed.vocab_size
    flat = states.reshape(-1, d)
    if translator is not None:
        flat = torch.cat([translator(layer, states[layer]) for layer in range(L)] + [states[L]])
    if not 1 <= top_k <= vocab:
        raise LensError(f"top_k must be between 1 and the vocabulary size {vocab}, got {top_k}")
    normed = unembed.normalize(flat)
    n_rows = flat.shape[0]
    acc = _Accumulator(n_rows, T, vocab, top_k, target_id is not None, dev)
    kept = torch.empty(n_rows, vocab, device=dev) if keep_logits else None
    chunk_rows = max(1, min(chunk_rows, n_rows))
    slice_rows = min(SLICE_ROWS, chunk_rows)
    scratch = workspace((chunk_rows + slice_rows) * vocab, dev)
    logits = scratch[: chunk_rows * vocab].view(chunk_rows, vocab)
    work = scratch[chunk_rows * vocab :].view(slice_rows, vocab)
    for first in range(0, n_rows, chunk_rows):
        last = min(first + chunk_rows, n_rows)
        block = unembed.logits_into(normed[first:last], logits[: last - first])
        if kept is not None:
            kept[first:last] = block
        for r0, r1 in _slices(first, last, T, slice_rows):
            final_positions = slice(r0 - L * T, r1 - L * T) if r0 >= L * T else None
            _slice_stats(
                block[r0 - first : r1 - first], slice(r0, r1), final_positions, target_id, work[: r1 - r0], acc
            )
    pf_z = None
    if not unembed.linear_in_normed:  # soft-capped logits: sum_v p_final(v) z_v needs the logits themselves
        parts = []
        for first in range(0, n_rows, chunk_rows):
            last = min(first + chunk_rows, n_rows)
            block = unembed.logits_into(normed[first:last], logits[: last - first])
            parts.append((block * acc.final_p[torch.arange(first, last) % T]).sum(1, dtype=torch.float64))
        pf_z = torch.cat(parts)
    stats = _grid_stats(acc, unembed, normed, n_layers_plus, T, pf_z)
    return stats, (kept.view(n_layers_plus, T, vocab).cpu() if kept is not None else None)


def _grid_stats(
    acc: _Accumulator,
    unembed: Unembed,
    normed: torch.Tensor,
    n_layers_plus: int,
    T: int,
    pf_z: torch.Tensor | None = None,
) -> GridStats:
    """Turn the per-row sums into probabilities, entropy and KL on the ``[layer, position]`` grid.

    ``sum_v p_final(v) z_v`` is linear in the row's logits ``z = normed @ W.T (+ b)``, so it equals
    ``normed . (p_final @ W) (+ p_final . b)``: a dot product of width d instead of a pass over the vocabulary.
    When the logits are not linear in the normed state (a soft-cap), the caller passes those sums as ``pf_z``.
    """

    def grid(x: torch.Tensor) -> torch.Tensor:
        return x.view(n_layers_plus, T, *x.shape[1:]).cpu()

    lse = acc.max_z + acc.log_s  # log of the softmax's normalizer
    if pf_z is None:
        final_w, final_b = unembed.expected_row(acc.final_p)  # [T, d], [T] or None
        pf_z = (normed.double().view(n_layers_plus, T, -1) * final_w).sum(-1).view(-1)
        if final_b is not None:
            pf_z += final_b.repeat(n_layers_plus)
    pf_logp = (pf_z - lse.double()).view(n_layers_plus, T)  # sum_v p_final(v) log p_row(v), as sum p_final = 1
    kl = (pf_logp[-1] - pf_logp).clamp_min(0.0).float()  # sum p_f log p_f - sum p_f log p_row
    target_prob = target_rank = None
    if acc.target_z is not None:  # with a target, both of its buffers exist
        assert acc.larger is not None
        target_prob = grid(torch.exp(acc.target_z - lse))
        target_rank = grid(acc.larger.long() + 1)
    return GridStats(
        top_ids=grid(acc.top_ids),
        top_probs=grid(torch.exp(acc.top_z - lse[:, None])),
        entropy=grid(acc.entropy),
        kl_to_final=kl.cpu(),
        target_prob=target_prob,
        target_rank=target_rank,
    )

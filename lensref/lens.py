"""The logit lens: decode every layer's residual state with the model's own final norm and unembedding."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .models import LoadedModel
from .residual import capture_residuals
from .tokens import encode_prompt, single_token_id, token_texts

# A translator maps (layer, states [N, d]) to states [N, d] before decoding: identity for the
# logit lens, a learned affine map for the tuned lens.
Translator = Callable[[int, torch.Tensor], torch.Tensor]

DEFAULT_CHUNK_ROWS = 512  # the unembedding matmul reaches full speed from ~512 rows


@dataclass
class Token:
    token: str
    id: int
    prob: float


@dataclass
class LensResult:
    """What the lens reads at every (layer, position). Layer 0 = embeddings, layer ``n_layers`` = the model's output.

    Tensors are indexed ``[layer, position]`` (and ``[..., k]`` for the top-k).
    """

    model: str
    tokens: list[str]
    token_ids: list[int]
    top_ids: torch.Tensor  # [L+1, T, k] long
    top_probs: torch.Tensor  # [L+1, T, k]
    top_tokens: list[list[list[str]]]  # [L+1][T][k]
    entropy: torch.Tensor  # [L+1, T], nats
    kl_to_final: torch.Tensor  # [L+1, T], KL(final || layer), nats
    target: str | None = None
    target_id: int | None = None
    target_prob: torch.Tensor | None = None  # [L+1, T]
    target_rank: torch.Tensor | None = None  # [L+1, T], 1 = top
    logits: torch.Tensor | None = field(default=None, repr=False)  # [L+1, T, V] only if asked for

    @property
    def n_layers(self) -> int:
        return self.entropy.shape[0] - 1

    @property
    def n_positions(self) -> int:
        return self.entropy.shape[1]

    def top(self, layer: int, position: int = -1) -> list[Token]:
        position %= self.n_positions
        return [
            Token(self.top_tokens[layer][position][j], int(self.top_ids[layer, position, j]),
                  float(self.top_probs[layer, position, j]))
            for j in range(self.top_ids.shape[-1])
        ]

    def top1(self, layer: int, position: int = -1) -> str:
        return self.top_tokens[layer][position % self.n_positions][0]

    def first_top1_layer(self, position: int = -1) -> int | None:
        """The first layer from which the target stays top-1 through the last layer (None if it never does)."""
        if self.target_rank is None:
            raise ValueError("this result has no target")
        ranks = self.target_rank[:, position].tolist()
        first = None
        for layer in range(len(ranks) - 1, -1, -1):
            if ranks[layer] != 1:
                break
            first = layer
        return first

    def to_dict(self) -> dict:
        """The JSON form documented in the README (``lensref lens --json``)."""
        layers = []
        for layer in range(self.n_layers + 1):
            positions = []
            for pos in range(self.n_positions):
                positions.append({
                    "top": [t.__dict__ for t in self.top(layer, pos)],
                    "entropy": float(self.entropy[layer, pos]),
                    "kl_to_final": float(self.kl_to_final[layer, pos]),
                    "target_prob": None if self.target_prob is None else float(self.target_prob[layer, pos]),
                    "target_rank": None if self.target_rank is None else int(self.target_rank[layer, pos]),
                })
            layers.append({"layer": layer, "positions": positions})
        target = None if self.target is None else {"text": self.target, "id": self.target_id}
        return {"model": self.model, "tokens": self.tokens, "target": target, "layers": layers}


@dataclass
class _Stats:
    top_ids: torch.Tensor
    top_probs: torch.Tensor
    entropy: torch.Tensor
    kl: torch.Tensor
    target_prob: torch.Tensor | None
    target_rank: torch.Tensor | None


def _row_stats(
    logits: torch.Tensor,
    final_p: torch.Tensor,
    final_neg_entropy: torch.Tensor,
    top_k: int,
    target_id: int | None,
    work: torch.Tensor | None = None,
) -> _Stats:
    """Statistics of a block of rows: ``logits [n_layers, n_pos, V]`` against the final distribution.

    ``final_p [n_pos, V]`` and ``final_neg_entropy [n_pos]`` (sum of p log p) describe the last layer at the same
    positions. With ``m`` the row max, ``dz = z - m``, ``s = sum(exp(dz))`` and ``log p = dz - log s``:
    entropy = log s - sum(exp(dz) dz) / s, and KL(final || row) = sum(p_f log p_f) - sum(p_f log p).
    ``logits`` is overwritten (it becomes ``log p``); ``work`` is an optional scratch buffer of the same shape.
    """
    n_layers, n_pos, vocab = logits.shape
    z = logits.view(-1, vocab)
    top_z, top_ids = z.topk(top_k, dim=-1)  # top-k of the logits = top-k of the log-probs
    work = torch.empty_like(logits) if work is None else work
    target_z = target_rank = None
    if target_id is not None:
        target_z = z[:, target_id].clone()
        # Counting into a float buffer is ~6x faster than summing a bool tensor; counts < 2^24 are exact.
        larger = torch.gt(z, target_z[:, None], out=work.view(-1, vocab)).sum(-1)
        target_rank = larger.long() + 1
    m = top_z[:, :1]
    dz = z.sub_(m)  # <= 0: exp never overflows and the sums below have no cancellation
    # Reductions use torch's pairwise sums (a BLAS dot loses ~1e-4 relative over 49k terms).
    e = torch.exp(dz, out=work.view(-1, vocab))
    s = e.sum(-1)
    e_dz = e.mul_(dz).sum(-1)
    log_s = s.log()
    entropy = log_s - e_dz / s
    # KL from sum(p_f log p) with log p elementwise: sum(p_f) is 1 only to ~1e-6, so never scale log s by it.
    logp = dz.sub_(log_s[:, None]).view(n_layers, n_pos, vocab)
    pf_logp = torch.mul(logp, final_p, out=work).sum(-1).view(-1)
    kl = final_neg_entropy.repeat(n_layers) - pf_logp
    top_probs = torch.exp(top_z - m - log_s[:, None])
    target_prob = None if target_z is None else torch.exp(target_z - m[:, 0] - log_s)
    return _Stats(top_ids, top_probs, entropy, kl.clamp_min(0.0), target_prob, target_rank)


@torch.no_grad()
def read_states(
    lm: LoadedModel,
    states: torch.Tensor,
    top_k: int = 5,
    target_id: int | None = None,
    translator: Translator | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    keep_logits: bool = False,
) -> tuple[_Stats, torch.Tensor | None]:
    """Decode residual ``states [L+1, T, d]`` in blocks of at most ``chunk_rows`` rows.

    Extra memory is O(chunk_rows x vocab) plus the final layer's distribution ``[T, vocab]``; the full
    ``[L+1, T, vocab]`` logits are only built when ``keep_logits`` asks for them. A block is whole layers
    (when ``T <= chunk_rows``) or a run of positions inside one layer, so the final distribution it is
    compared with is a plain slice.
    """
    n_layers_plus, T, d = states.shape
    L = n_layers_plus - 1
    decode = lm.adapter.decode
    final_z = decode(states[L]).float()  # [T, V]
    final_z -= final_z.amax(-1, keepdim=True)
    # log-softmax computed as _row_stats does (pairwise sum): torch.log_softmax's sum is ~3e-5 off here
    final_logp = final_z.sub_(final_z.exp().sum(-1, keepdim=True).log())
    final_p = final_logp.exp()
    final_neg_entropy = (final_p * final_logp).sum(-1)  # sum p log p, [T]
    del final_logp
    vocab = final_p.shape[-1]
    if T <= chunk_rows:
        step = max(1, chunk_rows // T)
        blocks = [(l0, min(l0 + step, n_layers_plus), 0, T) for l0 in range(0, n_layers_plus, step)]
    else:
        blocks = [(layer, layer + 1, p0, min(p0 + chunk_rows, T))
                  for layer in range(n_layers_plus) for p0 in range(0, T, chunk_rows)]
    dev = final_p.device
    grid = (n_layers_plus, T)
    out = {
        "top_ids": torch.empty(*grid, top_k, dtype=torch.long, device=dev),
        "top_probs": torch.empty(*grid, top_k, device=dev),
        "entropy": torch.empty(grid, device=dev),
        "kl": torch.empty(grid, device=dev),
    }
    if target_id is not None:
        out["target_prob"] = torch.empty(grid, device=dev)
        out["target_rank"] = torch.empty(grid, dtype=torch.long, device=dev)
    kept = torch.empty(*grid, vocab, device=dev) if keep_logits else None
    max_rows = max((l1 - l0) * (p1 - p0) for l0, l1, p0, p1 in blocks)
    work = torch.empty(max_rows * vocab, device=dev)  # scratch for exp(), reused by every block
    for l0, l1, p0, p1 in blocks:
        h = states[l0:l1, p0:p1]
        if translator is not None:
            h = torch.stack([translator(layer, h[layer - l0]) for layer in range(l0, l1)])
        logits = decode(h.reshape(-1, d)).float().view(l1 - l0, p1 - p0, vocab)
        if kept is not None:
            kept[l0:l1, p0:p1] = logits
        stats = _row_stats(logits, final_p[p0:p1], final_neg_entropy[p0:p1], top_k, target_id,
                           work[: logits.numel()].view(logits.shape))
        for name, tensor in out.items():
            value = getattr(stats, name)
            tensor[l0:l1, p0:p1] = value.view(l1 - l0, p1 - p0, *value.shape[1:])
    stats = _Stats(*(None if name not in out else out[name].cpu()
                     for name in ("top_ids", "top_probs", "entropy", "kl", "target_prob", "target_rank")))
    return stats, (kept.cpu() if kept is not None else None)


def logit_lens(
    lm: LoadedModel,
    prompt: str,
    target: str | None = None,
    top_k: int = 5,
    translator: Translator | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    keep_logits: bool = False,
) -> LensResult:
    """Read ``prompt`` through the lens at every layer and position.

    ``target`` (one token, e.g. ``" Paris"``) adds its probability and rank. ``translator`` turns the
    logit lens into a tuned lens. ``keep_logits`` also returns the full ``[L+1, T, V]`` logits.
    """
    ids = encode_prompt(lm.tokenizer, prompt, lm.max_context)
    target_id = None if target is None else single_token_id(lm.tokenizer, target)
    res = capture_residuals(lm, ids)
    stats, logits = read_states(lm, res.states[:, 0], top_k, target_id, translator, chunk_rows, keep_logits)
    vocab_text = {}

    def text(i: int) -> str:
        if i not in vocab_text:
            vocab_text[i] = lm.tokenizer.decode([i])
        return vocab_text[i]

    top_tokens = [[[text(int(i)) for i in row] for row in layer] for layer in stats.top_ids.tolist()]
    return LensResult(
        model=lm.name, tokens=token_texts(lm.tokenizer, ids), token_ids=ids.tolist(),
        top_ids=stats.top_ids, top_probs=stats.top_probs, top_tokens=top_tokens,
        entropy=stats.entropy, kl_to_final=stats.kl, target=target, target_id=target_id,
        target_prob=stats.target_prob, target_rank=stats.target_rank, logits=logits,
    )

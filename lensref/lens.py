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

DEFAULT_CHUNK_ROWS = 256


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


def _row_stats(logits: torch.Tensor, final_logp: torch.Tensor, top_k: int, target_id: int | None) -> _Stats:
    """Statistics of one chunk of rows: ``logits [N, V]`` against the final log-probs ``[N, V]``."""
    logp = torch.log_softmax(logits, dim=-1)
    top_logp, top_ids = logp.topk(top_k, dim=-1)
    p = logp.exp()
    entropy = -(p * logp).sum(-1)
    kl = (final_logp.exp() * (final_logp - logp)).sum(-1)
    target_prob = target_rank = None
    if target_id is not None:
        target_logit = logits[:, target_id : target_id + 1]
        target_prob = p[:, target_id]
        target_rank = (logits > target_logit).sum(-1) + 1
    return _Stats(top_ids, top_logp.exp(), entropy, kl.clamp_min(0.0), target_prob, target_rank)


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
    """Decode residual ``states [L+1, T, d]`` chunk by chunk; extra memory is O(chunk_rows x vocab)."""
    n_layers_plus, T, d = states.shape
    L = n_layers_plus - 1
    decode = lm.adapter.decode
    final_logp = torch.log_softmax(decode(states[L]).float(), dim=-1)  # [T, V]
    rows = states.reshape(-1, d)
    layer_of_row = torch.arange(n_layers_plus).repeat_interleave(T)
    pos_of_row = torch.arange(T).repeat(n_layers_plus)
    parts: list[_Stats] = []
    kept = [] if keep_logits else None
    for start in range(0, rows.shape[0], chunk_rows):
        stop = min(start + chunk_rows, rows.shape[0])
        chunk = rows[start:stop]
        if translator is not None:
            chunk = torch.cat([
                translator(int(layer), chunk[layer_of_row[start:stop] == layer])
                for layer in layer_of_row[start:stop].unique()
            ])
        logits = decode(chunk).float()
        parts.append(_row_stats(logits, final_logp[pos_of_row[start:stop]], top_k, target_id))
        if kept is not None:
            kept.append(logits.cpu())

    def gather(name: str):
        values = [getattr(p, name) for p in parts]
        if values[0] is None:
            return None
        out = torch.cat(values).cpu()
        return out.reshape(n_layers_plus, T, *out.shape[1:])

    stats = _Stats(*(gather(n) for n in ("top_ids", "top_probs", "entropy", "kl", "target_prob", "target_rank")))
    logits = torch.cat(kept).reshape(n_layers_plus, T, -1) if kept is not None else None
    return stats, logits


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

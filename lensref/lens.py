"""The logit lens: decode every layer's residual state with the model's own final norm and unembedding."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import LensError
from .hooks import check_site
from .indices import first_layer_holding
from .interop import as_loaded_model
from .models import LoadedModel
from .readout import DEFAULT_CHUNK_ROWS, Translator, read_states
from .residual import capture_residuals
from .tables import layer_table
from .tokens import encode_prompt, show_token, single_token_id, token_texts

SITE_WORDS = {"pre": "on entry", "mid": "after attention, before the MLP", "post": "at its output"}

__all__ = ["DEFAULT_CHUNK_ROWS", "LensResult", "Token", "Translator", "logit_lens", "read_states"]


@dataclass
class Token:
    """One of a row's top tokens: its text, id and probability."""

    token: str
    id: int
    prob: float


@dataclass
class LensResult:
    """What the lens reads at every (layer, position). Layer 0 = embeddings, layer ``n_layers`` = the model's output.

    Tensors are indexed ``[layer, position]`` (and ``[..., k]`` for the top-k). ``site`` says where inside block
    ``l`` row ``l`` was read (``pre``, ``mid`` or ``post``, see :mod:`lensref.hooks`); the last row is the model's
    output at every site.
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
    site: str = "pre"

    @property
    def n_layers(self) -> int:
        """How many blocks the model has (rows are layers 0..n_layers)."""
        return self.entropy.shape[0] - 1

    @property
    def n_positions(self) -> int:
        """How many tokens the prompt has."""
        return self.entropy.shape[1]

    def top(self, layer: int, position: int = -1) -> list[Token]:
        """The top-k tokens at (``layer``, ``position``), most probable first."""
        position %= self.n_positions
        return [
            Token(
                self.top_tokens[layer][position][j],
                int(self.top_ids[layer, position, j]),
                float(self.top_probs[layer, position, j]),
            )
            for j in range(self.top_ids.shape[-1])
        ]

    def top1(self, layer: int, position: int = -1) -> str:
        """The most probable token's text at (``layer``, ``position``)."""
        return self.top_tokens[layer][position % self.n_positions][0]

    def first_top1_layer(self, position: int = -1) -> int | None:
        """The first layer from which the target stays top-1 through the last layer (None if it never does)."""
        if self.target_rank is None:
            raise ValueError("this result has no target")
        return first_layer_holding([rank == 1 for rank in self.target_rank[:, position].tolist()])

    def format_table(self, position: int = -1) -> str:
        """One line per layer at ``position``: entropy, KL, the target's probability and rank, the top tokens."""
        header = (
            f"{'layer':>5}  {'entropy':>7}  {'KL':>7}  " + ("target p / rank  " if self.target else "") + "top tokens"
        )

        def row(layer: int) -> str:
            tops = "  ".join(f"{show_token(t.token)} {t.prob:.3f}" for t in self.top(layer, position))
            target = ""
            if self.target_prob is not None and self.target_rank is not None:
                prob, rank = float(self.target_prob[layer, position]), int(self.target_rank[layer, position])
                target = f"{prob:.4f} / {rank:<6} "
            entropy, kl = float(self.entropy[layer, position]), float(self.kl_to_final[layer, position])
            return f"{layer:>5}  {entropy:7.3f}  {kl:7.3f}  {target}{tops}"

        title = f"{self.model}: next-token predictions after {show_token(self.tokens[position])!r}"
        if self.site != "pre":
            title += f" (site {self.site}: row l reads block l {SITE_WORDS[self.site]})"
        return "\n".join(layer_table(title, header, self.n_layers, row))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form documented in the README (``lensref lens --json``)."""
        layers = []
        for layer in range(self.n_layers + 1):
            positions = []
            for pos in range(self.n_positions):
                positions.append(
                    {
                        "top": [t.__dict__ for t in self.top(layer, pos)],
                        "entropy": float(self.entropy[layer, pos]),
                        "kl_to_final": float(self.kl_to_final[layer, pos]),
                        "target_prob": None if self.target_prob is None else float(self.target_prob[layer, pos]),
                        "target_rank": None if self.target_rank is None else int(self.target_rank[layer, pos]),
                    }
                )
            layers.append({"layer": layer, "positions": positions})
        target = None if self.target is None else {"text": self.target, "id": self.target_id}
        data = {"model": self.model, "tokens": self.tokens, "target": target, "layers": layers}
        if self.site != "pre":  # the default's JSON stays as it was
            data["site"] = self.site
        return data


def logit_lens(
    lm: LoadedModel,
    prompt: str,
    target: str | None = None,
    top_k: int = 5,
    translator: Translator | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    keep_logits: bool = False,
    site: str = "pre",
) -> LensResult:
    """Read ``prompt`` through the lens at every layer and position.

    ``target`` (one token, e.g. ``" Paris"``) adds its probability and rank. ``translator`` turns the
    logit lens into a tuned lens. ``keep_logits`` also returns the full ``[L+1, T, V]`` logits. ``site`` reads
    each block at ``pre`` (the state entering it, the default), ``mid`` (after attention, before the MLP) or
    ``post`` (its output); a tuned lens was trained on ``pre`` states and reads only those.

    ``lm`` may also be a TransformerLens ``HookedTransformer``/``TransformerBridge`` or an nnsight
    ``LanguageModel``: see :mod:`lensref.interop`.
    """
    lm = as_loaded_model(lm)
    check_site(lm.adapter, site)
    if translator is not None and site != "pre":
        raise LensError(f"a tuned lens translates the states entering each block (site pre), not site {site!r}")
    ids = encode_prompt(lm.tokenizer, prompt, lm.max_context)
    target_id = None if target is None else single_token_id(lm.tokenizer, target)
    res = capture_residuals(lm, ids, states_only=True, site=site)  # the last layer is decoded from its state too
    stats, logits = read_states(lm, res.states[:, 0], top_k, target_id, translator, chunk_rows, keep_logits)
    vocab_text: dict[int, str] = {}

    def text(i: int) -> str:
        if i not in vocab_text:
            vocab_text[i] = lm.tokenizer.decode([i])
        return vocab_text[i]

    top_tokens = [[[text(int(i)) for i in row] for row in layer] for layer in stats.top_ids.tolist()]
    return LensResult(
        model=lm.name,
        tokens=token_texts(lm.tokenizer, ids),
        token_ids=ids.tolist(),
        top_ids=stats.top_ids,
        top_probs=stats.top_probs,
        top_tokens=top_tokens,
        entropy=stats.entropy,
        kl_to_final=stats.kl_to_final,
        target=target,
        target_id=target_id,
        target_prob=stats.target_prob,
        target_rank=stats.target_rank,
        logits=logits,
        site=site,
    )

"""Patchscopes (Ghandeharioun et al. 2024): read a hidden state by letting the model talk about it.

Take the residual state at (layer ``l``, position ``i``) of a *source* prompt, write it over the state of
a placeholder token in a *target* prompt at layer ``l*``, and let the model continue. With the identity
target prompt (a few-shot "x -> x" repetition ending in "? ->") the model tends to repeat whatever the
patched state encodes, so the continuation reads that state out in words (a :class:`Continuation` per layer).

Layers follow :mod:`lensref.residual`: layer 0 is the embedding output (what block 0 reads), layer ``l`` is
what block ``l`` reads, and layer ``L`` is the last block's output, the input of the final norm. Patching at
``l* < L`` is a forward pre-hook on block ``l*``; patching at ``l* = L`` is a pre-hook on the final norm.

Generation is a plain greedy loop with the key/value cache: the first step runs the whole target prompt
and is the only one patched (its cached keys and values carry the patch to every later step). Source and target model may differ; when their widths
differ, :func:`lensref.residual_map.fit_residual_map` fits an affine map between their residual spaces by
least squares on text both models read.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import LensError, warn_deprecated
from .hooks import Hooks, PreHook, hidden_input, residual_site, with_hidden_input
from .indices import check_layer, check_position
from .interop import as_loaded_model
from .models import LoadedModel
from .residual import capture_residuals
from .residual_map import ResidualMap
from .tokens import encode_prompt, show_token, token_texts

IDENTITY_PROMPT = "cat -> cat\n1135 -> 1135\nhello -> hello\n? ->"  # the paper's identity prompt
PLACEHOLDER = "?"
STOP_TEXTS = (";", "\n")  # the identity prompt's separators: the answer ends at the first one
DEFAULT_NEW_TOKENS = 4

__all__ = [
    "IDENTITY_PROMPT",
    "PLACEHOLDER",
    "DEFAULT_NEW_TOKENS",
    "Continuation",
    "PatchscopeResult",
    "find_placeholder",
    "patch_hook",
    "patched_logits",
    "generate_patched",
    "patchscope",
]


def __getattr__(name: str) -> Any:
    """``Readout``, the old name of :class:`Continuation`, still imports (with a ``DeprecationWarning``)."""
    if name == "Readout":
        warn_deprecated("lensref.patchscope.Readout", "lensref.patchscope.Continuation")
        return Continuation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- patching -------------------------------------------------------------------------------------------


@dataclass
class Continuation:
    """What the target model said with the source state of ``layer`` patched in at ``target_layer``."""

    layer: int
    target_layer: int
    tokens: list[str]  # the greedy continuation, token by token
    first_prob: float  # probability of the first generated token

    @property
    def text(self) -> str:
        """The continuation as one string."""
        return "".join(self.tokens)

    @property
    def answer(self) -> str:
        """The continuation up to the identity prompt's next separator, stripped."""
        text = self.text
        for stop in STOP_TEXTS:
            text = text.split(stop)[0]
        return text.strip()


@dataclass
class PatchscopeResult:
    """One source state read at each source layer: the prompts, the placeholder's position and one continuation a layer."""

    source_model: str
    target_model: str
    source_tokens: list[str]
    position: int  # non-negative index into source_tokens
    target_prompt: str
    target_tokens: list[str]
    placeholder_position: int
    continuations: list[Continuation]
    maps: dict[int, ResidualMap] = field(default_factory=dict, repr=False)

    @property
    def source_token(self) -> str:
        """The source token whose state was read."""
        return self.source_tokens[self.position]

    def continuation(self, layer: int) -> Continuation:
        """The continuation of source layer ``layer`` (KeyError if it was not read)."""
        for continuation in self.continuations:
            if continuation.layer == layer:
                return continuation
        raise KeyError(layer)

    @property
    def readouts(self) -> list[Continuation]:
        """Deprecated name of :attr:`continuations`."""
        warn_deprecated("PatchscopeResult.readouts", "PatchscopeResult.continuations")
        return self.continuations

    def readout(self, layer: int) -> Continuation:
        """Deprecated name of :meth:`continuation`."""
        warn_deprecated("PatchscopeResult.readout()", "PatchscopeResult.continuation()")
        return self.continuation(layer)

    def answers(self) -> dict[int, str]:
        """Source layer -> its continuation's answer."""
        return {r.layer: r.answer for r in self.continuations}

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON data, each continuation with its residual map's summary (or None).

        ``"readouts"`` repeats ``"continuations"`` under its old name until 0.3 (deprecated).
        """
        continuations = [
            {
                "layer": r.layer,
                "target_layer": r.target_layer,
                "tokens": r.tokens,
                "text": r.text,
                "answer": r.answer,
                "first_prob": r.first_prob,
                "map": self.maps[r.layer].to_dict() if r.layer in self.maps else None,
            }
            for r in self.continuations
        ]
        return {
            "source_model": self.source_model,
            "target_model": self.target_model,
            "source_tokens": self.source_tokens,
            "position": self.position,
            "source_token": self.source_token,
            "target_prompt": self.target_prompt,
            "target_tokens": self.target_tokens,
            "placeholder_position": self.placeholder_position,
            "continuations": continuations,
            "readouts": continuations,
        }

    def format_table(self) -> str:
        """One line per source layer: the layer it was patched into, the first token's probability, the continuation."""
        lines = [
            f"{self.source_model} -> {self.target_model}: {show_token(self.source_token)!r} "
            f"(position {self.position}) read through {self.target_prompt!r}",
            f"{'layer':>5}  {'-> l*':>5}  {'p(first)':>8}  continuation",
        ]
        for r in self.continuations:
            lines.append(f"{r.layer:>5}  {r.target_layer:>5}  {r.first_prob:8.3f}  {show_token(r.text)}")
        return "\n".join(lines)


def find_placeholder(tokenizer: Any, ids: torch.Tensor, placeholder: str) -> int:
    """The position of the last token of ``ids`` whose text (spaces stripped) is ``placeholder``."""
    texts = token_texts(tokenizer, ids)
    for position in range(len(texts) - 1, -1, -1):
        if texts[position].strip() == placeholder.strip():
            return position
    raise LensError(
        f"the placeholder {placeholder!r} is not a token of the target prompt (its tokens are {' | '.join(show_token(t) for t in texts)})"
    )


def patch_hook(
    rows: torch.Tensor, positions: int | torch.Tensor, vectors: torch.Tensor, active: dict[str, bool] | None = None
) -> PreHook:
    """A forward pre-hook on a residual site that writes ``vectors`` over ``hidden_states[rows, positions]`` (a
    batch row per entry of ``rows``; ``positions`` one index for all rows or one per row; ``vectors`` one per row
    or one for all). With ``active``, only while ``active["on"]``: later generation steps pass through (the key/value
    cache of the first step already carries the patch)."""

    def hook(
        module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        if active is not None and not active["on"]:
            return None
        hidden = hidden_input(args, kwargs).clone()
        hidden[rows, positions] = vectors.to(hidden.dtype)
        return with_hidden_input(args, kwargs, hidden)

    return hook


@torch.no_grad()
def patched_logits(
    lm: LoadedModel, prompt: str, layer: int, vector: torch.Tensor, positions: list[int]
) -> torch.Tensor:
    """Next-token logits ``[len(positions), V]`` of ``prompt``, row ``r`` with ``vector`` written over the residual
    state of ``layer`` at ``positions[r]`` (one batched forward pass, no generation)."""
    ids = encode_prompt(lm.tokenizer, prompt)
    hook = patch_hook(torch.arange(len(positions)), torch.tensor(positions), vector)
    with Hooks() as hooks:
        hooks.pre(residual_site(lm.adapter, layer), hook)
        logits: torch.Tensor = lm.model(input_ids=ids[None].repeat(len(positions), 1)).logits[:, -1]
    return logits


def _cache_kwarg(model: torch.nn.Module) -> str:
    """Transformers 5 renamed ``past_key_values`` to ``cache`` (the old name warns on stderr)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def generate_patched(
    lm: LoadedModel, ids: torch.Tensor, position: int, target_layers: list[int], vectors: torch.Tensor, n_tokens: int
) -> tuple[list[list[int]], list[float]]:
    """Greedy continuation of ``ids`` in a batch, row ``r`` with ``vectors[r]`` written at ``position`` in
    layer ``target_layers[r]``. Returns the new token ids per row and each row's first-token probability.

    The first step runs the whole prompt (and is the one patched); later steps feed one token each and
    reuse the key/value cache, which holds the patched prompt.
    """
    n_rows = len(target_layers)
    layer_of_row = torch.tensor(target_layers)
    active = {"on": True}
    step_input = ids[None].repeat(n_rows, 1).to(lm.device)
    generated: list[torch.Tensor] = []
    first_prob: list[float] = []
    cache_kwarg = _cache_kwarg(lm.model)
    past = None
    with Hooks() as hooks:
        for layer in sorted(set(target_layers)):
            rows = (layer_of_row == layer).nonzero().flatten().to(lm.device)
            hook = patch_hook(rows, position, vectors[rows.cpu()].to(lm.device), active)
            hooks.pre(residual_site(lm.adapter, layer), hook)
        for step in range(n_tokens):
            out = lm.model(input_ids=step_input, use_cache=True, logits_to_keep=1, **{cache_kwarg: past})
            logits = out.logits[:, -1].float()
            past = getattr(out, "cache", None) or out.past_key_values
            active["on"] = False
            next_ids = logits.argmax(-1)
            if step == 0:
                first_prob = torch.softmax(logits, -1).gather(1, next_ids[:, None])[:, 0].tolist()
            generated.append(next_ids)
            step_input = next_ids[:, None]
    return torch.stack(generated, dim=1).tolist(), first_prob


def patchscope(
    source_lm: LoadedModel,
    prompt: str,
    position: int = -1,
    layers: list[int] | None = None,
    target_prompt: str = IDENTITY_PROMPT,
    placeholder: str = PLACEHOLDER,
    target_layer: int | None = None,
    n_tokens: int = DEFAULT_NEW_TOKENS,
    target_lm: LoadedModel | None = None,
    maps: dict[int, ResidualMap] | None = None,
) -> PatchscopeResult:
    """Read the state of ``prompt`` at ``position`` at each of ``layers`` (default all) through ``target_prompt``.

    ``target_layer`` fixes ``l*`` for every source layer (default: the same layer, or for a target model of
    another depth the same relative depth). ``target_lm`` (default the source model) may be another model;
    if its width differs, ``maps`` must give a :class:`ResidualMap` per source layer.
    """
    if n_tokens < 1:
        raise LensError(f"the number of tokens to generate must be at least 1, got {n_tokens}")
    source_lm = as_loaded_model(source_lm)
    target_lm = source_lm if target_lm is None else as_loaded_model(target_lm)
    maps = dict(maps or {})
    source_ids = encode_prompt(source_lm.tokenizer, prompt, source_lm.max_context)
    position = check_position(position, len(source_ids))
    layers = list(range(source_lm.n_layers + 1)) if layers is None else list(layers)
    if not layers:
        raise LensError("no layers to read; give at least one")
    for layer in layers:
        check_layer(layer, source_lm.n_layers, "source layer")
    if target_layer is not None:
        check_layer(target_layer, target_lm.n_layers, "target layer")

    def destination(layer: int) -> int:
        if target_layer is not None:
            return target_layer
        if layer in maps:
            return maps[layer].target_layer
        return round(layer * target_lm.n_layers / source_lm.n_layers)

    target_layers = [destination(layer) for layer in layers]
    target_ids = encode_prompt(target_lm.tokenizer, target_prompt, target_lm.max_context)
    slot = find_placeholder(target_lm.tokenizer, target_ids, placeholder)

    states = capture_residuals(source_lm, source_ids).states[:, 0, position].cpu()  # [L_s+1, d_s]
    vectors = []
    for layer, dest in zip(layers, target_layers):
        vector = states[layer]
        if layer in maps:
            if maps[layer].target_layer != dest:
                raise LensError(
                    f"the map for source layer {layer} goes to target layer {maps[layer].target_layer}, not {dest}"
                )
            vector = maps[layer](vector[None])[0]
        elif source_lm.adapter.d_model != target_lm.adapter.d_model:
            raise LensError(
                f"the source model is {source_lm.adapter.d_model} wide and the target model "
                f"{target_lm.adapter.d_model}: fit a residual map for layer {layer} first"
            )
        vectors.append(vector)
    new_ids, first_prob = generate_patched(target_lm, target_ids, slot, target_layers, torch.stack(vectors), n_tokens)

    continuations = [
        Continuation(layer, dest, token_texts(target_lm.tokenizer, row), prob)
        for layer, dest, row, prob in zip(layers, target_layers, new_ids, first_prob)
    ]
    return PatchscopeResult(
        source_model=source_lm.name,
        target_model=target_lm.name,
        source_tokens=token_texts(source_lm.tokenizer, source_ids),
        position=position,
        target_prompt=target_prompt,
        target_tokens=token_texts(target_lm.tokenizer, target_ids),
        placeholder_position=slot,
        continuations=continuations,
        maps={k: v for k, v in maps.items() if k in layers},
    )

"""Patchscopes (Ghandeharioun et al. 2024): read a hidden state by letting the model talk about it.

Take the residual state at (layer ``l``, position ``i``) of a *source* prompt, write it over the state of
a placeholder token in a *target* prompt at layer ``l*``, and let the model continue. With the identity
target prompt (a few-shot "x -> x" repetition ending in "? ->") the model tends to repeat whatever the
patched state encodes, so the continuation is a readout of that state in words.

Layers follow :mod:`lensref.residual`: layer 0 is the embedding output (what block 0 reads), layer ``l`` is
what block ``l`` reads, and layer ``L`` is the last block's output, the input of the final norm. Patching at
``l* < L`` is a forward pre-hook on block ``l*``; patching at ``l* = L`` is a pre-hook on the final norm.

Generation is a plain greedy loop with the key/value cache: the first step runs the whole target prompt
and is the only one patched (its cached keys and values carry the patch to every later step). Source and target model may differ; when their widths
differ, :func:`fit_residual_map` fits an affine map between their residual spaces by least squares on
text both models read.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch

from .corpus import prose_windows
from .errors import LensError
from .hooks import Hooks, PreHook, hidden_input, residual_site, with_hidden_input
from .indices import check_layer, check_position, parse_layers
from .interop import as_loaded_model
from .models import LoadedModel
from .residual import capture_residuals
from .tokens import encode_prompt, show_token, token_texts

IDENTITY_PROMPT = "cat -> cat\n1135 -> 1135\nhello -> hello\n? ->"  # the paper's identity prompt
PLACEHOLDER = "?"
STOP_TEXTS = (";", "\n")  # the identity prompt's separators: the readout ends at the first one
DEFAULT_NEW_TOKENS = 4

shared_texts = prose_windows  # offline English prose both models can read, to fit a residual map on

__all__ = [
    "IDENTITY_PROMPT",
    "PLACEHOLDER",
    "DEFAULT_NEW_TOKENS",
    "ResidualMap",
    "Readout",
    "PatchscopeResult",
    "fit_affine",
    "aligned_positions",
    "paired_states",
    "fit_residual_maps",
    "fit_residual_map",
    "find_placeholder",
    "generate_patched",
    "patchscope",
    "shared_texts",
    "parse_layers",
]


# --- fitting a map between two models' residual spaces -------------------------------------------------


@dataclass
class ResidualMap:
    """An affine map ``x @ weight + bias`` from a source model's layer to a target model's layer.

    ``fit_error`` is the squared error on the fitting data relative to the trivial baseline that
    predicts the mean target state (so the baseline scores 1.0 and a perfect map 0.0).
    """

    weight: torch.Tensor  # [d_source, d_target]
    bias: torch.Tensor  # [d_target]
    source_layer: int
    target_layer: int
    n_fit: int
    fit_error: float

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        return (states.double() @ self.weight.double() + self.bias.double()).to(states.dtype)

    def to_dict(self) -> dict:
        fields = ("source_layer", "target_layer", "n_fit", "fit_error")
        return {**{name: getattr(self, name) for name in fields}, "shape": list(self.weight.shape)}


def fit_affine(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Least-squares ``y ~ x @ W + b`` for ``x [N, d_in]``, ``y [N, d_out]``; returns ``(W, b, relative error)``."""
    n, d_in = x.shape
    if n < d_in + 1:
        raise LensError(
            f"fitting a residual map needs at least {d_in + 1} aligned tokens (the source width + 1); "
            f"got {n}: give more shared text"
        )
    x, y = x.double(), y.double()
    x_mean, y_mean = x.mean(0), y.mean(0)
    solution = torch.linalg.lstsq(x - x_mean, y - y_mean, driver="gelsd").solution  # centring fits the bias
    bias = y_mean - x_mean @ solution
    residual = (x @ solution + bias - y).pow(2).sum()
    baseline = (y - y_mean).pow(2).sum()
    return solution, bias, float(residual / baseline) if baseline > 0 else 0.0


def _prefix_ends(tokenizer, ids: list[int]) -> list[str]:
    """The decoded text up to and including each token (used to pair tokens of two tokenizers)."""
    return [tokenizer.decode(ids[: i + 1]) for i in range(len(ids))]


def aligned_positions(
    source_lm: LoadedModel, target_lm: LoadedModel, text: str
) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """Token ids of ``text`` for both models and the position pairs where both end at the same character."""
    source_ids = encode_prompt(source_lm.tokenizer, text, source_lm.max_context)
    target_ids = encode_prompt(target_lm.tokenizer, text, target_lm.max_context)
    if source_ids.tolist() == target_ids.tolist():
        return source_ids, target_ids, [(i, i) for i in range(len(source_ids))]
    target_end = {prefix: j for j, prefix in enumerate(_prefix_ends(target_lm.tokenizer, target_ids.tolist()))}
    pairs = [
        (i, target_end[prefix])
        for i, prefix in enumerate(_prefix_ends(source_lm.tokenizer, source_ids.tolist()))
        if prefix in target_end
    ]
    return source_ids, target_ids, pairs


@torch.no_grad()
def paired_states(
    source_lm: LoadedModel, target_lm: LoadedModel, texts: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual states of both models at aligned tokens of ``texts``: ``[L_s+1, N, d_s]`` and ``[L_t+1, N, d_t]``."""
    if isinstance(texts, str) or not texts:
        raise LensError("give a list of shared texts to fit the residual map on")
    source_parts, target_parts = [], []
    for text in texts:
        source_ids, target_ids, pairs = aligned_positions(source_lm, target_lm, text)
        if not pairs:
            continue
        source_index = torch.tensor([i for i, _ in pairs])
        target_index = torch.tensor([j for _, j in pairs])
        source_parts.append(capture_residuals(source_lm, source_ids).states[:, 0, source_index].cpu())
        target_parts.append(capture_residuals(target_lm, target_ids).states[:, 0, target_index].cpu())
    if not source_parts:
        raise LensError("the two models' tokenizers share no token boundaries on the given texts")
    return torch.cat(source_parts, dim=1), torch.cat(target_parts, dim=1)


def fit_residual_maps(
    source_lm: LoadedModel, target_lm: LoadedModel, texts: list[str], layer_pairs: dict[int, int]
) -> dict[int, ResidualMap]:
    """One affine map per ``{source_layer: target_layer}`` pair, all fitted on one pass over ``texts``."""
    for source_layer, target_layer in layer_pairs.items():
        check_layer(source_layer, source_lm.n_layers, "source layer")
        check_layer(target_layer, target_lm.n_layers, "target layer")
    source, target = paired_states(source_lm, target_lm, texts)
    maps = {}
    for source_layer, target_layer in layer_pairs.items():
        weight, bias, error = fit_affine(source[source_layer], target[target_layer])
        maps[source_layer] = ResidualMap(
            weight.float(), bias.float(), source_layer, target_layer, source.shape[1], error
        )
    return maps


def fit_residual_map(
    source_lm: LoadedModel, target_lm: LoadedModel, texts: list[str], source_layer: int, target_layer: int
) -> ResidualMap:
    """A least-squares affine map from ``source_lm``'s layer to ``target_lm``'s layer, fitted on ``texts``."""
    return fit_residual_maps(source_lm, target_lm, texts, {source_layer: target_layer})[source_layer]


# --- patching -------------------------------------------------------------------------------------------


@dataclass
class Readout:
    """What the target model said with the source state of ``layer`` patched in at ``target_layer``."""

    layer: int
    target_layer: int
    tokens: list[str]  # the greedy continuation, token by token
    first_prob: float  # probability of the first generated token

    @property
    def text(self) -> str:
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
    source_model: str
    target_model: str
    source_tokens: list[str]
    position: int  # non-negative index into source_tokens
    target_prompt: str
    target_tokens: list[str]
    placeholder_position: int
    readouts: list[Readout]
    maps: dict[int, ResidualMap] = field(default_factory=dict, repr=False)

    @property
    def source_token(self) -> str:
        return self.source_tokens[self.position]

    def readout(self, layer: int) -> Readout:
        for readout in self.readouts:
            if readout.layer == layer:
                return readout
        raise KeyError(layer)

    def answers(self) -> dict[int, str]:
        return {r.layer: r.answer for r in self.readouts}

    def to_dict(self) -> dict:
        return {
            "source_model": self.source_model,
            "target_model": self.target_model,
            "source_tokens": self.source_tokens,
            "position": self.position,
            "source_token": self.source_token,
            "target_prompt": self.target_prompt,
            "target_tokens": self.target_tokens,
            "placeholder_position": self.placeholder_position,
            "readouts": [
                {
                    "layer": r.layer,
                    "target_layer": r.target_layer,
                    "tokens": r.tokens,
                    "text": r.text,
                    "answer": r.answer,
                    "first_prob": r.first_prob,
                    "map": self.maps[r.layer].to_dict() if r.layer in self.maps else None,
                }
                for r in self.readouts
            ],
        }

    def format_table(self) -> str:
        """One line per source layer: the layer it was patched into, the first token's probability, the readout."""
        lines = [
            f"{self.source_model} -> {self.target_model}: {show_token(self.source_token)!r} "
            f"(position {self.position}) read through {self.target_prompt!r}",
            f"{'layer':>5}  {'-> l*':>5}  {'p(first)':>8}  readout",
        ]
        for r in self.readouts:
            lines.append(f"{r.layer:>5}  {r.target_layer:>5}  {r.first_prob:8.3f}  {show_token(r.text)}")
        return "\n".join(lines)


def find_placeholder(tokenizer, ids: torch.Tensor, placeholder: str) -> int:
    """The position of the last token of ``ids`` whose text (spaces stripped) is ``placeholder``."""
    texts = token_texts(tokenizer, ids)
    for position in range(len(texts) - 1, -1, -1):
        if texts[position].strip() == placeholder.strip():
            return position
    raise LensError(
        f"the placeholder {placeholder!r} is not a token of the target prompt (its tokens are {' | '.join(show_token(t) for t in texts)})"
    )


def _patch_hook(rows: torch.Tensor, position: int, vectors: torch.Tensor, active: dict) -> PreHook:
    """A forward pre-hook that overwrites ``hidden_states[rows, position]`` with ``vectors`` while
    ``active["on"]``; later steps pass through (the cache of the first step already carries the patch)."""

    def hook(module, args, kwargs):
        if not active["on"]:
            return None
        hidden = hidden_input(args, kwargs).clone()
        hidden[rows, position] = vectors.to(hidden.dtype)
        return with_hidden_input(args, kwargs, hidden)

    return hook


def _cache_kwarg(model) -> str:
    """transformers 5 renamed ``past_key_values`` to ``cache`` (the old name warns on stderr)."""
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
            hook = _patch_hook(rows, position, vectors[rows.cpu()].to(lm.device), active)
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

    readouts = [
        Readout(layer, dest, token_texts(target_lm.tokenizer, row), prob)
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
        readouts=readouts,
        maps={k: v for k, v in maps.items() if k in layers},
    )

"""Training a tuned lens: cache the residual stream once, fit each translator by least squares, then fine-tune
all of them with Adam on the real objective, KL(final || tuned lens at layer l), the model frozen.

Why three stages. The model is run over the training text only once (states cached in float16, the first
position of every chunk left out: it has no context and an attention-sink residual a hundred times larger
than the rest). The least-squares fit maps each layer's normalized state to the final layer's normalized
state, ``W h/|h| + b/|h| ~ h_L/|h_L|`` (a ridge pulls W towards the identity, i.e. towards the logit lens);
it is cheap (one d x d system per layer) and already gets most of the way. The fine-tune then optimizes the
KL itself; its cost is dominated by the unembedding (d x vocab per token, layer and pass), so it samples a
few hundred tokens per step. The final layer's logits, the KL targets, are recomputed per batch from the
cached last-layer states rather than stored (vocab-wide rows are 85x larger than states).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from ..errors import LensError
from ..interop import as_loaded_model
from ..models import LoadedModel
from ..residual import capture_residuals
from ..unembed import Unembed
from .translator import TunedLens


@dataclass
class TrainConfig:
    """How much text and compute a tuned lens gets. :data:`QUICK` and :data:`FULL` are the presets."""

    max_tokens: int = 32768  # training tokens read through the model (before dropping first positions)
    seq_len: int = 128
    ridge: float = 0.01  # least-squares penalty towards the identity, per token
    steps: int = 200  # Adam steps of the KL fine-tune (0: least squares only)
    batch_tokens: int = 64  # tokens per Adam step
    layers_per_step: int = 8  # layers trained per step, chosen at random (0: all layers every step)
    lr: float = 1e-4
    seed: int = 0
    cache_batch: int = 8  # chunks per model forward while caching states

    def check(self) -> None:
        """A one-line error for a setting below 1."""
        for name in ("max_tokens", "seq_len", "batch_tokens", "cache_batch"):
            if getattr(self, name) < 1:
                raise LensError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.steps < 0:
            raise LensError(f"--steps must be 0 or more, got {self.steps}")
        if self.ridge < 0 or self.lr <= 0:
            raise LensError("the ridge must be >= 0 and the learning rate > 0")


QUICK = TrainConfig(max_tokens=8192, steps=20, batch_tokens=64, layers_per_step=8)
FULL = TrainConfig(max_tokens=32768, steps=200, batch_tokens=64, layers_per_step=8)
PRESETS = {"quick": QUICK, "full": FULL}


@dataclass
class TrainReport:
    """What one training run did, saved next to the weights."""

    config: dict[str, Any]
    n_tokens: int  # training positions used (first positions excluded)
    seconds_cache: float
    seconds_least_squares: float
    seconds_finetune: float
    loss_start: float | None = None  # mean training KL over the first fine-tune steps (nats)
    loss_end: float | None = None  # ... and over the last ones
    losses: list[float] = field(default_factory=list, repr=False)

    @property
    def seconds(self) -> float:
        """The whole training time: caching states, least squares and fine-tuning."""
        return self.seconds_cache + self.seconds_least_squares + self.seconds_finetune

    def to_dict(self) -> dict[str, Any]:
        """The report as saved beside the lens (with ``seconds``, without the loss curve)."""
        d = asdict(self)
        d["seconds"] = self.seconds
        del d["losses"]
        return d


@torch.no_grad()
def cache_states(
    lm: LoadedModel,
    chunks: torch.Tensor,
    dtype: torch.dtype = torch.float16,
    batch: int = 8,
    skip_first: bool = True,
    progress: bool = True,
) -> torch.Tensor:
    """Residual states ``[L+1, N, d]`` (on the CPU, in ``dtype``) for every token of ``chunks [n, T]``,
    positions flattened; ``skip_first`` drops position 0 of each chunk (so ``N = n (T - 1)``)."""
    L, d = lm.adapter.n_layers, lm.adapter.d_model
    start = 1 if skip_first else 0
    n, T = chunks.shape
    out = torch.empty(L + 1, n * (T - start), d, dtype=dtype)
    row = 0
    for first in tqdm(range(0, n, batch), desc="caching states", unit="batch", disable=not progress, leave=False):
        states = capture_residuals(lm, chunks[first : first + batch], states_only=True).states
        stacked = states[:, :, start:].reshape(L + 1, -1, d)
        if dtype == torch.float16 and stacked.abs().max() > 6e4:
            raise LensError("a residual state is too large for float16 storage; cache in float32 instead")
        out[:, row : row + stacked.shape[1]] = stacked.to("cpu", dtype)
        row += stacked.shape[1]
    return out


def _normalized(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x / rms(x)`` and ``1 / rms(x)`` per row, in float32."""
    x = x.float()
    inv = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-12)
    return x * inv, inv


@torch.no_grad()
def least_squares_init(
    lens: TunedLens, states: torch.Tensor, ridge: float = 0.01, chunk_rows: int = 8192, progress: bool = True
) -> None:
    """Set each layer's translator to the ridge least-squares map from ``states[l]`` to ``states[L]``, both
    normalized per token: minimize ``sum |W x/|x| + b/|x| - y/|y||^2 + ridge * N * |W - I|^2`` (rms norms)."""
    L, N, d = states.shape[0] - 1, states.shape[1], states.shape[2]
    if L != lens.n_layers or d != lens.d_model:
        raise LensError(f"states of {L} layers x {d} do not fit a lens of {lens.n_layers} layers x {lens.d_model}")
    eye = torch.eye(d + 1, dtype=torch.float64)
    eye[d, d] = 0.0  # the bias is not pulled anywhere
    prior = torch.zeros(d + 1, d, dtype=torch.float64)
    prior[:d] = torch.eye(d, dtype=torch.float64)
    targets = torch.cat([_normalized(states[L, i : i + chunk_rows])[0] for i in range(0, N, chunk_rows)])
    for layer in tqdm(range(L), desc="least squares", unit="layer", disable=not progress, leave=False):
        gram = torch.zeros(d + 1, d + 1, dtype=torch.float64)
        cross = torch.zeros(d + 1, d, dtype=torch.float64)
        for first in range(0, N, chunk_rows):
            x, inv = _normalized(states[layer, first : first + chunk_rows])
            feats = torch.cat([x, inv], dim=1)
            gram += (feats.T @ feats).double()
            cross += (feats.T @ targets[first : first + chunk_rows]).double()
        theta = torch.linalg.solve(gram + ridge * N * eye, cross + ridge * N * prior)  # [d+1, d]
        lens.weight[layer].copy_(theta[:d].T.to(lens.weight.dtype))
        lens.bias[layer].copy_(theta[d].to(lens.bias.dtype))


def kl_final_to_lens(final_logp: torch.Tensor, lens_logits: torch.Tensor) -> torch.Tensor:
    """KL(final || lens) per row, in nats: ``final_logp`` are log-probabilities, ``lens_logits`` raw logits."""
    lens_logp = torch.log_softmax(lens_logits.float(), dim=-1)
    return (final_logp.exp() * (final_logp - lens_logp)).sum(-1)


def finetune(
    lens: TunedLens, lm: LoadedModel, states: torch.Tensor, config: TrainConfig, progress: bool = True
) -> list[float]:
    """Adam on the mean KL(final || tuned lens), ``config.steps`` steps of ``config.batch_tokens`` cached tokens
    each (on ``lm``'s device), the learning rate decaying linearly to zero. Returns the loss per step."""
    if config.steps == 0:
        return []
    device = lm.device
    L, N = states.shape[0] - 1, states.shape[1]
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(lens.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / config.steps)
    per_step = config.layers_per_step if 0 < config.layers_per_step < L else L
    decode = Unembed.of(lm)
    losses: list[float] = []
    bar = tqdm(range(config.steps), desc="fine-tuning (KL)", unit="step", disable=not progress, leave=False)
    running = None
    for _ in bar:
        idx = torch.randint(N, (config.batch_tokens,), generator=gen)
        layers = torch.randperm(L, generator=gen)[:per_step].tolist()
        with torch.no_grad():
            final_logp = torch.log_softmax(decode(states[L, idx].to(device).float()), dim=-1)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for layer in layers:  # one layer at a time: memory stays at one [batch, vocab] block
            h = states[layer, idx].to(device).float()
            loss = kl_final_to_lens(final_logp, decode(lens.translate(layer, h))).mean() / len(layers)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            total += loss.detach().item()
        opt.step()
        sched.step()
        losses.append(total)
        running = total if running is None else 0.9 * running + 0.1 * total
        bar.set_postfix(kl=f"{running:.3f}")
    return losses


def train_tuned_lens(
    lm: LoadedModel,
    chunks: torch.Tensor,
    config: TrainConfig = FULL,
    progress: bool = True,
) -> tuple[TunedLens, TrainReport]:
    """Train a tuned lens for ``lm`` on token ``chunks [n, T]`` (see :func:`lensref.tuned.data.load_corpus`); ``lm``
    may be a model of another tool (see :mod:`lensref.interop`)."""
    lm = as_loaded_model(lm)
    config.check()
    if chunks.dim() != 2 or chunks.shape[1] < 2:
        raise LensError("training text must be chunks of at least 2 tokens")
    torch.manual_seed(config.seed)
    t0 = time.perf_counter()
    states = cache_states(lm, chunks, batch=config.cache_batch, progress=progress)
    t1 = time.perf_counter()
    lens = TunedLens(lm.n_layers, lm.adapter.d_model)
    if config.ridge is not None and math.isfinite(config.ridge):
        least_squares_init(lens, states, config.ridge, progress=progress)
    t2 = time.perf_counter()
    lens.to(lm.device)
    lens.requires_grad_(True)
    losses = finetune(lens, lm, states, config, progress=progress)
    lens.requires_grad_(False)
    lens.eval()
    t3 = time.perf_counter()
    k = max(1, min(10, len(losses) // 5))
    report = TrainReport(
        config=asdict(config),
        n_tokens=states.shape[1],
        seconds_cache=t1 - t0,
        seconds_least_squares=t2 - t1,
        seconds_finetune=t3 - t2,
        loss_start=sum(losses[:k]) / k if losses else None,
        loss_end=sum(losses[-k:]) / k if losses else None,
        losses=losses,
    )
    return lens, report

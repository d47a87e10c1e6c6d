"""Benchmark of the full lens grid: lensref against a plain forward pass, a naive baseline and a floor.

For each prompt length T, on one model, with 2 torch threads:

- ``forward_s``: one forward pass over T tokens;
- ``lens_s``: lensref's full grid (capture the residual stream, then top-5, entropy, KL to the final layer and a
  target's probability and rank at every layer x position, decoded in blocks);
- ``naive_s``: the "one line of code" approach (``output_hidden_states=True``, full logits ``[L+1, T, V]`` for
  every layer, then the same statistics on the whole stack);
- ``floor_s``: the forward pass plus one float32 matmul ``[(L+1)·T, d] @ [d, V]`` (2·(L+1)·T·d·V FLOPs) into a
  preallocated output: the unembedding work alone, with no statistics.

Run it with ``lensref bench`` (from a checkout: this folder is not part of the installed package) or
``make bench``. The model comes from a ``load`` callable (picklable: the peak-memory processes call it again), so
tests pass ``functools.partial(lensref.tiny_model, "llama")`` and the CLI ``functools.partial(load_model, spec)``.

Times are medians of ``repeats`` runs, methods interleaved within each repeat so that machine noise hits them
alike. Peak memory is measured in a fresh process per method: the process loads the model and runs one forward
pass, resets the kernel's peak-RSS mark (Linux ``/proc/self/clear_refs``), runs the method once and reports
peak RSS (``VmHWM``) minus RSS before the method: the memory the method needs beyond the model and a forward pass.
"""

from __future__ import annotations

import functools
import multiprocessing
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from lensref.corpus import pydoc_text
from lensref.errors import LensError
from lensref.models import LoadedModel, load_model
from lensref.readout import GridStats, read_states
from lensref.residual import capture_residuals
from lensref.unembed import Unembed

DEFAULT_SIZES = (32, 128, 512)
DEFAULT_REPEATS = 5
THREADS = 2
TOP_K = 5
Loader = Callable[[], LoadedModel]  # picklable: a module-level function or a functools.partial of one


HEADER = (
    f"{'T':>5} {'forward s':>10} {'floor s':>9} {'lens s':>9} {'naive s':>9} {'lens/floor':>10} "
    f"{'naive/lens':>10} {'lens MB':>9} {'naive MB':>9}"
)


@dataclass
class BenchRecord:
    """One prompt length: median seconds per method and peak extra memory (MB) of the two grid methods."""

    T: int
    forward_s: float
    lens_s: float
    naive_s: float
    floor_s: float
    lens_peak_mb: float | None
    naive_peak_mb: float | None

    @property
    def lens_over_floor(self) -> float:
        return self.lens_s / self.floor_s

    @property
    def naive_over_lens(self) -> float:
        return self.naive_s / self.lens_s

    def to_dict(self) -> dict:
        return asdict(self)

    def format_row(self) -> str:
        """One line under :data:`HEADER`."""
        mb = lambda v: f"{v:9.0f}" if v is not None else f"{'-':>9}"  # noqa: E731
        return (
            f"{self.T:>5} {self.forward_s:10.3f} {self.floor_s:9.3f} {self.lens_s:9.3f} {self.naive_s:9.3f} "
            f"{self.lens_over_floor:10.2f} {self.naive_over_lens:10.2f} {mb(self.lens_peak_mb)} "
            f"{mb(self.naive_peak_mb)}"
        )


# --- the methods ---------------------------------------------------------------------------------


def default_loader(spec: str | None = None) -> Loader:
    """Loads ``spec`` with :func:`lensref.load_model` (None: the default model)."""
    return functools.partial(load_model, spec)


def bench_tokens(lm: LoadedModel, T: int) -> torch.Tensor:
    """``T`` token ids of English prose (CPython's offline help topics), the same on every machine."""
    if T < 1:
        raise LensError(f"prompt length must be at least 1 token, got {T}")
    if T > lm.max_context:
        raise LensError(f"prompt length {T} is longer than {lm.name}'s context of {lm.max_context} tokens")
    text = pydoc_text()
    ids = lm.tokenizer(text[: 8 * T + 1000], return_tensors="pt")["input_ids"][0][:T]
    if len(ids) < T:  # pragma: no cover - the text is far longer than any context
        raise LensError(f"could not make {T} tokens of benchmark text")
    return ids


@torch.no_grad()
def forward(lm: LoadedModel, ids: torch.Tensor) -> torch.Tensor:
    """A plain forward pass; returns the logits ``[T, V]``."""
    return lm.model(input_ids=ids[None]).logits[0]


def lens_grid(lm: LoadedModel, ids: torch.Tensor, target_id: int) -> GridStats:
    """lensref's full grid: every layer x position, top-5, entropy, KL to the final layer, target p and rank."""
    res = capture_residuals(lm, ids, states_only=True)
    stats, _ = read_states(lm, res.states[:, 0], top_k=TOP_K, target_id=target_id)
    return stats


@torch.no_grad()
def naive_grid(lm: LoadedModel, ids: torch.Tensor, target_id: int) -> GridStats:
    """The same statistics the way a learner first writes them: all hidden states, all logits, then the maths.

    transformers' last hidden state has already been through the final norm, so it is unembedded as it is
    (normalizing it twice is the double-norm bug); the others get the final norm first.
    """
    out = lm.model(input_ids=ids[None], output_hidden_states=True)
    hidden = [h[0] for h in out.hidden_states]  # L+1 states [T, d]
    unembed = Unembed.of(lm)
    logits = torch.stack(
        [unembed(h) for h in hidden[:-1]] + [unembed.unembed_normed(hidden[-1])]
    ).float()  # [L+1, T, V]
    logp = torch.log_softmax(logits, dim=-1)
    p = logp.exp()
    top_p, top_ids = p.topk(TOP_K, dim=-1)
    entropy = -(p * logp).sum(-1)
    kl = (p[-1] * (logp[-1] - logp)).sum(-1)
    target_prob = p[..., target_id]
    target_rank = (logits > logits[..., target_id : target_id + 1]).sum(-1) + 1
    return GridStats(top_ids, top_p, entropy, kl.clamp_min(0.0), target_prob, target_rank)


def floor_matmul(lm: LoadedModel, T: int) -> Callable[[], torch.Tensor]:
    """A float32 ``[(L+1)·T, d] @ [d, V]`` matmul into a preallocated output: 2·(L+1)·T·d·V FLOPs."""
    weight = Unembed.of(lm).weight.detach().float()  # [V, d]
    rows = torch.randn((lm.n_layers + 1) * T, weight.shape[1])
    out = torch.empty(rows.shape[0], weight.shape[0])

    def run() -> torch.Tensor:
        return torch.mm(rows, weight.t(), out=out)

    return run


def target_for(ids: torch.Tensor) -> int:
    """The token the grid follows: the prompt's first token (any fixed id costs the same)."""
    return int(ids[0])


# --- timing ----------------------------------------------------------------------------------------


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_methods(lm: LoadedModel, T: int, repeats: int) -> dict[str, float]:
    """Median seconds of forward, lens, naive and the floor's matmul at length ``T``, interleaved per repeat."""
    ids = bench_tokens(lm, T)
    target_id = target_for(ids)
    methods: dict[str, Callable[[], object]] = {
        "forward": lambda: forward(lm, ids),
        "lens": lambda: lens_grid(lm, ids, target_id),
        "naive": lambda: naive_grid(lm, ids, target_id),
    }
    times: dict[str, list[float]] = {name: [] for name in [*methods, "matmul"]}
    for fn in methods.values():  # warm-up: first-call allocations and kernel selection
        fn()
    matmul = None
    for r in range(repeats):
        names = list(methods)
        names = names[r % len(names) :] + names[: r % len(names)]  # rotate the order between repeats
        for name in names:
            times[name].append(_seconds(methods[name]))
        if matmul is None:  # allocate the floor's output only after the first naive run has freed its memory
            matmul = floor_matmul(lm, T)
            matmul()
        times["matmul"].append(_seconds(matmul))
    del matmul
    return {name: statistics.median(values) for name, values in times.items()}


# --- peak memory in a fresh process -----------------------------------------------------------------


def _max_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _proc_status_mb(field: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` from ``/proc/self/status`` in MB (None off Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_worker(method: str, T: int, load: Loader) -> float:
    """Run in a spawned process: load, one forward pass, then ``method`` once; the rise of the peak RSS in MB.

    Loading the model has its own transient peak, so the peak mark is reset after the warm-up forward pass
    (Linux) and the figure is peak RSS during the method minus RSS before it. Without the reset (other systems)
    it is the rise of ``ru_maxrss`` over the warm-up, a lower bound.
    """
    import gc

    torch.set_num_threads(THREADS)
    lm = load()
    ids = bench_tokens(lm, T)
    target_id = target_for(ids)
    forward(lm, ids)
    gc.collect()
    reset = _reset_peak_rss() and _proc_status_mb("VmHWM") is not None
    before = _proc_status_mb("VmRSS") if reset else _max_rss_mb()
    if method == "lens":
        lens_grid(lm, ids, target_id)
    elif method == "naive":
        naive_grid(lm, ids, target_id)
    else:
        raise LensError(f"unknown method {method!r}")
    after = _proc_status_mb("VmHWM") if reset else _max_rss_mb()
    assert before is not None and after is not None  # read from /proc whenever reset succeeded
    return max(0.0, after - before)


def peak_memory_mb(method: str, T: int, load: Loader) -> float:
    """Peak memory of ``method`` at length ``T`` beyond the model and a forward pass, in a fresh process."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return float(pool.apply(_peak_worker, (method, T, load)))


# --- the whole benchmark ---------------------------------------------------------------------------


def run_bench(
    sizes=DEFAULT_SIZES,
    repeats: int = DEFAULT_REPEATS,
    load: Loader | None = None,
    memory: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[BenchRecord]:
    """Time every method at every length in ``sizes`` and measure peak memory; one record per length.

    ``load`` makes the model (default: the course's default model).
    """
    load = load or default_loader()
    sizes = [int(t) for t in sizes]
    if not sizes:
        raise LensError("give at least one prompt length")
    if repeats < 1:
        raise LensError(f"repeats must be at least 1, got {repeats}")
    torch.set_num_threads(THREADS)
    lm = load()
    for T in sizes:
        bench_tokens(lm, T)  # fail fast on a bad length, before minutes of timing
    records = []
    for T in sizes:
        t = time_methods(lm, T, repeats)
        lens_mb = naive_mb = None
        if memory:
            lens_mb = round(peak_memory_mb("lens", T, load), 1)
            naive_mb = round(peak_memory_mb("naive", T, load), 1)
        record = BenchRecord(
            T=T,
            forward_s=t["forward"],
            lens_s=t["lens"],
            naive_s=t["naive"],
            floor_s=t["forward"] + t["matmul"],
            lens_peak_mb=lens_mb,
            naive_peak_mb=naive_mb,
        )
        records.append(record)
        if log is not None:
            log(record.format_row())
    return records


def format_table(records: list[BenchRecord]) -> str:
    return "\n".join([HEADER] + [r.format_row() for r in records])


def machine() -> str:
    """CPU model, cores and torch threads: what the figures were measured on."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads"

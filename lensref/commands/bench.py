"""``lensref bench``: time the full lens grid against a forward pass, a naive baseline and the matmul floor.

The benchmark lives in the repository's ``benchmarks/`` folder, beside the package and not inside it: this command
finds it in the checkout it was installed from, and says so in one line where there is none (an installed wheel).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import LensError
from ._common import add_output_options, check_options, write_outputs


def register(sub: Any) -> None:
    """Add the ``bench`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser("bench", help="benchmark the full lens grid: lensref vs naive vs floor (from a checkout)")
    add_output_options(p, json="write the records as a JSON list")
    p.add_argument(
        "--sizes", default="32,128,512", help="prompt lengths in tokens, comma-separated (default 32,128,512)"
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs per method; medians are reported (default 5)")
    p.add_argument("--model", default=None, help="model: default SmolLM2-135M-Instruct; a local folder or hub id")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.set_defaults(func=run)


def parse_sizes(text: str) -> list[int]:
    """``--sizes`` (``"64,256"``) as token counts; a bad list is one line."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise LensError(f"--sizes must be comma-separated whole numbers, got {text!r}") from None
    if not sizes or any(t < 1 for t in sizes):
        raise LensError(f"--sizes must list positive token counts, got {text!r}")
    return sizes


def benchmark_module() -> ModuleType:
    """``benchmarks/bench_lens.py`` of the checkout this package runs from."""
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "benchmarks" / "bench_lens.py").is_file():
        raise LensError(
            "lensref bench runs from a checkout of the course repository: benchmarks/ is not in the installed package"
        )
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    return importlib.import_module("benchmarks.bench_lens")


def run(args: argparse.Namespace) -> int:
    """Time the lens grid at each ``--sizes`` length, print the table, write ``--json``."""
    sizes = parse_sizes(args.sizes)
    check_options(args, "repeats")
    bench = benchmark_module()
    print(bench.HEADER, flush=True)
    records = bench.run_bench(
        sizes,
        args.repeats,
        bench.default_loader(args.model),
        memory=not args.no_memory,
        log=lambda line: print(line, flush=True),
    )
    print(f"machine: {bench.machine()}; medians of {args.repeats} runs; peak MB = rise of peak RSS over a forward pass")
    write_outputs(args, [r.to_dict() for r in records])
    return 0

"""``lensref bench``: time the full lens grid against a forward pass, a naive baseline and the matmul floor."""

from __future__ import annotations

from ..errors import LensError
from ._common import add_output_options, check_options, write_outputs


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmark the full lens grid (issue 2): lensref vs naive vs floor")
    add_output_options(p, json="write the records as a JSON list")
    p.add_argument(
        "--sizes", default="32,128,512", help="prompt lengths in tokens, comma-separated (default 32,128,512)"
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs per method; medians are reported (default 5)")
    p.add_argument("--model", default=None, help="model: default SmolLM2-135M-Instruct; a local folder or hub id")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.set_defaults(func=run)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise LensError(f"--sizes must be comma-separated whole numbers, got {text!r}") from None
    if not sizes or any(t < 1 for t in sizes):
        raise LensError(f"--sizes must list positive token counts, got {text!r}")
    return sizes


def run(args) -> int:
    from ..bench import HEADER, machine, run_bench

    sizes = parse_sizes(args.sizes)
    check_options(args, "repeats")
    print(HEADER, flush=True)
    records = run_bench(
        sizes, args.repeats, args.model, memory=not args.no_memory, log=lambda line: print(line, flush=True)
    )
    print(f"machine: {machine()}; medians of {args.repeats} runs; peak MB = rise of peak RSS over a forward pass")
    write_outputs(args, [r.to_dict() for r in records])
    return 0

"""``lensref tuned train|eval|import|export``: fit a tuned lens, compare it with the logit lens, and carry it to and
from the tuned-lens package's format."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from ..errors import LensError
from ._common import add_model_options, add_output_options, check_options, write_outputs

if TYPE_CHECKING:
    from ..tuned.evaluate import LensComparison


def register(sub: Any) -> None:
    """Add the ``tuned`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser("tuned", help="train a tuned lens, or compare it with the logit lens on held-out text")
    tsub = p.add_subparsers(dest="tuned_command", metavar="{train,eval,import,export}")

    t = tsub.add_parser("train", help="train a tuned lens on text the model wrote (and your text) and save it")
    add_model_options(t)
    t.add_argument("--out", default=None, metavar="DIR", help="where to save it (default: <cache>/tuned/<model>)")
    t.add_argument(
        "--text", action="append", default=[], metavar="FILE", help="also train on this text file (repeatable)"
    )
    t.add_argument(
        "--preset",
        default="full",
        choices=["quick", "full"],
        help="full (default): 32k tokens, least squares + 200 KL fine-tune steps; quick: 8k tokens, 20 steps",
    )
    t.add_argument("--max-tokens", type=int, default=None, metavar="N", help="training tokens (overrides the preset)")
    t.add_argument("--steps", type=int, default=None, metavar="N", help="KL fine-tune steps, 0 = least squares only")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=run_train)

    e = tsub.add_parser("eval", help="per-layer held-out KL and cross-entropy: logit lens vs tuned lens")
    add_model_options(e)
    e.add_argument("--lens", default=None, metavar="DIR", help="the tuned lens (default: <cache>/tuned/<model>)")
    e.add_argument("--max-tokens", type=int, default=1024, metavar="N", help="held-out tokens to read (default 1024)")
    add_output_options(e, json="write the table as JSON", plot="write KL and cross-entropy per layer as PNG")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=run_eval)

    i = tsub.add_parser("import", help="read a lens saved by the tuned-lens package (config.json + params.pt)")
    i.add_argument("dir", metavar="DIR", help="the tuned-lens package's lens folder")
    add_model_options(i)
    i.add_argument("--out", default=None, metavar="DIR", help="where to save it (default: <cache>/tuned/<model>)")
    i.set_defaults(func=run_import)

    x = tsub.add_parser("export", help="write a lensref tuned lens in another tool's format")
    add_model_options(x)
    x.add_argument("--lens", default=None, metavar="DIR", help="the tuned lens (default: <cache>/tuned/<model>)")
    x.add_argument(
        "--format",
        default="tuned-lens",
        choices=["tuned-lens"],
        help="tuned-lens (default): the format the tuned-lens package saves and loads",
    )
    x.add_argument("--out", required=True, metavar="DIR", help="the folder to write (config.json + params.pt)")
    x.set_defaults(func=run_export)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_train(args: argparse.Namespace) -> int:
    """``lensref tuned train``: fit a tuned lens on the model (a preset, or ``--text`` files) and save it."""
    from ..models import load_model
    from ..tuned import PRESETS, train_and_save
    from ..tuned.data import read_text_files

    config = dataclasses.replace(PRESETS[args.preset])
    if args.max_tokens is not None:
        if args.max_tokens < config.seq_len:
            raise LensError(f"--max-tokens must be at least one chunk ({config.seq_len} tokens), got {args.max_tokens}")
        config.max_tokens = args.max_tokens
    if args.steps is not None:
        config.steps = args.steps
    config.check()
    texts = read_text_files(args.text)
    lm = load_model(args.model, device=args.device)
    lens, report, folder = train_and_save(lm, config, args.out, texts, progress=not args.quiet)
    loss = "" if report.loss_end is None else f"; fine-tune KL {report.loss_start:.3f} -> {report.loss_end:.3f}"
    print(
        f"trained a tuned lens for {lm.name} on {report.n_tokens} tokens in {report.seconds:.0f} s "
        f"(states {report.seconds_cache:.0f} s, least squares {report.seconds_least_squares:.0f} s, "
        f"fine-tune {report.seconds_finetune:.0f} s{loss})"
    )
    print(f"saved to {folder}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """``lensref tuned eval``: held-out KL of the tuned and the logit lens per layer; ``--json`` and ``--plot``."""
    from ..models import load_model
    from ..tuned import compare_lenses, default_lens_dir, load_corpus, load_tuned_lens

    if args.max_tokens < 128:
        raise LensError(f"--max-tokens must be at least one chunk (128 tokens), got {args.max_tokens}")
    check_options(args)
    lm = load_model(args.model, device=args.device)
    folder = args.lens or default_lens_dir(lm.name)
    lens = load_tuned_lens(folder, lm)
    corpus = load_corpus(lm.tokenizer, max_train_tokens=128, max_heldout_tokens=args.max_tokens)
    result = compare_lenses(lm, corpus.heldout, lens, progress=not args.quiet)
    print(result.format_table())
    worse = result.layers_where_tuned_not_better()
    print(
        "tuned lens KL is lower at every layer 0.." + str(result.n_layers - 1)
        if not worse
        else f"tuned lens KL is NOT lower at layers {worse}",
        file=sys.stdout,
    )
    write_outputs(args, {"lens": str(folder), **result.to_dict()}, lambda path: _plot(result, path))
    return 0


def _plot(result: LensComparison, path: str) -> None:
    from ..plotting.tuned import plot_tuned_comparison

    plot_tuned_comparison(result, path=path)


def run_import(args: argparse.Namespace) -> int:
    """``lensref tuned import``: read a tuned-lens package lens and save it in lensref's format."""
    from ..models import load_model
    from ..tuned import default_lens_dir, save_tuned_lens
    from ..tuned.foreign import read_package_lens

    lm = load_model(args.model, device=args.device)
    lens = read_package_lens(args.dir, lm)
    folder = save_tuned_lens(lens, lm, args.out or default_lens_dir(lm.name), extra={"source_format": "tuned-lens"})
    print(f"imported a tuned-lens package lens for {lm.name} ({lens.n_layers} layers); saved to {folder}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """``lensref tuned export``: write a lensref tuned lens in the tuned-lens package's format."""
    from ..models import load_model
    from ..tuned import default_lens_dir, load_tuned_lens
    from ..tuned.foreign import write_package_lens

    lm = load_model(args.model, device=args.device)
    lens = load_tuned_lens(args.lens or default_lens_dir(lm.name), lm)
    folder = write_package_lens(lens, lm, args.out)
    print(f"exported the tuned lens for {lm.name} in the {args.format} format to {folder}")
    return 0

"""Options and output helpers shared by several subcommands."""
from __future__ import annotations

from ..files import write_atomically, write_json

__all__ = ["add_model_options", "add_pair_options", "write_atomically", "write_json"]  # the writers live in lensref.files


def add_model_options(parser) -> None:
    parser.add_argument("--model", default=None, help="model: default SmolLM2-135M-Instruct; a local folder or hub id")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")


def add_pair_options(parser) -> None:
    """``--target`` and ``--distractor``: the two single tokens a logit difference compares."""
    parser.add_argument("--target", required=True, help="one token, e.g. ' Paris' (leading space matters)")
    parser.add_argument("--distractor", required=True, help="one token to compare with, e.g. ' London'")

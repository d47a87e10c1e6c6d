"""The tuned lens (Belrose et al., 2023): one learned affine translator per layer before the final norm.

``train_tuned_lens`` fits it (cached states, least squares, a short Adam fine-tune on KL); ``compare_lenses``
measures it against the logit lens on held-out text; ``save_tuned_lens`` / ``load_tuned_lens`` keep it on disk;
``get_or_train_tuned_lens`` does whichever is needed, using the cache folder ``<cache>/tuned/<model>``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..models import LoadedModel
from .data import DEFAULT_SOURCE, DESCRIPTIONS, SOURCES, Corpus, load_corpus, read_text_files
from .evaluate import LensComparison, compare_lenses
from .io import default_lens_dir, load_tuned_lens, read_config, save_tuned_lens
from .train import FULL, PRESETS, QUICK, TrainConfig, TrainReport, train_tuned_lens
from .translator import TunedLens

__all__ = [
    "TunedLens",
    "TrainConfig",
    "TrainReport",
    "QUICK",
    "FULL",
    "PRESETS",
    "train_tuned_lens",
    "Corpus",
    "load_corpus",
    "read_text_files",
    "LensComparison",
    "compare_lenses",
    "save_tuned_lens",
    "load_tuned_lens",
    "read_config",
    "default_lens_dir",
    "train_and_save",
    "get_or_train_tuned_lens",
    "SOURCES",
    "DEFAULT_SOURCE",
    "DESCRIPTIONS",
]


def train_and_save(
    lm: LoadedModel,
    config: TrainConfig | str = "full",
    folder: str | os.PathLike[str] | None = None,
    extra_texts: list[str] | None = None,
    progress: bool = True,
    source: str = DEFAULT_SOURCE,
) -> tuple[TunedLens, TrainReport, Path]:
    """Train on the training topics of the built-in corpus ``source`` (plus ``extra_texts``) and save into
    ``folder`` (default: the cache). The config records the corpus, so a cached lens trained on another
    corpus is not mistaken for this one."""
    preset = config if isinstance(config, str) else "custom"
    config = PRESETS[config] if isinstance(config, str) else config
    corpus = load_corpus(
        lm.tokenizer, extra_texts, max_train_tokens=config.max_tokens, seq_len=config.seq_len, source=source
    )
    lens, report = train_tuned_lens(lm, corpus.train, config, progress=progress)
    folder = Path(folder) if folder is not None else default_lens_dir(lm.name)
    extra = {
        "preset": preset,
        "corpus": source,
        "corpus_description": DESCRIPTIONS[source],
        "train": report.to_dict(),
        "n_extra_text_files": len(extra_texts or []),
        "heldout_topics": corpus.heldout_topics,
    }
    save_tuned_lens(lens, lm, folder, extra)
    return lens, report, folder


def get_or_train_tuned_lens(
    lm: LoadedModel,
    config: TrainConfig | str = "quick",
    folder: str | os.PathLike[str] | None = None,
    progress: bool = False,
    source: str = DEFAULT_SOURCE,
) -> TunedLens:
    """The tuned lens saved in ``folder`` (default ``<cache>/tuned/<model>``) if there is one for ``lm`` trained
    on the corpus ``source``; else train one with ``config`` (default: the quick preset, a minute or two on a
    CPU), save it there and return it. A lens already there is used whichever preset made it (see
    ``read_config(folder)["preset"]``); one trained on another corpus (a lens from before the corpus was
    recorded was trained on ``pydoc``) is replaced."""
    folder = Path(folder) if folder is not None else default_lens_dir(lm.name)
    if (folder / "config.json").is_file() and read_config(folder).get("corpus", "pydoc") == source:
        return load_tuned_lens(folder, lm)
    lens, _, _ = train_and_save(lm, config, folder, progress=progress, source=source)
    return lens

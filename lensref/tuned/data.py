"""Text to train and evaluate a tuned lens on, available offline.

Two built-in corpora, each a set of named "topics":

- ``model`` (the default): text the default model itself wrote from about a hundred varied openings (places,
  people, history, science, everyday life, stories, counting), committed as ``model_text.json`` and made by
  :mod:`lensref.tuned.make_corpus`. It is plain English of the kind the lesson's prompts are, so the lens
  learns to translate the states such text produces. A topic is one opening with its continuations.
- ``pydoc``: the English prose CPython ships in ``pydoc_data.topics`` (the language reference's help topics,
  about 465 kB): documentation about programming, so a lens trained on it reads "Python" and "function"
  into unrelated prompts.

Topics are split deterministically into a training set and a held-out set: sorted by a SHA-256 hash of their
name, held-out topics are taken from the front of that order until they hold about ``heldout_fraction`` of the
characters. Held-out text is then never seen in training (for ``model``: whole openings the lens never saw).
A user's own text files can be added to the training set.

Token ids are joined into one stream per split (topics separated by a blank line) and cut into chunks of
``seq_len`` tokens; chunks are shuffled with a fixed seed so a small ``max_tokens`` still samples many topics.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..corpus import pydoc_topics
from ..errors import LensError

SEPARATOR = "\n\n"
DEFAULT_SEQ_LEN = 128
DEFAULT_HELDOUT_FRACTION = 0.1
MODEL_TEXT = Path(__file__).with_name("model_text.json")
SOURCES = ("model", "pydoc")
DEFAULT_SOURCE = "model"
DESCRIPTIONS = {
    "model": "text SmolLM2-135M-Instruct wrote from varied openings (lensref/tuned/model_text.json)",
    "pydoc": "CPython's documentation (pydoc_data.topics)",
}


def model_texts(path: str | Path = MODEL_TEXT) -> dict[str, str]:
    """``{opening: its continuations joined by blank lines}`` from the generated corpus file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        texts = data["texts"]
    except FileNotFoundError:
        raise LensError(
            f"the generated corpus {path} is missing (make it with: python -m lensref.tuned.make_corpus)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise LensError(f"{path} is not a generated corpus (a JSON object with 'texts')") from None
    return {opening: SEPARATOR.join(samples) for opening, samples in texts.items() if samples}


def corpus_topics(source: str = DEFAULT_SOURCE) -> dict[str, str]:
    """The named topics of a built-in corpus: ``model`` (generated text) or ``pydoc`` (CPython's docs)."""
    if source == "model":
        return model_texts()
    if source == "pydoc":
        return pydoc_topics()
    raise LensError(f"unknown corpus {source!r}: use one of {', '.join(SOURCES)}")


def _topic_hash(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def split_topics(
    topics: dict[str, str], heldout_fraction: float = DEFAULT_HELDOUT_FRACTION
) -> tuple[list[str], list[str]]:
    """``(train names, held-out names)``, both sorted; deterministic (hash order), about ``heldout_fraction`` of the text held out."""
    if not 0.0 < heldout_fraction < 1.0:
        raise LensError(f"the held-out fraction must be between 0 and 1, got {heldout_fraction}")
    total = sum(len(t) for t in topics.values())
    heldout: list[str] = []
    held = 0
    for name in sorted(topics, key=_topic_hash):
        if held >= heldout_fraction * total:
            break
        heldout.append(name)
        held += len(topics[name])
    train = sorted(set(topics) - set(heldout))
    return train, sorted(heldout)


def read_text_files(paths: Iterable[str | Path] | None) -> list[str]:
    """The contents of each file, or a one-line error naming the first unreadable or empty one."""
    texts = []
    for path in paths or []:
        p = Path(path)
        if not p.is_file():
            raise LensError(f"text file {str(path)!r} does not exist")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise LensError(f"text file {str(path)!r} is not UTF-8 text") from None
        if not text.strip():
            raise LensError(f"text file {str(path)!r} is empty")
        texts.append(text)
    return texts


def tokenize_stream(tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """All ``texts`` tokenized (no special tokens) and joined by the token ids of a blank line: ``[N]`` long."""
    sep = tokenizer.encode(SEPARATOR, add_special_tokens=False)
    ids: list[int] = []
    for i, text in enumerate(texts):
        if i:
            ids.extend(sep)
        ids.extend(tokenizer.encode(text, add_special_tokens=False))
    return torch.tensor(ids, dtype=torch.long)


def chunk(
    ids: torch.Tensor, seq_len: int = DEFAULT_SEQ_LEN, max_tokens: int | None = None, seed: int = 0
) -> torch.Tensor:
    """Cut a token stream into shuffled chunks ``[n, seq_len]`` (the short tail is dropped), at most ``max_tokens`` in all."""
    if seq_len < 2:
        raise LensError(f"the sequence length must be at least 2 tokens, got {seq_len}")
    n = len(ids) // seq_len
    if n == 0:
        raise LensError(f"the text is {len(ids)} tokens long, shorter than one chunk of {seq_len} tokens")
    chunks = ids[: n * seq_len].reshape(n, seq_len)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    chunks = chunks[order]
    if max_tokens is not None:
        if max_tokens < seq_len:
            raise LensError(f"--max-tokens must be at least one chunk ({seq_len} tokens), got {max_tokens}")
        chunks = chunks[: max_tokens // seq_len]
    return chunks


@dataclass
class Corpus:
    """Token chunks ``[n, seq_len]`` for training and for held-out evaluation, and where they came from."""

    train: torch.Tensor
    heldout: torch.Tensor
    train_topics: list[str]
    heldout_topics: list[str]
    n_extra_files: int = 0
    source: str = DEFAULT_SOURCE

    def describe(self) -> str:
        """One line: how many training and held-out tokens, from which topics and files."""
        return (
            f"{self.train.numel()} training tokens ({len(self.train_topics)} topics of {DESCRIPTIONS[self.source]}"
            + (f" + {self.n_extra_files} text file(s)" if self.n_extra_files else "")
            + f"), {self.heldout.numel()} held-out tokens ({len(self.heldout_topics)} other topics)"
        )


def load_corpus(
    tokenizer: Any,
    extra_texts: list[str] | None = None,
    max_train_tokens: int | None = None,
    max_heldout_tokens: int | None = None,
    seq_len: int = DEFAULT_SEQ_LEN,
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
    seed: int = 0,
    source: str = DEFAULT_SOURCE,
) -> Corpus:
    """Train/held-out chunks from the built-in corpus ``source`` (split by topic), plus ``extra_texts`` in training."""
    topics = corpus_topics(source)
    train_names, heldout_names = split_topics(topics, heldout_fraction)
    train_texts = [topics[n] for n in train_names] + list(extra_texts or [])
    train = chunk(tokenize_stream(tokenizer, train_texts), seq_len, max_train_tokens, seed)
    heldout = chunk(tokenize_stream(tokenizer, [topics[n] for n in heldout_names]), seq_len, max_heldout_tokens, seed)
    return Corpus(train, heldout, train_names, heldout_names, len(extra_texts or []), source)

"""The offline text every part of lensref reads: the English prose CPython ships in ``pydoc_data.topics``.

About 465 kB of the language reference's help topics, present wherever Python is, so training a tuned lens,
fitting a map between two models and benchmarking need no download. One reader here serves all three.
"""

from __future__ import annotations

from .errors import LensError

TOPIC_SEPARATOR = "\n\n"


def pydoc_topics() -> dict[str, str]:
    """``{topic name: prose}`` from CPython's ``pydoc_data.topics`` (topics with no text left out)."""
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # pragma: no cover - part of the standard library
        raise LensError("this Python has no pydoc_data.topics; pass your own text with --text FILE") from exc
    return {name: text for name, text in topics.items() if text.strip()}


def pydoc_text() -> str:
    """Every topic, sorted by name, joined by a blank line: one long stretch of prose."""
    topics = pydoc_topics()
    return TOPIC_SEPARATOR.join(topics[name] for name in sorted(topics))


def prose_windows(n_texts: int = 48, chars: int = 400) -> list[str]:
    """Up to ``n_texts`` consecutive ``chars``-long windows of prose (white space folded), topic by topic in name
    order: the same short texts on every machine."""
    topics = pydoc_topics()
    texts = []
    for name in sorted(topics):
        body = " ".join(topics[name].split())
        for start in range(0, len(body) - chars + 1, chars):
            texts.append(body[start : start + chars])
            if len(texts) == n_texts:
                return texts
    return texts

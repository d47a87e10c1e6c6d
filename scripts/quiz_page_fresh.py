"""Keep the built quiz page in step with the code and the bank that generate it.

``book/quiz.md`` shows the quiz through one code cell (``display_quiz()``) whose output the Jupyter cache
keeps; the cell's text never changes when ``lensref/course/quiz/web.py`` or the bank does, so an incremental
build would keep serving the old quiz. This Sphinx extension (``_config.yml``: ``local_extensions:
{quiz_page_fresh: scripts}``) fingerprints those files; when the fingerprint changed since the last
successful build it drops the page's cached execution and has Sphinx read the page again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

DOC = "book/quiz"
WATCHED = ("lensref/course/quiz/web.py", "lensref/course/quiz/bank.py", "quizzes/logit-lens.yaml")
STAMP = ".quiz-page-fingerprint"  # next to the build's output folder (_build/), like the execution cache


def fingerprint(src: Path) -> str:
    digest = hashlib.sha256()
    for name in WATCHED:
        path = src / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    return digest.hexdigest()


def _stamp(app) -> Path:
    return Path(app.outdir).parent / STAMP


def _stale(app) -> bool:
    stamp = _stamp(app)
    return not stamp.exists() or stamp.read_text().strip() != fingerprint(Path(app.srcdir))


def _drop_cached_execution(app, src: Path) -> None:
    # where myst-nb keeps it: the configured path, else .jupyter_cache next to the output folder
    cache_path = getattr(app.config, "nb_execution_cache_path", "") or Path(app.outdir).parent / ".jupyter_cache"
    if not Path(cache_path).exists():
        return
    from jupyter_cache import get_cache

    cache = get_cache(cache_path)
    page = (src / f"{DOC}.md").resolve()
    for record in cache.list_cache_records():
        if record.uri and Path(record.uri).resolve() == page:
            cache.remove_cache(record.pk)


def _outdated(app, env, added, changed, removed):
    if DOC not in env.found_docs or not _stale(app):
        return []
    _drop_cached_execution(app, Path(app.srcdir))  # also for a fresh environment: the cache outlives it
    return [] if DOC in added or DOC in changed else [DOC]


def _finished(app, exception) -> None:
    if exception is None:
        _stamp(app).write_text(fingerprint(Path(app.srcdir)) + "\n")


def setup(app):
    app.connect("env-get-outdated", _outdated)
    app.connect("build-finished", _finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

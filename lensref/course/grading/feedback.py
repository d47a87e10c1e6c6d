"""Feedback pages an instructor (and the learner) can open safely: nothing a submission printed runs in a browser.

Every piece of text from the run is escaped; markdown is rendered with raw HTML off and only http(s)/mailto/
relative links kept; images are embedded only when they are real PNG or JPEG data; any other output type is shown
as its plain-text form. A Content-Security-Policy that allows no script at all backs this up. Test cells show their
visible check (never the hidden part) and the grader's verdict lines.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

from .. import cells
from .judge import CellVerdict

if TYPE_CHECKING:
    from nbformat import NotebookNode

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'"
STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;background:#fff}
pre{white-space:pre-wrap;word-break:break-word;background:#f5f5f5;padding:.5rem;border-radius:4px;margin:.25rem 0}
.out pre{background:#fff;border-left:3px solid #ccc}.err pre{border-left-color:#b00020;color:#7a0014}
.verdict{border:2px solid #ccc;border-radius:6px;padding:.5rem;margin:.5rem 0}.pass{border-color:#1b7a35}
.fail{border-color:#b00020}.score{font-weight:bold}table{border-collapse:collapse}td,th{padding:.2rem .6rem;
border:1px solid #ccc}.note{background:#fff7d6;padding:.5rem;border-radius:4px}
@media (prefers-color-scheme: dark){body{background:#121212;color:#e8e8e8}pre{background:#1e1e1e}
.out pre{background:#121212}.err pre{color:#ff9aa8}.note{background:#3a3000}}
"""
SAFE_SCHEMES = ("http://", "https://", "mailto:", "#")


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False})

    def safe_link(url: str) -> bool:
        lowered = url.strip().lower()
        return lowered.startswith(SAFE_SCHEMES) or (":" not in lowered.split("/")[0] and not lowered.startswith("//"))

    md.validateLink = safe_link  # type: ignore[method-assign]
    page: str = md.render(text)  # the HTML renderer's output (markdown-it types render() as Any)
    return page


def _image(data: str, mime: str) -> str | None:
    try:
        raw = base64.b64decode(data.replace("\n", ""), validate=True)
    except (ValueError, TypeError):
        return None
    if (mime == "image/png" and raw.startswith(b"\x89PNG\r\n\x1a\n")) or (
        mime == "image/jpeg" and raw[:3] == b"\xff\xd8\xff"
    ):
        return f'<img alt="a figure the notebook drew" src="data:{mime};base64,{base64.b64encode(raw).decode()}">'
    return None


def _outputs(outputs: list[NotebookNode]) -> str:
    parts = []
    for out in outputs or []:
        kind = out.get("output_type")
        if kind == "stream":
            cls = "out err" if out.get("name") == "stderr" else "out"
            parts.append(f'<div class="{cls}"><pre>{html.escape(str(out.get("text", "")))}</pre></div>')
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {}) or {}
            shown = None
            for mime in ("image/png", "image/jpeg"):
                if isinstance(data.get(mime), str):
                    shown = _image(data[mime], mime)
                    if shown:
                        break
            if shown is None:
                text = data.get("text/plain", "")
                text = "".join(text) if isinstance(text, list) else str(text)
                shown = f"<pre>{html.escape(text)}</pre>"
            parts.append(f'<div class="out">{shown}</div>')
        elif kind == "error":
            parts.append(
                f'<div class="out err"><pre>{html.escape(str(out.get("ename", "")))}: '
                f"{html.escape(str(out.get('evalue', '')))}</pre></div>"
            )
    return "".join(parts)


def visible_part(source: str) -> str:
    """A test cell's source without its hidden tests."""
    lines, hidden = [], False
    for line in source.splitlines():
        if "### BEGIN HIDDEN TESTS" in line:
            hidden = True
        elif "### END HIDDEN TESTS" in line:
            hidden = False
        elif not hidden:
            lines.append(line)
    return "\n".join(lines).strip("\n")


def render(
    title: str, executed: NotebookNode, source: NotebookNode, verdicts: dict[str, CellVerdict], notes: list[str]
) -> str:
    """One notebook's feedback page. ``executed``: the run (untrusted outputs); ``source``: the instructor's notebook."""
    source_cells = cells.by_grade_id(source)
    score = sum(v.points for v in verdicts.values())
    max_score = sum(v.max_points for v in verdicts.values())
    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="score">Score: {score:.1f} / {max_score:.1f}</p>']
    if notes:
        body.append('<div class="note"><ul>' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul></div>")
    body.append(
        "<table><tr><th>exercise</th><th>points</th></tr>"
        + "".join(
            f"<tr><td>{html.escape(v.grade_id)}</td><td>{v.points:g} / {v.max_points:g}</td></tr>"
            for v in verdicts.values()
        )
        + "</table>"
    )
    for cell in executed.cells:
        gid = cells.grade_id(cell)
        if gid in verdicts:
            verdict = verdicts[gid]
            visible = visible_part(source_cells[gid].source) if gid in source_cells else ""
            cls = "pass" if verdict.passed else "fail"
            body.append(
                f'<div class="verdict {cls}"><pre>{html.escape(visible)}</pre>'
                f'<p class="score">{verdict.points:g} / {verdict.max_points:g} points</p>'
                + "".join(f"<pre>{html.escape(line)}</pre>" for line in verdict.lines)
                + "</div>"
            )
        elif cell.cell_type == "markdown":
            body.append(f'<div class="md">{_markdown(str(cell.source))}</div>')
        elif cell.cell_type == "code":
            body.append(f"<pre>{html.escape(str(cell.source))}</pre>{_outputs(cell.get('outputs', []))}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write(path: Path, text: str) -> None:
    """Write a page's ``text`` to ``path`` atomically, making its folder if need be."""
    from ...files import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)

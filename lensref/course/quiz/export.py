"""Exports of the bank for learning-management systems: GIFT and Moodle XML (both import into Moodle, with
feedback on every option), an IMS QTI 1.2 package (a zip; Canvas Classic Quizzes, Brightspace and others import
it: :mod:`lensref.course.lms.qti`) and a plain JSON form for anything else.

Explanations link to the book page that teaches them. An LMS does not host the book, so the link is the
page's title unless ``base_url`` (where the built book is published) is given.
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from typing import Any

from .bank import Bank, Option

FORMATS = ("gift", "moodle-xml", "json", "qti")
PACKAGES = ("qti",)  # formats that are a zip (bytes), written by :func:`render_package`
_GIFT_SPECIAL = "\\~=#{}:"


def render(bank: Bank, fmt: str, base_url: str = "") -> str:
    """The bank in a text format: ``gift``, ``moodle-xml`` or ``json``."""
    if fmt == "gift":
        return to_gift(bank, base_url)
    if fmt == "moodle-xml":
        return to_moodle_xml(bank, base_url)
    if fmt == "json":
        return to_json(bank, base_url)
    raise ValueError(f"unknown text format {fmt!r}")


def render_package(bank: Bank, fmt: str, base_url: str = "") -> bytes:
    """The bank as a package (a zip's bytes): ``qti``."""
    if fmt == "qti":
        from ..lms.qti import qti_package

        return qti_package(bank, base_url).data
    raise ValueError(f"unknown package format {fmt!r}")


def gift_escape(text: str) -> str:
    """``text`` with GIFT's special characters backslash-escaped."""
    return "".join("\\" + c if c in _GIFT_SPECIAL else c for c in text)


def _see_also(option: Option, base_url: str) -> str:
    if base_url:
        return f"Lesson: {option.section_title}, {option.section_url(base_url)}"
    return f"Lesson: {option.section_title}"


def plain_feedback(option: Option, base_url: str = "") -> str:
    """An option's feedback as plain text: the verdict, its explanation, and the lesson that teaches it."""
    verdict = "Correct." if option.correct else "Not quite."
    return f"{verdict} {option.explanation} ({_see_also(option, base_url)})"


def to_gift(bank: Bank, base_url: str = "") -> str:
    """The bank in Moodle's GIFT format, in a category named after it, with feedback on every option."""
    lines = [
        f"// {bank.title}",
        f"// Generated from the quiz bank {bank.id!r} by `lensref quiz export`.",
        f"$CATEGORY: $course$/top/{bank.title}",
        "",
    ]
    for q in bank.questions:
        lines.append(f"// question {q.number}: {q.id}")
        lines.append(f"::{gift_escape(q.id)}::{gift_escape(q.text)} {{")
        for o in q.options:
            mark = "=" if o.correct else "~"
            lines.append(f"\t{mark}{gift_escape(o.text)}#{gift_escape(plain_feedback(o, base_url))}")
        lines.append("}")
        lines.append("")
    return "\n".join(lines)


def html_feedback(option: Option, base_url: str = "") -> str:
    """An option's feedback as HTML: the verdict, its explanation, and the lesson (a link with ``base_url``)."""
    verdict = "Correct." if option.correct else "Not quite."
    text = f"<p>{verdict} {html.escape(option.explanation)}</p>"
    title = html.escape(option.section_title)
    if base_url:
        url = html.escape(option.section_url(base_url), quote=True)
        return text + f'<p>Lesson: <a href="{url}">{title}</a></p>'
    return text + f"<p>Lesson: {title}</p>"


def to_moodle_xml(bank: Bank, base_url: str = "") -> str:
    """The bank as Moodle XML, in a category named after it, with feedback on every option."""
    quiz = ET.Element("quiz")
    cat = ET.SubElement(quiz, "question", type="category")
    _text(ET.SubElement(cat, "category"), f"$course$/top/{bank.title}")
    for q in bank.questions:
        el = ET.SubElement(quiz, "question", type="multichoice")
        _text(ET.SubElement(el, "name"), f"{q.number:02d} {q.id}")
        _text(ET.SubElement(el, "questiontext", format="html"), f"<p>{html.escape(q.text)}</p>")
        _text(ET.SubElement(el, "generalfeedback", format="html"), "")
        ET.SubElement(el, "defaultgrade").text = "1"
        ET.SubElement(el, "penalty").text = "0"
        ET.SubElement(el, "hidden").text = "0"
        ET.SubElement(el, "idnumber").text = q.id
        ET.SubElement(el, "single").text = "true"
        ET.SubElement(el, "shuffleanswers").text = "true"
        ET.SubElement(el, "answernumbering").text = "abc"
        for o in q.options:
            a = ET.SubElement(el, "answer", fraction="100" if o.correct else "0", format="html")
            _text(a, html.escape(o.text))
            _text(ET.SubElement(a, "feedback", format="html"), html_feedback(o, base_url))
    ET.indent(quiz, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="unicode") + "\n"


def _text(parent: ET.Element, value: str) -> None:
    ET.SubElement(parent, "text").text = value


def to_dict(bank: Bank, base_url: str = "") -> dict[str, Any]:
    """The bank with everything resolved: letters, the correct flag, each option's section and link."""
    return {
        "id": bank.id,
        "title": bank.title,
        "questions": [
            {
                "number": q.number,
                "id": q.id,
                "question": q.text,
                "answer": q.answer.letter,
                "key_terms": list(q.key_terms),
                "options": [
                    {
                        "letter": o.letter,
                        "text": o.text,
                        "correct": o.correct,
                        "explanation": o.explanation,
                        "section": o.section,
                        "url": o.section_url(base_url),
                    }
                    for o in q.options
                ],
            }
            for q in bank.questions
        ],
    }


def to_json(bank: Bank, base_url: str = "") -> str:
    """The bank's plain JSON form (:func:`to_dict`), for anything else."""
    return json.dumps(to_dict(bank, base_url), indent=1, ensure_ascii=False) + "\n"

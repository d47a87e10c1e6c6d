"""The quiz bank as an IMS QTI 1.2 package: the zip that Canvas Classic Quizzes, Brightspace and other LMSs
import quizzes from.

The package holds ``imsmanifest.xml`` (IMS Content Packaging: one resource of type ``imsqti_xmlv1p2``) and one
assessment file, ``<ident>/<ident>.xml``: a ``questestinterop`` in the namespace
``http://www.imsglobal.org/xsd/ims_qtiasiv1p2``, holding one ``assessment`` with one ``section`` and one ``item``
per question. Each item is a single-answer multiple choice: a ``response_lid`` (``rcardinality="Single"``) with one
``response_label`` per option, in the bank's order; its ``resprocessing`` declares ``SCORE`` (0-100), shows each
option's own feedback when it is chosen (a ``respcondition`` with ``continue="Yes"`` and a ``displayfeedback``
per option) and sets ``SCORE`` to 100 for the right one; one ``itemfeedback`` per option holds its explanation
(the same HTML as the Moodle XML export, with the lesson link when ``base_url`` is given).

Facts and where they come from:

- Element structure, content models and attribute values: the IMS QTI ASI 1.2.1 DTD (``ims_qtiasiv1p2p1.dtd``,
  final release, 14 February 2003), vendored in ``tests/data/qti/`` and checked by the tests.
- Canvas's reading of QTI 1.2 (the ``imsqti_xmlv1p2`` resource type, the ``question_type``/``points_possible``
  item metadata fields, ``SCORE`` on a 0-100 scale, ``<ident>_fb`` feedback links, ``texttype="text/html"``):
  the layout of the packages text2qti writes for Canvas (github.com/gpoore/text2qti, ``text2qti/xml_assessment.py``
  and ``xml_imsmanifest.py``), which Canvas imports.

Why not a library: qti-package-maker's Canvas QTI 1.2 writer has no per-option feedback for multiple choice, and
text2qti only takes its own Markdown-plus-LaTeX text format (``*`` becomes emphasis, ``$x$`` an equation image),
so the bank would be escaped into a second language and come back as rendered Markdown. The XML here is built
with :mod:`xml.etree.ElementTree`, which escapes every text and attribute.
"""

from __future__ import annotations

import html
import io
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass

from ..quiz.bank import Bank, Question
from ..quiz.export import html_feedback

QTI_NAMESPACE = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"
QTI_SCHEMA_LOCATION = f"{QTI_NAMESPACE} http://www.imsglobal.org/xsd/ims_qtiasiv1p2p1.xsd"
CP_NAMESPACE = "http://www.imsglobal.org/xsd/imscp_v1p1"
XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
RESOURCE_TYPE = "imsqti_xmlv1p2"
RESPONSE_ID = "response1"
FULL_SCORE = "100"


@dataclass(frozen=True)
class QtiPackage:
    """The zip's bytes and the name of the assessment file inside it."""

    data: bytes
    assessment_path: str


def identifier(*parts: str) -> str:
    """An identifier valid as an XML ID (letters, digits, ``-``, ``_``, ``.``; starting with a letter)."""
    return "lensref-" + "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "-", p) for p in parts)


def option_ident(question: Question, letter: str) -> str:
    """The XML id of ``question``'s option ``letter``."""
    return identifier(f"q{question.number:02d}", letter)


def _html_paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _material(parent: ET.Element, html_text: str) -> None:
    material = ET.SubElement(parent, "material")
    ET.SubElement(material, "mattext", texttype="text/html").text = html_text


def _metadata(parent: ET.Element, fields: list[tuple[str, str]]) -> None:
    qtimetadata = ET.SubElement(parent, "qtimetadata")
    for label, entry in fields:
        field = ET.SubElement(qtimetadata, "qtimetadatafield")
        ET.SubElement(field, "fieldlabel").text = label
        ET.SubElement(field, "fieldentry").text = entry


def _item(section: ET.Element, question: Question, base_url: str) -> None:
    item = ET.SubElement(section, "item", ident=identifier(f"q{question.number:02d}", question.id), title=question.id)
    idents = [option_ident(question, o.letter) for o in question.options]
    _metadata(
        ET.SubElement(item, "itemmetadata"),
        [
            ("question_type", "multiple_choice_question"),
            ("points_possible", "1"),
            ("original_answer_ids", ",".join(idents)),
        ],
    )
    presentation = ET.SubElement(item, "presentation")
    _material(presentation, _html_paragraph(question.text))
    response = ET.SubElement(presentation, "response_lid", ident=RESPONSE_ID, rcardinality="Single")
    choices = ET.SubElement(response, "render_choice")
    for option, ident in zip(question.options, idents):
        _material(ET.SubElement(choices, "response_label", ident=ident), _html_paragraph(option.text))
    processing = ET.SubElement(item, "resprocessing")
    ET.SubElement(
        ET.SubElement(processing, "outcomes"),
        "decvar",
        maxvalue=FULL_SCORE,
        minvalue="0",
        varname="SCORE",
        vartype="Decimal",
    )
    for ident in idents:  # each option's feedback, whichever is chosen
        condition = ET.SubElement(processing, "respcondition", {"continue": "Yes"})
        ET.SubElement(ET.SubElement(condition, "conditionvar"), "varequal", respident=RESPONSE_ID).text = ident
        ET.SubElement(condition, "displayfeedback", feedbacktype="Response", linkrefid=f"{ident}_fb")
    right = ET.SubElement(processing, "respcondition", {"continue": "No"})
    ET.SubElement(ET.SubElement(right, "conditionvar"), "varequal", respident=RESPONSE_ID).text = option_ident(
        question, question.answer.letter
    )
    ET.SubElement(right, "setvar", action="Set", varname="SCORE").text = FULL_SCORE
    for option, ident in zip(question.options, idents):
        feedback = ET.SubElement(item, "itemfeedback", ident=f"{ident}_fb")
        _material(ET.SubElement(feedback, "flow_mat"), html_feedback(option, base_url))


def assessment_xml(bank: Bank, base_url: str = "") -> str:
    """The ``questestinterop`` document: one assessment, one section, one item per question."""
    root = ET.Element(
        "questestinterop",
        {"xmlns": QTI_NAMESPACE, "xmlns:xsi": XSI_NAMESPACE, "xsi:schemaLocation": QTI_SCHEMA_LOCATION},
    )
    assessment = ET.SubElement(root, "assessment", ident=identifier(bank.id), title=bank.title)
    _metadata(assessment, [("cc_maxattempts", "1")])
    section = ET.SubElement(assessment, "section", ident=identifier(bank.id, "section"))
    for question in bank.questions:
        _item(section, question, base_url)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def manifest_xml(bank: Bank, assessment_path: str) -> str:
    """``imsmanifest.xml``: one QTI 1.2 resource, the assessment file."""
    root = ET.Element("manifest", {"identifier": identifier(bank.id, "manifest"), "xmlns": CP_NAMESPACE})
    metadata = ET.SubElement(root, "metadata")
    ET.SubElement(metadata, "schema").text = "IMS Content"
    ET.SubElement(metadata, "schemaversion").text = "1.1.3"
    ET.SubElement(root, "organizations")
    resources = ET.SubElement(root, "resources")
    resource = ET.SubElement(
        resources, "resource", identifier=identifier(bank.id), type=RESOURCE_TYPE, href=assessment_path
    )
    ET.SubElement(resource, "file", href=assessment_path)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def qti_package(bank: Bank, base_url: str = "") -> QtiPackage:
    """The zip: ``imsmanifest.xml`` and the assessment, with fixed timestamps (the same bank gives the same bytes)."""
    ident = identifier(bank.id)
    assessment_path = f"{ident}/{ident}.xml"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (
            ("imsmanifest.xml", manifest_xml(bank, assessment_path)),
            (assessment_path, assessment_xml(bank, base_url)),
        ):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return QtiPackage(buffer.getvalue(), assessment_path)

"""LMS exports: parse GIFT, Moodle XML and JSON back and compare them with the bank."""

from __future__ import annotations

import html
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from lensref.cli import main
from lensref.course.quiz import bank_from_dict, load_bank
from lensref.course.quiz.export import to_gift, to_json, to_moodle_xml


@pytest.fixture(scope="module")
def bank():
    return load_bank()


def one_question_bank(title: str, question: str, options: list[tuple[str, str]], answer: str):
    """A bank "t" of one question on the intro page: (option text, explanation) pairs."""
    return bank_from_dict(
        {
            "id": "t",
            "title": title,
            "questions": [
                {
                    "id": "only",
                    "question": question,
                    "section": "intro",
                    "answer": answer,
                    "options": [{"text": text, "explanation": why} for text, why in options],
                }
            ],
        }
    )


def _unescape_gift(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _split_unescaped(text: str, marks: str) -> list[tuple[str, str]]:
    """Split GIFT answer text at unescaped ``marks``: [(mark, piece), ...]."""
    out, cur, mark, i = [], "", None, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if c in marks:
            if mark is not None or cur.strip():
                out.append((mark, cur))
            mark, cur = c, ""
        else:
            cur += c
        i += 1
    out.append((mark, cur))
    return out


def parse_gift(text: str) -> list[dict]:
    """A small GIFT reader for multiple-choice questions with per-answer feedback (what Moodle imports)."""
    body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith(("//", "$CATEGORY")))
    questions = []
    for block in re.split(r"\n\s*\n", body.strip()):
        m = re.fullmatch(r"::(.*?)(?<!\\)::(.*?)(?<!\\)\{(.*)(?<!\\)\}", block.strip(), re.S)
        assert m, block
        title, qtext, answers = m.groups()
        options = []
        for mark, piece in _split_unescaped(answers, "=~"):
            assert mark in "=~"
            parts = [p for _, p in _split_unescaped("#" + piece, "#")]
            assert len(parts) == 2, piece  # the answer, then its feedback
            text_part, feedback = parts
            options.append(
                {
                    "text": _unescape_gift(text_part.strip()),
                    "correct": mark == "=",
                    "feedback": _unescape_gift(feedback.strip()),
                }
            )
        questions.append({"id": _unescape_gift(title), "question": _unescape_gift(qtext.strip()), "options": options})
    return questions


def test_gift_round_trip(bank):
    parsed = parse_gift(to_gift(bank))
    assert len(parsed) == 15
    for q, p in zip(bank.questions, parsed):
        assert p["id"] == q.id and p["question"] == q.text
        assert [o["text"] for o in p["options"]] == [o.text for o in q.options]
        assert [o["correct"] for o in p["options"]] == [o.correct for o in q.options]
        for o, po in zip(q.options, p["options"]):
            assert (
                po["feedback"]
                == f"{'Correct.' if o.correct else 'Not quite.'} {o.explanation} (Lesson: {o.section_title})"
            )


def test_gift_escapes_special_characters(bank):
    tricky = one_question_bank(
        "T",
        "Which of {a} = b: ~c # d?",
        [("x = {1}", "Right: 50% ~ #1."), ("y \\ 2", "Wrong {really}.")],
        answer="x = {1}",
    )
    parsed = parse_gift(to_gift(tricky))
    assert parsed[0]["question"] == "Which of {a} = b: ~c # d?"
    assert [o["text"] for o in parsed[0]["options"]] == ["x = {1}", "y \\ 2"]
    assert parsed[0]["options"][0]["feedback"].startswith("Correct. Right: 50% ~ #1.")


def test_moodle_xml_round_trip(bank):
    root = ET.fromstring(to_moodle_xml(bank, base_url="https://example.org/course/book/"))
    assert root.tag == "quiz"
    assert root[0].get("type") == "category"
    questions = root.findall("question[@type='multichoice']")
    assert len(questions) == 15
    for q, el in zip(bank.questions, questions):
        assert el.findtext("idnumber") == q.id
        assert html.unescape(re.sub("<.*?>", "", el.findtext("questiontext/text"))) == q.text
        assert el.findtext("single") == "true"
        answers = el.findall("answer")
        assert [html.unescape(a.findtext("text")) for a in answers] == [o.text for o in q.options]
        assert [a.get("fraction") for a in answers] == ["100" if o.correct else "0" for o in q.options]
        for o, a in zip(q.options, answers):
            fb = a.findtext("feedback/text")
            assert html.escape(o.explanation) in fb
            assert f'href="https://example.org/course/book/{o.section}.html"' in fb


def test_json_round_trip(bank):
    data = json.loads(to_json(bank))
    assert data["id"] == "logit-lens" and len(data["questions"]) == 15
    # the JSON form carries everything the bank schema needs: rebuild a bank from it
    rebuilt = bank_from_dict(
        {
            "id": data["id"],
            "title": data["title"],
            "questions": [
                {
                    "id": q["id"],
                    "question": q["question"],
                    "answer": next(o["text"] for o in q["options"] if o["letter"] == q["answer"]),
                    "key_terms": q["key_terms"],
                    "options": [
                        {"text": o["text"], "explanation": o["explanation"], "section": o["section"]}
                        for o in q["options"]
                    ],
                }
                for q in data["questions"]
            ],
        }
    )
    assert rebuilt.questions == bank.questions
    assert data["questions"][1]["options"][0]["url"] == "what_you_see.html"


@pytest.mark.parametrize("fmt, ext", [("gift", "gift"), ("moodle-xml", "xml"), ("json", "json"), ("qti", "zip")])
def test_cli_export_writes_a_file(tmp_path, monkeypatch, capsys, bank, fmt, ext):
    monkeypatch.chdir(tmp_path)
    assert main(["quiz", "export", "--format", fmt]) == 0
    out = tmp_path / f"logit-lens.{ext}"
    assert out.exists() and f"wrote logit-lens.{ext}" in capsys.readouterr().out
    if fmt == "qti":
        assert len(read_qti_package(out)) == 15
        return
    text = out.read_text(encoding="utf-8")
    if fmt == "gift":
        assert len(parse_gift(text)) == 15
    elif fmt == "moodle-xml":
        assert len(ET.fromstring(text).findall("question[@type='multichoice']")) == 15
    else:
        assert len(json.loads(text)["questions"]) == 15


def test_cli_export_to_stdout_and_bad_folder(tmp_path, capsys):
    assert main(["quiz", "export", "--format", "gift", "-o", "-"]) == 0
    assert len(parse_gift(capsys.readouterr().out)) == 15
    assert main(["quiz", "export", "--format", "gift", "-o", str(tmp_path / "no" / "x.gift")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --- IMS QTI 1.2 ---------------------------------------------------------------------------------------------------
# The package is checked against the IMS QTI ASI 1.2.1 DTD (tests/data/qti/, see its README) and read back by pyslet,
# another project's QTI 1.2.1 parser (its content-package reader opens the zip, its QTI v1 object model the items).

QTI_DATA = Path(__file__).resolve().parent / "data" / "qti"
QTI_NS = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"


def qti_dtd_errors(xml_bytes: bytes) -> list[str]:
    """The DTD's complaints about an assessment file (a DTD knows no namespaces: they are taken off first)."""
    from lxml import etree

    root = etree.fromstring(xml_bytes)
    assert root.tag == f"{{{QTI_NS}}}questestinterop"
    for element in root.iter():
        element.tag = etree.QName(element).localname
    for name in [n for n in root.attrib if n.startswith("{")]:
        del root.attrib[name]
    etree.cleanup_namespaces(root)
    dtd = etree.DTD(str(QTI_DATA / "ims_qtiasiv1p2p1.dtd"))
    return [] if dtd.validate(root) else [str(e) for e in dtd.error_log.filter_from_errors()]


def _text_of(element, mattext_class) -> str:
    """The plain text of an element's HTML mattext (the HTML's tags taken off, its entities decoded)."""
    markup = "".join(m.get_value() for m in element.find_children_depth_first(mattext_class))
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def read_qti_package(path: Path) -> list[dict]:
    """Each item of the package's QTI resource as pyslet reads it: text, option texts, the key, option feedback."""
    import pyslet.imscpv1p2 as content_package
    import pyslet.imsqtiv1p2p1 as qti
    from pyslet.qtiv1 import common, item

    package = content_package.ContentPackage(str(path))
    try:
        resources = [r for r in package.manifest.root.Resources.Resource if r.type == "imsqti_xmlv1p2"]
        assert len(resources) == 1
        document = qti.QTIDocument()
        with package.dPath.join(resources[0].File[0].package_path(package)).open("rb") as f:
            document.read(src=f.read())
    finally:
        package.Close()
    items = [i for s in document.root.Assessment.SectionMixin for i in s.SectionItemMixin]
    out = []
    for it in items:
        labels = list(it.Presentation.find_children_depth_first(item.ResponseLabel))
        feedback_of: dict[str, str] = {}
        key = []
        for condition in it.ResProcessing[0].find_children_depth_first(item.RespCondition):
            chosen = [v.get_value() for v in condition.find_children_depth_first(common.VarEqual)]
            for shown in condition.find_children_depth_first(common.DisplayFeedback):
                feedback_of[chosen[0]] = shown.linkRefID
            if any(
                s.varName == "SCORE" and float(s.get_value()) == 100
                for s in condition.find_children_depth_first(common.SetVar)
            ):
                key += chosen
        feedback = {fb.ident: _text_of(fb, common.MatText) for fb in it.ItemFeedback}
        out.append(
            {
                "title": it.title,
                "question": _text_of(
                    it.Presentation.find_children_depth_first(common.Material).__next__(), common.MatText
                ),
                "options": [_text_of(label, common.MatText) for label in labels],
                "key": [[label.ident for label in labels].index(k) for k in key],
                "feedback": [feedback[feedback_of[label.ident]] for label in labels],
            }
        )
    return out


def _write_qti(tmp_path, bank, base_url="") -> Path:
    from lensref.course.lms.qti import qti_package

    path = tmp_path / "quiz.zip"
    path.write_bytes(qti_package(bank, base_url).data)
    return path


def test_qti_package_validates_against_the_qti_1_2_1_dtd(tmp_path, bank):
    path = _write_qti(tmp_path, bank)
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["imsmanifest.xml", "lensref-logit-lens/lensref-logit-lens.xml"]
        manifest = ET.fromstring(archive.read("imsmanifest.xml"))
        assessment = archive.read("lensref-logit-lens/lensref-logit-lens.xml")
    cp = "{http://www.imsglobal.org/xsd/imscp_v1p1}"
    resource = manifest.find(f"{cp}resources/{cp}resource")
    assert resource.get("type") == "imsqti_xmlv1p2"
    assert resource.find(f"{cp}file").get("href") == "lensref-logit-lens/lensref-logit-lens.xml"
    assert qti_dtd_errors(assessment) == []


def test_the_dtd_check_can_fail(tmp_path, bank):
    path = _write_qti(tmp_path, bank)
    with zipfile.ZipFile(path) as archive:
        assessment = archive.read("lensref-logit-lens/lensref-logit-lens.xml").decode()
    no_outcomes = re.sub(r"<outcomes>.*?</outcomes>", "", assessment, count=1, flags=re.S)
    assert any("resprocessing" in e for e in qti_dtd_errors(no_outcomes.encode()))
    bad_value = assessment.replace('rcardinality="Single"', 'rcardinality="One"', 1)
    assert any("rcardinality" in e for e in qti_dtd_errors(bad_value.encode()))


def test_qti_package_reads_back_with_15_questions_keys_and_feedback(tmp_path, bank):
    items = read_qti_package(_write_qti(tmp_path, bank, base_url="https://example.org/book/"))
    assert len(items) == 15
    for q, it in zip(bank.questions, items):
        assert it["title"] == q.id and it["question"] == q.text
        assert it["options"] == [o.text for o in q.options]
        assert it["key"] == [q.options.index(q.answer)]
        for o, fb in zip(q.options, it["feedback"]):
            assert fb.startswith("Correct." if o.correct else "Not quite.")
            assert o.explanation in fb and f"Lesson: {o.section_title}" in fb


def test_qti_keeps_markup_and_special_characters_as_text(tmp_path):
    tricky = one_question_bank(
        "T <&>",
        "Is <b>x</b> & y > 2 * 3 $z$?",
        [("</p><script>alert(1)</script>", "Quote \" and ' and ]]>."), ("a < b & c", "Right & {true}.")],
        answer="a < b & c",
    )
    path = _write_qti(tmp_path, tricky)
    with zipfile.ZipFile(path) as archive:
        assert qti_dtd_errors(archive.read("lensref-t/lensref-t.xml")) == []
    [it] = read_qti_package(path)
    assert it["question"] == "Is <b>x</b> & y > 2 * 3 $z$?"
    assert it["options"] == ["</p><script>alert(1)</script>", "a < b & c"]
    assert it["key"] == [1]
    assert "Quote \" and ' and ]]>." in it["feedback"][0]


def test_cli_qti_to_stdout_is_the_zip(capsysbinary, bank):
    assert main(["quiz", "export", "--format", "qti", "-o", "-"]) == 0
    data = capsysbinary.readouterr().out
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "imsmanifest.xml" in archive.namelist()

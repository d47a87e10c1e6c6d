"""Every number a quiz explanation quotes about our model is the number its lesson page printed when it was built.

An explanation may quote a layer or a count from a page ("becomes the top guess only at layer 28"). The
page computes that number at build time and records it (``glue``) in the executed notebook's
``<page>.glue.json`` beside the site; :data:`QUOTED` says which recorded value each quoted number is, and the
test reads it back. Any other number in an explanation must come from the question itself (its scenario's
layers), be a year, or be the model's layer count, so a new number cannot slip in unchecked.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from book_build import build_book  # noqa: E402

BANK = ROOT / "quizzes" / "logit-lens.yaml"
N_LAYERS = 30

# (question id, the pattern that finds the quoted number in one of its explanations) -> (page, glued name)
QUOTED: dict[tuple[str, str], tuple[str, str]] = {
    ("early-layers", r"top guess only at layer (\d+)"): ("logit_lens", "paris_first"),
    ("middle-layers", r"none reaches its top 20 before layer (\d+)"): ("what_you_see", "plain_first_topk"),
    ("middle-layers", r"the top guess at (\d+) of the 16 middle layers"): ("what_you_see", "tuned_top1_colour_n"),
    ("middle-layers", r"first at layer (\d+)"): ("what_you_see", "tuned_top1_colour_first"),
}

# numbers an explanation may use that are not about our model's outputs
EXCUSED = {"prediction-changes": {"11"}}  # "layers 11 to 25": the layers after the question's layer 10


def executed_dir() -> Path:
    """The executed pages' folder: beside ``$LENSREF_SITE_DIR`` (``<out>/_build/html``), else the repository's
    build, built first when it is missing."""
    env = os.environ.get("LENSREF_SITE_DIR")
    folder = (Path(env).parent if env else ROOT / "_build") / "jupyter_execute" / "book"
    if not env and not (folder / "logit_lens.glue.json").exists():
        build_book(ROOT)
    if not (folder / "logit_lens.glue.json").exists():
        pytest.fail(f"no executed pages in {folder}: build the book first")
    return folder


def glued(folder: Path, page: str, name: str) -> str:
    values = json.loads((folder / f"{page}.glue.json").read_text())
    if name not in values:
        pytest.fail(f"{page} records no value {name!r} (its glue names: {', '.join(sorted(values))})")
    return values[name]["data"]["text/plain"]


def explanations() -> list[tuple[str, str, str]]:
    """(question id, question text, explanation) for every option of the bank."""
    bank = yaml.safe_load(BANK.read_text())
    return [(q["id"], q["question"], o["explanation"]) for q in bank["questions"] for o in q["options"]]


@pytest.mark.parametrize("key", list(QUOTED), ids=[f"{q}:{p[:24]}" for q, p in QUOTED])
def test_quoted_number_is_the_pages_output(key):
    question, pattern = key
    page, name = QUOTED[key]
    found = [m for qid, _, text in explanations() if qid == question for m in re.findall(pattern, text)]
    assert len(found) == 1, f"{question}: no explanation (or more than one) matches {pattern!r}"
    value = glued(executed_dir(), page, name)
    assert float(found[0]) == pytest.approx(float(value)), (
        f"{question}'s explanation says {found[0]}, the page {page} computed {name} = {value}"
    )


def test_every_number_in_an_explanation_is_accounted_for():
    unchecked = []
    for qid, question, text in explanations():
        for q, pattern in QUOTED:  # a checked phrase's own framing ("of the 16 middle layers") goes with it
            if q == qid:
                text = re.sub(pattern, "", text)
        allowed = set(re.findall(r"\d+", question)) | {str(N_LAYERS)} | EXCUSED.get(qid, set())
        for number in re.findall(r"(?<![-\w.])\d+(?:\.\d+)?", text):  # not a name's part: GPT-2, top-1
            if number not in allowed and not re.fullmatch(r"(19|20)\d\d", number):
                unchecked.append(f"{qid}: {number} in {text[:60]!r}...")
    assert not unchecked, "numbers no page backs:\n" + "\n".join(unchecked)


def test_a_drifted_number_fails(tmp_path, monkeypatch):
    # the check itself: a page that printed 27 while the explanation says 28 is a failure
    folder = tmp_path / "_build" / "jupyter_execute" / "book"
    folder.mkdir(parents=True)
    (folder / "logit_lens.glue.json").write_text(json.dumps({"paris_first": {"data": {"text/plain": "27"}}}))
    monkeypatch.setenv("LENSREF_SITE_DIR", str(tmp_path / "_build" / "html"))
    with pytest.raises(AssertionError, match="says 28, the page logit_lens computed paris_first = 27"):
        test_quoted_number_is_the_pages_output(("early-layers", r"top guess only at layer (\d+)"))

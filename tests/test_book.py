"""The lesson site: it builds (or its cached build is reused), every chapter page exists with its figures,
it references nothing off-site, and the claims its prose makes hold on the real default model.

The claims use the prompts in ``lensref/examples.py``, the same module the pages import, so a claim and
its check read the same text.
"""

from __future__ import annotations

import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
import yaml

from lensref import LensError, capture_residuals, logit_lens
from lensref.tokens import encode_prompt, single_token_id

ROOT = Path(__file__).resolve().parents[1]
from lensref.course import examples as lp  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from book_build import build_book  # noqa: E402

pytestmark = pytest.mark.slow  # reads the built site (building it first when it is missing)

L_LAYERS = 30


# --- the built site ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def site() -> tuple[Path, str]:
    """Build the book incrementally (pages whose code did not change come from the execution cache), or use
    ``$LENSREF_SITE_DIR`` as given. Returns the site folder and the build log."""
    env = os.environ.get("LENSREF_SITE_DIR")
    if env:
        return Path(env), ""
    return ROOT / "_build" / "html", build_book(ROOT)


def toc_chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for entry in toc["chapters"]]


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.refs = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            if attrs.get(key) and tag in ("script", "link", "img", "iframe", "source", "video", "audio"):
                self.refs.append((tag, attrs[key]))


def parse(path: Path) -> _Refs:
    refs = _Refs()
    refs.feed(path.read_text(encoding="utf-8"))
    return refs


def test_build_log_prints_the_time(site):
    _, log = site
    if log:
        assert re.search(r"book build: \d+(\.\d+)? s", log), log[-2000:]


def test_toc_lists_the_required_chapters():
    chapters = toc_chapters()
    for name in (
        "intro",
        "residual_stream",
        "logit_lens",
        "what_you_see",
        "reading_honestly",
        "tuned_lens",
        "logit_difference",
        "dla",
        "patchscopes",
        "quiz",
        "instructors",
    ):
        assert f"book/{name}" in chapters


@pytest.mark.parametrize("chapter", toc_chapters())
def test_every_chapter_page_exists_with_its_figures(site, chapter):
    html_dir, _ = site
    page = html_dir / f"{chapter}.html"
    assert page.is_file(), f"{page} was not built"
    refs = parse(page)
    figures = [src for src in refs.images if "_images/" in src]
    source = (ROOT / f"{chapter}.md").read_text()
    expected = len(re.findall(r"\bshow\(fig\b", source))
    assert "plt.show()" not in source, f"{chapter}: draw figures with lensref.plotting.show(fig, alt=...)"
    if expected:
        assert len(figures) >= expected, f"{chapter}: {len(figures)} figures, the page draws at least {expected}"
    for src in refs.images:
        target = (page.parent / urlsplit(src).path).resolve()
        assert target.is_file() and target.stat().st_size > 0, f"{chapter}: image {src} is missing"
    text = page.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" not in text, f"{chapter}: a cell raised"


def test_site_references_nothing_off_site(site):
    html_dir, _ = site
    pages = list(html_dir.rglob("*.html"))
    assert pages
    offsite = []
    for page in pages:
        for tag, ref in parse(page).refs:
            if tag == "link" and not ref.startswith(("http:", "https:", "//")):
                continue
            if ref.startswith(("http:", "https:", "//")):
                offsite.append(f"{page.relative_to(html_dir)}: <{tag}> {ref}")
    assert offsite == []


def test_quotes_are_straight_not_turned_backwards(site):
    # Sphinx's smartquotes made an opening quote after "(" a closing one: ("one" came out as (”one”
    html_dir, _ = site
    for page in sorted((html_dir / "book").glob("*.html")):
        assert not re.search("[“”‘’]", page.read_text(encoding="utf-8")), f"{page.name}: curly quotes in the page"
    assert "(&quot; one&quot;" in (html_dir / "book" / "what_you_see.html").read_text(encoding="utf-8")


def test_mathjax_served_from_the_site(site):
    html_dir, _ = site
    assert (html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file()
    text = (html_dir / "book" / "logit_lens.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-chtml.js" in text and "cdn.jsdelivr" not in text


# --- the lesson's claims on the real model ------------------------------------------------------------


@pytest.fixture(scope="module")
def facts(real_lm):
    return {p: logit_lens(real_lm, p, target=t) for p, t in lp.FACTS.items()}


@pytest.mark.real_model
def test_every_fact_is_answered_and_crystallizes_in_the_last_third(real_lm, facts):
    assert real_lm.n_layers == L_LAYERS
    for prompt, result in facts.items():
        assert result.top1(L_LAYERS) == lp.FACTS[prompt], prompt
        first = result.first_top1_layer()
        assert first is not None and first >= 2 * L_LAYERS // 3, (prompt, first)
    assert facts[lp.EIFFEL].first_top1_layer() >= 2 * L_LAYERS // 3


@pytest.mark.real_model
def test_layer0_echoes_the_input_token_at_most_positions(facts):
    # what_you_see: the share is over every position but the first, as in the figure, and is a majority
    matches = [r.top_ids[0, p, 0].item() == r.token_ids[p] for r in facts.values() for p in range(1, r.n_positions)]
    assert sum(matches) / len(matches) > 0.5
    figure = [r.top1(0, p) == r.tokens[p] for r in facts.values() for p in range(1, r.n_positions)]
    assert figure == matches  # the prose's number is the figure's layer-0 share
    misses = [
        (r.tokens[p], r.top1(0, p))
        for r in facts.values()
        for p in range(1, r.n_positions)
        if r.top_ids[0, p, 0].item() != r.token_ids[p]
    ]
    inputs = {a for a, _ in misses}
    assert "iffel" in inputs and " France" in inputs
    from collections import Counter

    (_, first), (_, second) = Counter(b for _, b in misses).most_common(2)
    assert first + second > len(misses) / 2  # two hub tokens take most of the exceptions


@pytest.mark.real_model
def test_middle_layers_show_punctuation_and_function_words(facts):
    words = {
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "with",
        "by",
        "from",
        "is",
        "was",
        "be",
        "as",
        "that",
        "this",
        "it",
        "i",
        "my",
        "he",
        "she",
        "they",
        "s",
    }
    mid, top = [], []
    for r in facts.values():
        for pos in range(1, r.n_positions):
            for layer in range(5, 24):
                token = r.top1(layer, pos)
                core = token.strip().lower()
                mid.append(token != r.tokens[pos] and (not re.search(r"[a-z0-9]", core) or core in words))
            core = r.top1(L_LAYERS, pos).strip().lower()
            top.append(bool(re.search(r"[a-z0-9]", core)) and core not in words)
    assert np.mean(mid) > 0.7
    assert np.mean(top) > 0.3  # content words take over at the top


@pytest.mark.real_model
def test_colour_category_rises_before_one_colour_wins(real_lm):
    r = logit_lens(real_lm, lp.COLOUR_PROMPT, target=lp.COLOUR_ANSWER, keep_logits=True, top_k=6)
    logits = r.logits[:, -1]

    def mean_log_rank(words):
        ids = [real_lm.tokenizer.encode(" " + w, add_special_tokens=False) for w in words.split()]
        ids = [i[0] for i in ids if len(i) == 1]
        ranks = (logits[:, None, :] > logits[:, ids][:, :, None]).sum(-1) + 1
        return ranks.float().log10().mean(-1).numpy()

    ranks = {name: mean_log_rank(words) for name, words in lp.CATEGORIES.items()}
    climb = {name: float(v[4] - v[22]) for name, v in ranks.items()}
    # the figure's alt text: numbers rank best until about layer 20, colours best near the top
    assert all(ranks["numbers"][layer] < ranks["colours"][layer] for layer in range(0, 19))
    assert all(ranks["colours"][28] < v[28] for k, v in ranks.items() if k != "colours")
    assert climb["colours"] > 0.5
    assert all(climb["colours"] > 2 * v for k, v in climb.items() if k != "colours"), climb
    assert r.top1(22).strip() == ""  # the top-1 is still a space while the colours climb
    colours = set(lp.CATEGORIES["colours"].split())
    assert all(t.token.strip() in colours for t in r.top(27)[:4])
    assert r.top1(27) != lp.COLOUR_ANSWER and r.top1(L_LAYERS) == lp.COLOUR_ANSWER
    assert r.first_top1_layer() >= 27


@pytest.mark.real_model
@pytest.mark.slow
def test_topic_in_the_middle_layers_beyond_the_top1(real_lm, facts):
    """What you see, 'Beyond the top-1' and 'Why the raw top-1 is punctuation'."""
    from lensref import Unembed
    from lensref.tuned import get_or_train_tuned_lens
    from lensref.tuned.data import model_texts

    ids = [real_lm.tokenizer.encode(" " + w, add_special_tokens=False) for w in lp.CATEGORIES["colours"].split()]
    colours = {i[0] for i in ids if len(i) == 1}
    middle = range(8, 24)
    plain = logit_lens(real_lm, lp.COLOUR_PROMPT, keep_logits=True).logits[:, -1]
    tuned = get_or_train_tuned_lens(real_lm)
    read = logit_lens(real_lm, lp.COLOUR_PROMPT, keep_logits=True, translator=tuned).logits[:, -1]

    def in_top20(logits, layer):
        return len(colours & set(logits[layer].topk(20).indices.tolist()))

    # the plain lens: no colour in its top 20 in the middle layers, the first one from the mid twenties
    assert max(in_top20(plain, layer) for layer in middle) == 0
    assert 24 <= next(layer for layer in range(L_LAYERS + 1) if in_top20(plain, layer)) <= 27
    # the tuned lens: several colours in every middle layer's top 20, a colour top-1 at most of them
    assert min(in_top20(read, layer) for layer in middle) >= 3
    top1 = [layer for layer in middle if int(read[layer].argmax()) in colours]
    assert len(top1) > len(middle) / 2 and top1[0] <= 16
    # the average state of ordinary text reads as punctuation, and the middle cells' top-1 mostly is one of those
    decode = Unembed.of(real_lm)
    states = [
        capture_residuals(real_lm, encode_prompt(real_lm.tokenizer, t[:400]), states_only=True).states[:, 0, 1:]
        for t in list(model_texts().values())[:20]
    ]
    mean = torch.cat(states, dim=1).mean(1)
    with torch.no_grad():
        generic = decode(mean).topk(5).indices
    for layer in middle:
        tokens = [real_lm.tokenizer.decode([int(t)]).strip() for t in generic[layer]]
        assert all(not any(ch.isalnum() for ch in t) or t == "and" for t in tokens), (layer, tokens)
    cells = [
        r.top_ids[layer, pos, 0].item() in set(generic[layer].tolist())
        for r in facts.values()
        for layer in middle
        for pos in range(1, r.n_positions)
    ]
    assert sum(cells) / len(cells) > 0.6


@pytest.mark.real_model
def test_answer_rank_climbs_in_the_top_third(facts):
    ranks = np.array([r.target_rank[:, -1].numpy() for r in facts.values()])
    median = np.median(ranks, axis=0)
    assert median[20] > 100 and median[27] < median[20] / 10
    kl = np.median(np.array([r.kl_to_final[:, -1].numpy() for r in facts.values()]), axis=0)
    assert kl[28] < 0.25 * kl[20]  # "most of the distance is covered in the last few blocks"


@pytest.mark.real_model
def test_logit_lens_page_claims(real_lm, facts):
    r = facts[lp.EIFFEL]
    assert r.top1(0) == r.tokens[-1] == " of"  # layer 0 reads back the input word
    words = {"the", "a", "an", "and", "or", "of", "in", "on", "at", "to", "for", "with", "by", "from", "is", "my"}
    middle = [r.top1(layer).strip().lower() for layer in range(1, 27)]
    assert np.mean([not re.search(r"[a-z0-9]", t) or t in words for t in middle]) > 0.8
    assert r.first_top1_layer() >= 25  # " Paris" only in the last few layers
    ranks = r.target_rank[:, -1]
    assert ranks[26] < ranks[20] and r.first_top1_layer() > 26  # "then it takes over"
    others = {
        "The capital of Germany is": " Berlin",
        "The Mona Lisa was painted by Leonardo da": " Vinci",
        lp.COLOUR_PROMPT: lp.COLOUR_ANSWER,
    }
    for prompt, target in others.items():
        o = logit_lens(real_lm, prompt, target=target)
        assert o.top1(L_LAYERS) == target and o.first_top1_layer() >= 2 * L_LAYERS // 3, prompt


@pytest.mark.real_model
def test_predicted_then_corrected(real_lm):
    r = logit_lens(real_lm, lp.CORRECTED["prompt"])
    held = [layer for layer in range(L_LAYERS + 1) if r.top1(layer) == lp.CORRECTED["early"]]
    assert all(layer in held for layer in range(20, L_LAYERS)), held  # held for the last ten blocks
    assert r.top1(L_LAYERS) == lp.CORRECTED["final"]
    assert any(layer < 10 for layer in held)  # "and already at several early layers"
    city = logit_lens(real_lm, lp.CORRECTED_CITY["prompt"])
    assert city.top1(L_LAYERS - 1) == lp.CORRECTED_CITY["early"]
    first, second = city.top(L_LAYERS - 1)[:2]
    assert first.prob - second.prob < 0.02  # "by a hair"
    assert city.top1(L_LAYERS) == lp.CORRECTED_CITY["final"]


@pytest.mark.real_model
def test_wrong_answer_that_stays_wrong_and_a_near_miss(real_lm):
    wrong = logit_lens(real_lm, lp.STAYS_WRONG["prompt"], target=lp.STAYS_WRONG["right"])
    assert wrong.top1(L_LAYERS) == lp.STAYS_WRONG["final"]
    assert int(wrong.target_rank[:, -1].min()) > 10  # never in the top 10 at any layer
    near = logit_lens(real_lm, lp.NEAR_MISS["prompt"], target=lp.NEAR_MISS["right"])
    assert near.top1(L_LAYERS) == lp.NEAR_MISS["final"]
    assert int(near.target_rank[:, -1].min()) <= 3


@pytest.mark.real_model
def test_early_states_differ_from_the_final_one(real_lm):
    states = capture_residuals(real_lm, encode_prompt(real_lm.tokenizer, lp.EIFFEL)).states[:, 0]
    cos = torch.nn.functional.cosine_similarity(states[:, 1:], states[-1:, 1:], dim=-1).mean(-1)
    assert cos[5] < 0.5 and cos[L_LAYERS - 1] > cos[5]
    r = logit_lens(real_lm, lp.EIFFEL)
    assert r.top1(11, 0) == " dismant"  # the word piece the prose names
    sample = [logit_lens(real_lm, q, top_k=1) for q in list(lp.FACTS)[:6]]
    agree = np.mean([rr.top1(20, p) == rr.top1(L_LAYERS, p) for rr in sample for p in range(rr.n_positions)])
    assert agree < 0.3  # "rarely agrees ... until the last layers"


@pytest.mark.real_model
def test_double_norm_and_tokenization_pitfalls(real_lm):
    ids = encode_prompt(real_lm.tokenizer, lp.EIFFEL)
    with torch.no_grad():
        out = real_lm.model(input_ids=ids[None], output_hidden_states=True)
    twice = real_lm.adapter.decode(out.hidden_states[-1])
    assert (twice - out.logits).abs().max().item() > 1.0
    probs = out.logits[0, -1].softmax(-1)
    tok = real_lm.tokenizer
    assert probs[single_token_id(tok, " Paris")] > 100 * probs[single_token_id(tok, "Paris")]
    with pytest.raises(LensError):
        single_token_id(tok, " Brasília")


@pytest.mark.real_model
def test_residual_stream_is_a_sum_of_small_corrections(real_lm):
    ids = encode_prompt(real_lm.tokenizer, lp.EIFFEL)
    h = capture_residuals(real_lm, ids).states[:, 0, 1:]
    cos = torch.nn.functional.cosine_similarity(h[1:], h[:-1], dim=-1).mean(-1)
    assert float(cos[5 : L_LAYERS - 2].median()) > 0.8
    norms = h.norm(dim=-1).mean(-1)
    writes = (h[1:] - h[:-1]).norm(dim=-1) / h[:-1].norm(dim=-1)
    assert float(writes.mean(-1)[5 : L_LAYERS - 2].median()) < 1  # a correction, smaller than the state
    assert norms[-1] > 2 * norms[1]  # the stream grows


@pytest.mark.real_model
def test_logit_difference_claims(real_lm, facts):
    from lensref.logitdiff import logit_diff

    ld = logit_diff(real_lm, lp.EIFFEL, " Paris", " London")
    first = ld.first_positive_layer()
    assert first is not None and first < facts[lp.EIFFEL].first_top1_layer() and ld.at(-1)[-1] > 0
    assert all(v > 0 for v in ld.at(-1)[first:])  # "leads from layer X to the top"
    top = ld.diff[-1].numpy()
    leaders = {ld.tokens[i] for i in top.argsort()[::-1][:3]}
    assert leaders <= {" in", " the", " city", " of"}  # where a city name could come next
    iffel = ld.tokens.index("iffel")
    assert ld.diff[0, iffel] > 5 and ld.diff[1:, iffel].max() < ld.diff[0, iffel] / 2  # red at layer 0 only
    contest = logit_diff(real_lm, lp.NEAR_MISS["prompt"], lp.NEAR_MISS["right"], lp.NEAR_MISS["final"])
    values = contest.at(-1)
    assert all(v < 0 for v in values[20:]) and values[-1] > values[20] + 5  # trails, but closes the gap
    widens = [layer for layer in range(21, L_LAYERS + 1) if values[layer] < values[layer - 1]]
    assert widens  # "but not steadily"
    assert abs(values[-1]) < 0.5 * abs(values[L_LAYERS - 3])  # "the last few blocks close most of the rest"


@pytest.mark.real_model
def test_dla_adds_up_and_the_late_layers_write_most(real_lm):
    from lensref.dla import direct_logit_attribution

    r = direct_logit_attribution(real_lm, lp.EIFFEL, " Paris", " London")
    assert abs(r.total - r.model_logit_diff) < 1e-2
    late = sum(float(r.attn[l] + r.mlp[l]) for l in range(2 * L_LAYERS // 3, L_LAYERS))
    assert late / r.model_logit_diff > 0.5
    assert len(r.components()) - 1 == 1 + 2 * L_LAYERS  # the formula's components; the last is the constant
    assert r.components()[-1].kind == "constant" and r.constant == 0.0  # SmolLM2 has no biases


@pytest.mark.real_model
@pytest.mark.slow
def test_patchscope_regimes_are_ordered(real_lm):
    from lensref.patchscope import patchscope

    result = patchscope(real_lm, lp.EIFFEL, position=3, layers=list(range(0, L_LAYERS + 1, 3)))
    answers = result.answers()
    echo = [l for l, a in answers.items() if a == "Tower"]
    expanded = [l for l, a in answers.items() if a.startswith("Tower ")]
    ignored = [l for l, a in answers.items() if a == "hello"]
    assert echo and expanded and ignored and 0 in echo
    assert max(echo) < min(expanded) and max(expanded) < min(ignored)  # bottom, middle, top


@pytest.mark.real_model
@pytest.mark.slow
def test_tuned_lens_page_claims(real_lm):
    from lensref.tuned import compare_lenses, get_or_train_tuned_lens, load_corpus

    tuned = get_or_train_tuned_lens(real_lm)  # the lens the page uses (trained on the model's own text)
    corpus = load_corpus(real_lm.tokenizer, max_train_tokens=128, max_heldout_tokens=512)
    comparison = compare_lenses(real_lm, corpus.heldout, tuned, progress=False)
    assert comparison.layers_where_tuned_not_better() == []
    gap = np.array(comparison.kl_logit[:L_LAYERS]) - np.array(comparison.kl_tuned[:L_LAYERS])
    assert int(gap.argmax()) < 20  # "the gap is largest in the early and middle layers"
    plain = logit_lens(real_lm, lp.EIFFEL, target=" Paris")
    through = logit_lens(real_lm, lp.EIFFEL, target=" Paris", translator=tuned)
    assert through.first_top1_layer() <= plain.first_top1_layer()  # "rises earlier"
    middle = [through.top1(layer) for layer in range(10, 21)]
    name_like = [t.strip() == "" or t.strip()[:1].isupper() for t in middle]
    assert sum(name_like) > len(middle) / 2  # "mostly a space or the first letters of a name"
    names = {
        t.token
        for layer in range(10, 21)
        for t in through.top(layer)[:3]
        if len(t.token.strip()) > 2 and t.token.strip()[:1].isupper()
    }
    assert len(names) >= 2  # "just below them it ranks capitalised names"
    p_model = float(plain.target_prob[L_LAYERS, -1])
    p_tuned = through.target_prob[:L_LAYERS, -1].numpy()
    assert p_tuned.max() > p_model  # "climbs above the probability the model itself ends with"
    peak = int(p_tuned.argmax())
    assert float(through.entropy[peak, -1]) < float(plain.entropy[L_LAYERS, -1])  # sharper than the model


# --- the figures' own checks (lensref.plotting.display), on small synthetic figures ---------------------


def test_figure_checks_catch_small_text_missing_glyphs_and_colour_only_lines():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lensref.plotting.display import check_alt, check_figure, png_bytes, read_png_info, show

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [0, 1], label="logit lens")
    ax.plot([0, 1], [1, 0], label="tuned lens")  # same style and marker: only the colour differs
    ax.set_title("␣Paris \u0e01", fontsize=6)  # a Thai letter: not in DejaVu Sans
    ax.legend()
    check = check_figure(fig)
    assert check.min_font_pt == 6
    assert check.missing_glyphs == "\u0e01"  # ␣ is drawn, the Thai letter is not
    assert check.ambiguous_lines == ["'logit lens' / 'tuned lens'"]
    info = read_png_info(png_bytes(fig, "A test figure with two lines and a title."))
    assert info["Description"] == "A test figure with two lines and a title."
    assert float(info["lensref:width_in"]) < 6.5 and info["lensref:min_font_pt"] == "6"
    with pytest.raises(ValueError, match="illegible figure: text of 6 pt.*cannot draw.*only by colour"):
        show(fig, "A test figure with two lines and a title.")
    with pytest.raises(ValueError, match="sentence"):
        check_alt("grid.png")

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [0, 1], ls="-", label="logit lens")
    ax.plot([0, 1], [1, 0], ls="--", label="tuned lens")
    ax.legend(fontsize=9)
    check = check_figure(fig)
    assert check.ambiguous_lines == [] and check.missing_glyphs == "" and check.min_font_pt >= 8
    plt.close("all")


def test_patchscope_plot_labels_each_run_of_answers_once():
    from lensref.plotting.patchscope import _runs

    answers = {0: "Tower", 3: "Tower", 6: "Tower of Hano", 9: "Tower of Hano", 12: "Tower of Hano", 15: "hello"}
    assert _runs([6, 9, 12], answers, 3) == [(6, 12, "Tower of Hano")]
    assert _runs([0, 3, 15], answers, 3) == [(0, 3, "Tower"), (15, 15, "hello")]


def test_tuned_lens_text_is_the_models_own_and_avoids_the_lessons_prompts():
    from lensref import LensError as Error
    from lensref.tuned.data import corpus_topics, model_texts, split_topics

    texts = model_texts()
    assert len(texts) >= 100  # "a hundred-odd varied openings"
    train, heldout = split_topics(texts)
    assert heldout and not set(train) & set(heldout)  # whole openings held out
    everything = "\n".join(texts.values())
    prompts = list(lp.FACTS) + [
        lp.COLOUR_PROMPT,
        lp.CORRECTED["prompt"],
        lp.CORRECTED_CITY["prompt"],
        lp.STAYS_WRONG["prompt"],
        lp.NEAR_MISS["prompt"],
    ]
    assert [p for p in prompts if p in everything] == []
    assert not any("located in the city of" in opening or opening.startswith("The capital of") for opening in texts)
    assert "def " not in everything[:5000] and corpus_topics("pydoc")  # plain prose; the old corpus still loads
    with pytest.raises(Error, match="unknown corpus"):
        corpus_topics("wiki")

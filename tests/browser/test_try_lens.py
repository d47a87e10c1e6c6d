"""The "Try the lens" page in Chromium: the model loads only when asked, from this site alone, and its grid agrees
with lensref's own lens on 20 prompts; the page answers while the worker computes; axe finds nothing (any impact)
with the grid shown, in light and dark; usable at 375 px.

One page (one model load) serves the whole module; every request it makes is recorded, and one to another host
fails the module at teardown. lensref's side runs in this process through the library (checked once against
``lensref lens --json``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch

PAGE = "book/try_lens.html"
# (prompt, target): the target is one token of SmolLM2's vocabulary, or None for no target.
PROMPTS = [
    ("The Eiffel Tower is located in the city of", " Paris"),
    ("The capital of Japan is", " Tokyo"),
    ("Water freezes at zero degrees", " Celsius"),
    ("The opposite of hot is", " cold"),
    ("Monday, Tuesday, Wednesday,", " Thursday"),
    ("One, two, three, four,", " five"),
    ("The cat sat on the", " mat"),
    ("She opened the door and walked into the", " room"),
    ("The largest planet in our solar system is", " Jupiter"),
    ("To be or not to be, that is the", " question"),
    ("In Python, a function is defined with the keyword", " def"),
    ("The chemical symbol for gold is", " Au"),
    ("My favourite colour is", " blue"),
    ("Once upon a time, there was a little", " girl"),
    ("The sun rises in the", " east"),
    ("def add(a, b):\n    return", " a"),
    ("Paris is to France as Rome is to", " Italy"),
    ("A logit lens reads the residual stream of a transformer", None),
    ("1, 1, 2, 3, 5, 8, 13,", None),
    ("The quick brown fox jumps over the lazy", None),
]
TOP1_AGREEMENT = 0.99
PROB_TOLERANCE = 0.02


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname == "127.0.0.1"


@pytest.fixture(scope="module")
def lens_page(guarded_page, site_url):
    """One page on the Try the lens page, recording every request (requests to other hosts are blocked)."""
    _, page = guarded_page()
    page.on("response", lambda r: page.console_errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(site_url + PAGE, wait_until="load")
    page.wait_for_function("() => window.tryLens && /MB/.test(document.querySelector('#tl-load').textContent)")
    try:
        yield page
    finally:
        page.close_guarded()


@pytest.fixture(scope="module")
def loaded_page(lens_page):
    """The page after the learner pressed "Load the model" and it finished."""
    assert not [u for u in lens_page.requests if u.endswith((".onnx", ".wasm"))], "model fetched before the click"
    label = lens_page.locator("#tl-load").inner_text()
    lens_page.click("#tl-load")
    lens_page.wait_for_function("() => !document.querySelector('#tl-run').disabled", timeout=180_000)
    lens_page.load_label = label
    return lens_page


@pytest.fixture(scope="module")
def lm():
    from lensref import load_model

    return load_model()


def run_in_page(page, prompt, target):
    return page.evaluate("([p, t]) => window.tryLens.run(p, t)", [prompt, target])


def test_model_loads_only_when_asked_with_its_size(loaded_page):
    label = loaded_page.load_label
    manifest = json.loads(loaded_page.evaluate("() => JSON.stringify(window.tryLens.manifest)"))
    assert label == f"Load the model ({manifest['model_bytes'] / 1e6:.0f} MB)"
    assert manifest["model_bytes"] <= 160e6
    fetched = [u for u in loaded_page.requests if u.endswith((".onnx", ".wasm"))]
    assert any(u.endswith("/_static/try-lens/model/lens.onnx") for u in fetched), fetched
    assert any(u.endswith("/_static/try-lens/vendor/ort/ort-wasm-simd-threaded.wasm") for u in fetched), fetched
    progress = loaded_page.locator("#tl-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max")
    assert "Model loaded" in loaded_page.locator("#tl-status").inner_text()
    assert all(is_local(u) for u in loaded_page.requests)


def test_lensref_api_is_what_the_cli_prints(lm, tmp_path):
    from lensref import logit_lens

    prompt, target = PROMPTS[1]
    out = tmp_path / "lens.json"
    lensref = Path(sys.executable).with_name("lensref")
    subprocess.run(
        [str(lensref), "lens", prompt, "--target", target, "--json", str(out)], check=True, capture_output=True
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(logit_lens(lm, prompt, target=target).to_dict()))


def test_grid_agrees_with_lensref_on_20_prompts(loaded_page, lm):
    from lensref import logit_lens

    cells = same_top1 = 0
    worst_prob = 0.0
    for prompt, target in PROMPTS:
        got = run_in_page(loaded_page, prompt, target)
        ref = logit_lens(lm, prompt, target=target)
        assert got["token_ids"] == ref.token_ids, prompt
        top_ids = torch.tensor(got["top_ids"])
        assert top_ids.shape == ref.top_ids.shape, prompt
        cells += top_ids[..., 0].numel()
        same_top1 += int((top_ids[..., 0] == ref.top_ids[..., 0]).sum())
        worst_prob = max(worst_prob, float((torch.tensor(got["top_probs"]) - ref.top_probs).abs().max()))
        if target is not None:
            worst_prob = max(worst_prob, float((torch.tensor(got["target_prob"]) - ref.target_prob).abs().max()))
        # The top row is the model's own prediction: its top-1 is the model's next token at every position.
        with torch.no_grad():
            own = lm.model(input_ids=torch.tensor([ref.token_ids])).logits[0].argmax(-1)
        assert top_ids[-1, :, 0].tolist() == own.tolist(), prompt
    print(f"try-lens agreement: top-1 {same_top1}/{cells} cells, worst probability gap {worst_prob:.5f}")
    assert same_top1 / cells >= TOP1_AGREEMENT, f"top-1 agrees in {same_top1} of {cells} cells"
    assert worst_prob <= PROB_TOLERANCE, f"a shown probability is off by {worst_prob:.4f}"


def test_the_grid_and_the_plain_table(loaded_page):
    loaded_page.fill("#tl-prompt", "The Eiffel Tower is located in the city of")
    loaded_page.fill("#tl-target", " Paris")
    loaded_page.select_option("#tl-metric", "rank")
    loaded_page.click("#tl-run")
    loaded_page.wait_for_function("() => /tokens x 31 layers/.test(document.querySelector('#tl-status').textContent)")
    n_tokens = len(loaded_page.evaluate("() => window.tryLens.lastResult.tokens"))
    assert loaded_page.locator(".tl-grid button.tl-cell").count() == 31 * n_tokens
    assert loaded_page.locator(".tl-table tbody tr").count() == 31 * n_tokens
    top_right = loaded_page.locator(".tl-grid tbody tr").first.locator("button.tl-cell").last
    assert top_right.inner_text().split() == ["␣Paris", "#1"]
    loaded_page.mouse.move(0, 0)  # no cell under the pointer: the detail line follows the focus
    top_right.focus()
    detail = loaded_page.locator("#tl-detail").inner_text()
    assert detail.startswith("Layer 30, after ␣of") and "top 5 ␣Paris" in detail and "rank 1" in detail


def test_bad_target_is_one_line(loaded_page):
    loaded_page.fill("#tl-target", " Parisian Tower")
    loaded_page.click("#tl-run")
    loaded_page.wait_for_function("() => /^Error: /.test(document.querySelector('#tl-status').textContent)")
    status = loaded_page.locator("#tl-status").inner_text()
    assert "is 3 tokens" in status and "not one" in status and "\n" not in status


def test_page_answers_while_the_worker_computes(loaded_page):
    long_prompt = " ".join(["The lens reads every layer of the model."] * 4)
    start = time.perf_counter()
    loaded_page.evaluate("p => { window.pendingRun = window.tryLens.run(p, null); }", long_prompt)
    waits = [time.perf_counter() - start]
    busy = 0
    for _ in range(10):
        start = time.perf_counter()
        busy += loaded_page.evaluate("() => document.querySelector('#tl-run').disabled")
        waits.append(time.perf_counter() - start)
        time.sleep(0.05)
    loaded_page.evaluate("() => window.pendingRun")
    assert busy >= 5, "the run finished before the page could be probed"
    assert max(waits) < 0.25, f"the page took {max(waits):.2f} s to answer while computing"


def axe_violations(page) -> list[str]:
    from axe_playwright_python.base import AXE_SCRIPT

    page.evaluate(AXE_SCRIPT)
    # The page's other parts are test_a11y.py's; this one looks at the form, the grid and the table once filled.
    # No preload: axe would fetch the theme's stylesheets itself and resolve their @import against the wrong base.
    report = page.evaluate("() => axe.run('#try-lens', {resultTypes: ['violations'], preload: false})")
    return [
        f"{v['id']} ({v.get('impact')}): {' '.join(map(str, n['target']))}"
        for v in report["violations"]
        for n in v["nodes"]
    ]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_clean_with_the_grid_shown(loaded_page, theme):
    loaded_page.evaluate(
        "t => { document.documentElement.dataset.theme = t; document.documentElement.dataset.mode = t; }", theme
    )
    loaded_page.select_option("#tl-metric", "prob")
    loaded_page.evaluate("() => document.querySelector('details.tl-numbers').open = true")
    assert loaded_page.locator(".tl-grid button.tl-cell").count() > 0
    assert axe_violations(loaded_page) == []


def test_usable_at_375_px(loaded_page):
    loaded_page.set_viewport_size({"width": 375, "height": 800})
    loaded_page.wait_for_timeout(200)
    widths = loaded_page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " document.querySelector('.tl-grid-box').getBoundingClientRect().right]"
    )
    assert widths[0] <= widths[1] == 375 and widths[2] <= 375, widths
    box = loaded_page.locator(".tl-grid-box")
    assert box.evaluate("b => b.scrollWidth > b.clientWidth")  # the grid scrolls inside its own box
    assert loaded_page.locator("#tl-run").is_visible()
    assert not loaded_page.console_errors, loaded_page.console_errors

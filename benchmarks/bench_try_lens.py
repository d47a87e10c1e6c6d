"""Benchmark of the "Try the lens" page in headless Chromium: model size, load time and the grid's time.

Serves a built site (``_build/html`` unless ``--site`` says otherwise) from 127.0.0.1, opens the page in Debian's
chromium (the browser tests' flags; WASM on one thread, no cross-origin isolation), presses "Load the model" and
then reads a 16-token prompt through the lens ``--repeats`` times. Prints:

- the model files' size (the ONNX graph with its weights, and the tokenizer) and the runtime's (onnxruntime-web's
  WASM build and the tokenizer library);
- the load: download from the local server, and ONNX Runtime preparing the session (unpacking the quantized
  weights into float32);
- the full grid (31 layers x 16 positions: the forward pass and every statistic) per run, as the worker measured
  it, and the time the page waited for it; the first run is reported apart (it warms the runtime up).

    .venv/bin/python benchmarks/bench_try_lens.py [--site _build/html] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (the browser tests' launch settings)

TEXT = "The Eiffel Tower is located in the city of Paris, which is the capital of France and the home of the Louvre."
N_TOKENS = 16


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def sixteen_token_prompt(folder: Path) -> str:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = tokenizer.encode(TEXT, add_special_tokens=False).ids[:N_TOKENS]
    return tokenizer.decode(ids)


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def measure(site: Path, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    assets = site / "_static" / "try-lens"
    model = assets / "model"
    if not (model / "manifest.json").exists():
        raise SystemExit(f"error: {site} has no Try the lens model files; build the site first (make book)")
    prompt = sixteen_token_prompt(model)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/book/try_lens.html"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page()
            page.goto(url, wait_until="load")
            page.wait_for_function("() => window.tryLens && window.tryLens.manifest")
            start = time.perf_counter()
            page.click("#tl-load")
            page.wait_for_function("() => !document.querySelector('#tl-run').disabled", timeout=300_000)
            load_wall = time.perf_counter() - start
            info = page.evaluate("() => window.tryLens.loadInfo")
            runs, waits = [], []
            for _ in range(repeats + 1):
                start = time.perf_counter()
                result = page.evaluate("p => window.tryLens.run(p, ' France')", prompt)
                waits.append(time.perf_counter() - start)
                runs.append(result["seconds"])
                if len(result["tokens"]) != N_TOKENS:
                    raise SystemExit(f"error: the prompt is {len(result['tokens'])} tokens, not {N_TOKENS}")
            browser.close()
    finally:
        server.shutdown()
    return {
        "model_files_mb": round(folder_mb(model), 1),
        "onnx_file_mb": round((model / "lens.onnx").stat().st_size / 1e6, 1),
        "runtime_files_mb": round(folder_mb(assets / "vendor"), 1),
        "load_s": round(load_wall, 2),
        "download_s": round(info["fetchSeconds"], 2),
        "prepare_s": round(info["prepareSeconds"], 2),
        "first_grid_s": round(runs[0], 2),
        "grid_s_median": round(statistics.median(runs[1:]), 2),
        "grid_s_runs": [round(r, 2) for r in runs[1:]],
        "page_wait_s_median": round(statistics.median(waits[1:]), 2),
        "tokens": N_TOKENS,
        "prompt": prompt,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--site", type=Path, default=ROOT / "_build" / "html", help="the built site (default: %(default)s)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed grid runs after a first, warm-up one")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    if args.repeats < 1:
        raise SystemExit(f"error: --repeats must be at least 1, got {args.repeats}")
    figures = measure(args.site, args.repeats)
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""How every browser check launches Debian's chromium (headless, offline, never ``playwright install``): the
browser tests' fixtures and the Try the lens benchmark (benchmarks/bench_try_lens.py) use these two names."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

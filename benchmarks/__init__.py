"""Benchmarks of the course repository (not part of the installed package): they print ratios measured in one run.

- ``bench_lens``: the lens grid against a forward pass, a naive implementation and the matmul floor
  (``lensref bench`` / ``make bench`` from a checkout).
- ``bench_grading``: grading throughput, dispatch overhead and a projection for a large class
  (``.venv/bin/python benchmarks/bench_grading.py``).
"""

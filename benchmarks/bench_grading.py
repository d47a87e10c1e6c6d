"""Grading throughput, in one run (a benchmark, not a test): ``.venv/bin/python benchmarks/bench_grading.py``.

1. A class of N generated assignment-1 submissions (solutions and common mistakes, cycled) graded with
   ``--jobs 1`` with cold sandboxes (each started when its job comes: the cost before warm sandboxes), ``--jobs 1``,
   ``--jobs 2`` and through a local Dask cluster of 2 workers started as separate processes; prints submissions
   per minute, the sandbox and judge time per submission, and the speedup over ``--jobs 1``.
2. The per-submission dispatch overhead: M trivial submissions of a one-cell tiny notebook graded through the same
   code path (local pool and Dask) give the instructor's own CPU per submission (prepare and record: the run and
   its judgment happen on the worker), and 200 trivial results sent through the same pool give its round trip. (Wall time minus the sandboxed runs' time
   does not work: a "trivial" sandbox still starts Python, a kernel and torch, ~5 core-seconds, so the CPU is
   saturated and the runs' own times overlap.)
3. The expected time for 10,000 submissions on 50 workers from the measured cost per submission on a worker (its
   run and its judgment) and the instructor's serial cost per submission (prepare, record, the round trip).

Run it on a quiet machine: every figure is a wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "fixtures"))
sys.path.insert(0, str(HERE.parent / "tests" / "fixtures" / "submissions"))
sys.path.insert(0, str(HERE.parent / "tests"))

KINDS = ["solution", "other_style", "forgot_norm", "double_norm", "off_by_one", "crash"]


def _class(folder: Path, n: int) -> None:
    import build

    roster = {f"s{i:03d}_{KINDS[i % len(KINDS)]}": (KINDS[i % len(KINDS)], None) for i in range(n)}
    build.write_class(folder, roster)


def _timed(**kwargs) -> tuple[float, object]:
    from lensref.course.grading.grader import grade

    start = time.time()
    report = grade(progress=lambda m: None, **kwargs)
    return time.time() - start, report


ROUND_TRIPS = 200
PAYLOAD = {"executed/tiny.ipynb": b"x" * 40_000, "outputs/tiny/test.json": b"x" * 200}  # a trivial run's result


def _echo(payload):
    return payload


def _round_trip(address: str | None, n: int) -> float:
    """Seconds per submission to send a trivial result's bytes through the pool and back, ``n`` at a time."""
    if address is None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            start = time.time()
            for f in [pool.submit(_echo, PAYLOAD) for _ in range(n)]:
                f.result()
            return (time.time() - start) / n
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.gather(client.map(_echo, [PAYLOAD] * 4, pure=False))  # connections up
        start = time.time()
        client.gather(client.map(_echo, [PAYLOAD] * n, pure=False))
        return (time.time() - start) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=12, help="0: measure the dispatch overhead only")
    parser.add_argument("--trivial", type=int, default=200)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import tiny_course
    from dask_cluster import Cluster  # the same scheduler/worker processes the tests start

    out: dict = {"submissions": args.submissions, "trivial": args.trivial}
    with tempfile.TemporaryDirectory(prefix="lensref-bench-grading-") as tmp:
        tmp = Path(tmp)
        _class(tmp / "submitted", args.submissions)
        cluster = Cluster(tmp)
        try:
            one_core = {"LENSREF_GRADE_THREADS": "1"}  # two workers share these 2 cores: one thread each
            cluster.add_worker("w1", one_core)
            cluster.add_worker("w2", one_core)
            cluster.wait_for_workers(2)
            runs = {}
            for label, extra in (
                ()
                if args.submissions == 0
                else (
                    ("jobs 1, cold sandboxes", {"jobs": 1, "warm": False}),
                    ("jobs 1", {"jobs": 1}),
                    ("jobs 2", {"jobs": 2}),
                    ("dask 2 workers", {"scheduler": cluster.address}),
                )
            ):
                seconds, report = _timed(
                    assignment="01-logit-lens", submitted=tmp / "submitted", out=tmp / label.replace(" ", "-"), **extra
                )
                per = [r.seconds for r in report.results]
                runs[label] = {
                    "seconds": seconds,
                    "per_minute": 60 * args.submissions / seconds,
                    "sandbox_s": sum(r.phases.get("sandbox", 0) for r in report.results) / len(per),
                    "judge_record_s": sum(r.phases.get("judge", 0) + r.phases.get("record", 0) for r in report.results)
                    / len(per),
                    "instructor_cpu_s": report.instructor_cpu_per_submission() or 0.0,
                }
                print(
                    f"{label:22s} {seconds:7.1f} s  {runs[label]['per_minute']:5.2f} submissions/min, "
                    f"sandbox {runs[label]['sandbox_s']:.1f} s + judge/record {runs[label]['judge_record_s']:.1f} s "
                    "per submission",
                    flush=True,
                )
            base = runs["jobs 1"]["seconds"] if runs else 1.0
            for run in runs.values():
                run["speedup"] = base / run["seconds"]
            out["class"] = runs

            course = tiny_course.make_course(tmp / "tiny")
            tiny_course.make_class(course / "submitted", args.trivial)
            overhead = {}
            for label, extra in (("local 2", {"jobs": 2}), ("dask 2 workers", {"scheduler": cluster.address})):
                seconds, report = _timed(
                    assignment=tiny_course.ASSIGNMENT,
                    submitted=course / "submitted",
                    out=tmp / f"tiny-{label.replace(' ', '-')}",
                    root=course,
                    **extra,
                )
                own = report.instructor_cpu_per_submission() or 0.0
                trip = _round_trip(cluster.address if "dask" in label else None, ROUND_TRIPS)
                overhead[label] = {
                    "seconds": seconds,
                    "grader_ms": 1000 * own,
                    "round_trip_ms": 1000 * trip,
                    "overhead_ms": 1000 * (own + trip),
                }
                print(
                    f"dispatch {label:15s} {overhead[label]['overhead_ms']:6.1f} ms per submission: the instructor's CPU "
                    f"{overhead[label]['grader_ms']:.1f} ms (prepare, record) + {1000 * trip:.1f} ms through "
                    f"the pool (wall {seconds:.0f} s for {args.trivial} trivial submissions, their sandboxes included)",
                    flush=True,
                )
            out["dispatch"] = overhead
        finally:
            cluster.close()

    # On a cluster each worker runs and judges its own submissions in parallel, while this machine only prepares and
    # records every submission in turn (one writer): the slower of the two sets the pace.
    if not runs:  # --submissions 0: the dispatch overhead only
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        return 0
    dask_run = runs["dask 2 workers"]
    worker_s = dask_run["seconds"] * 2 / args.submissions  # one worker's time per submission: its run and judgment
    serial_s = dask_run["instructor_cpu_s"] + overhead["dask 2 workers"]["round_trip_ms"] / 1000
    workers = 50
    estimate = max(10_000 * worker_s / workers, 10_000 * serial_s)
    out["estimate_10000_on_50_workers_h"] = estimate / 3600
    print("\n| run | wall s | submissions/min | speedup over --jobs 1 |\n|---|---|---|---|")
    for label, run in runs.items():
        print(f"| {label} | {run['seconds']:.0f} | {run['per_minute']:.2f} | {run['speedup']:.2f} |")
    print(
        f"\ndispatch overhead: local {overhead['local 2']['overhead_ms']:.0f} ms, "
        f"dask {overhead['dask 2 workers']['overhead_ms']:.0f} ms per submission"
    )
    print(
        f"10,000 submissions on {workers} workers like these: about {estimate / 3600:.1f} h "
        f"({worker_s:.0f} s per submission on a worker, its judgment included; the instructor's machine "
        f"{serial_s:.3f} s preparing, dispatching and recording each, one at a time: "
        f"{'bound by the workers' if 10_000 * worker_s / workers >= 10_000 * serial_s else 'bound by the instructor'})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

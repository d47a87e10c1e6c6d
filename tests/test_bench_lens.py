"""The lens benchmark (benchmarks/bench_lens.py): its records and its naive baseline on a tiny model, and
``lensref bench`` on the default model at a tiny size (no timing is asserted)."""

import functools
import json

import pytest
import torch

from benchmarks import bench_lens as bench
from benchmarks.bench_lens import BenchRecord, bench_tokens, lens_grid, naive_grid, run_bench, target_for
from lensref import LensError, tiny_model
from lensref.cli import main

TINY = functools.partial(tiny_model, "llama")


@pytest.fixture(scope="module")
def lm():
    return tiny_model("llama")


def test_naive_baseline_matches_lensref(lm):
    ids = bench_tokens(lm, 24)
    target = target_for(ids)
    lens, naive = lens_grid(lm, ids, target), naive_grid(lm, ids, target)
    assert lens.top_ids.shape == naive.top_ids.shape == (lm.n_layers + 1, 24, 5)
    assert torch.equal(lens.top_ids, naive.top_ids)
    assert torch.equal(lens.target_rank, naive.target_rank)
    for name in ("top_probs", "entropy", "kl_to_final", "target_prob"):
        assert torch.allclose(getattr(lens, name), getattr(naive, name), atol=1e-5), name
    assert naive.kl_to_final[-1].abs().max().item() < 1e-5  # the naive version must not norm the last state twice


def test_records_have_the_documented_fields(tmp_path):
    records = run_bench(sizes=[8, 16], repeats=1, load=TINY, memory=True)
    assert [r.T for r in records] == [8, 16]
    for r in records:
        assert isinstance(r, BenchRecord)
        d = r.to_dict()
        assert set(d) == {"T", "forward_s", "lens_s", "naive_s", "floor_s", "lens_peak_mb", "naive_peak_mb"}
        assert isinstance(d["T"], int)
        assert all(isinstance(d[k], float) and d[k] > 0 for k in ("forward_s", "lens_s", "naive_s", "floor_s"))
        assert all(isinstance(d[k], float) and d[k] >= 0 for k in ("lens_peak_mb", "naive_peak_mb"))


class FakeClock:
    """``perf_counter`` for the benchmark: each fake method advances it by its next scripted duration."""

    def __init__(self, durations: dict[str, list[float]]):
        self.now = 1000.0
        self.durations = {name: list(values) for name, values in durations.items()}
        self.calls: list[str] = []

    def perf_counter(self) -> float:
        return self.now

    def method(self, name: str):
        def run(*args, **kwargs):
            self.calls.append(name)
            self.now += self.durations[name].pop(0)

        return run


def test_records_are_medians_of_interleaved_runs_and_the_floor_adds_the_matmul(monkeypatch):
    """A scripted clock: every figure of the record is the median it must be, and the methods take turns."""
    clock = FakeClock(
        {  # the first value of each list is the untimed warm-up call
            "forward": [50, 1, 3, 2],
            "lens": [50, 6, 4, 5],
            "naive": [50, 30, 10, 20],
            "matmul": [50, 9, 3, 4],
        }
    )
    monkeypatch.setattr(bench, "time", clock)
    for name, attr in (("forward", "forward"), ("lens", "lens_grid"), ("naive", "naive_grid")):
        monkeypatch.setattr(bench, attr, clock.method(name))
    monkeypatch.setattr(bench, "floor_matmul", lambda lm, T: clock.method("matmul"))
    lines = []
    [record] = bench.run_bench(sizes=[8], repeats=3, load=TINY, memory=False, log=lines.append)
    assert (record.T, record.forward_s, record.lens_s, record.naive_s) == (8, 2, 5, 20)
    assert record.floor_s == 2 + 4  # the forward pass's median plus the matmul's median
    assert record.lens_peak_mb is None and record.naive_peak_mb is None
    assert record.lens_over_floor == 5 / 6 and record.naive_over_lens == 4
    assert clock.calls == [
        "forward",
        "lens",
        "naive",  # warm-up, then each repeat starts one method later
        "forward",
        "lens",
        "naive",
        "matmul",
        "matmul",
        "lens",
        "naive",
        "forward",
        "matmul",
        "naive",
        "forward",
        "lens",
        "matmul",
    ]
    assert all(not values for values in clock.durations.values())
    assert lines == [record.format_row()]
    assert lines[0].split() == ["8", "2.000", "6.000", "5.000", "20.000", "0.83", "4.00", "-", "-"]
    assert bench.format_table([record]).splitlines() == [bench.HEADER, lines[0]]


@pytest.mark.real_model
def test_cli_writes_json_list(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--sizes", "8", "--repeats", "1", "--no-memory", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert isinstance(data, list) and data[0]["T"] == 8 and data[0]["lens_peak_mb"] is None
    assert "lens/floor" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sizes", "8,x"], "--sizes"),
        (["--sizes", "0"], "--sizes"),
        (["--repeats", "0"], "--repeats"),
        (["--sizes", "100000"], "context"),
    ],
)
@pytest.mark.real_model
def test_cli_rejects_bad_input(argv, message, capsys):
    assert main(["bench", "--no-memory", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_bad_length_is_a_lens_error(lm):
    with pytest.raises(LensError):
        bench_tokens(lm, 0)

"""Every option of every ``lensref`` subcommand does what its help says, and every bad value or bad combination
is one line on stderr with exit status 2 (never a traceback).

Models are tiny random ones (``load_model`` is replaced in the command modules); the errors that come before
any model is loaded (unknown device, missing model folder, usage mistakes) run the real code, some of them in a
child process to show that nothing but the one line reaches the terminal. :data:`COVERAGE` names, for each
option of the real parser, the tests that exercise it; :func:`test_every_option_of_every_subcommand_is_tested`
fails when an option is added without a test.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lensref import logit_lens, tiny_model
from lensref.cli import build_parser, main

TESTS = Path(__file__).resolve().parent
PNG = b"\x89PNG\r\n\x1a\n"
PROMPT = "hello world"


@pytest.fixture(scope="module")
def lm():
    return tiny_model("llama")


@pytest.fixture
def calls():
    return []


@pytest.fixture
def use_tiny(monkeypatch, lm, calls):
    """Every subcommand gets the tiny model; ``calls`` records what ``load_model`` was asked for."""

    def fake(spec=None, device="cpu"):
        calls.append((spec, device))
        return lm

    for module in ("lens", "logitdiff", "dla", "patchscope"):
        monkeypatch.setattr(f"lensref.commands.{module}.load_model", fake)
    monkeypatch.setattr("lensref.models.load_model", fake)  # tuned imports it when it runs
    return lm


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own exits (usage mistakes)
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(capsys, argv, message: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2, (argv, out, err)
    assert err.startswith(f"error: {message}") or err.startswith("error: lensref") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# --- lens ----------------------------------------------------------------------------------------------------


def test_lens_prints_one_line_per_layer(use_tiny, capsys):
    code, out, _ = run(capsys, "lens", PROMPT)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 + use_tiny.n_layers + 1
    assert lines[0] == "tiny-llama: next-token predictions after 'd'"
    assert lines[1].split() == ["layer", "entropy", "KL", "top", "tokens"]
    assert [line.split()[0] for line in lines[2:]] == ["0", "1", "2", "3"]
    assert all(len(line.split()) == 3 + 2 * 5 for line in lines[2:])  # layer, entropy, KL, 5 x (token, p)
    assert float(lines[-1].split()[2]) == 0.0  # the last layer's KL to itself


def test_lens_top_k_and_target(use_tiny, capsys):
    code, out, _ = run(capsys, "lens", PROMPT, "--top-k", "2", "--target", "e")
    expected = logit_lens(use_tiny, PROMPT, target="e", top_k=2)
    rows = out.splitlines()[2:]
    assert code == 0 and "target p / rank" in out.splitlines()[1]
    for layer, row in enumerate(rows):
        fields = row.split()
        assert len(fields) == 3 + 3 + 2 * 2  # layer, entropy, KL, p, /, rank, 2 x (token, p)
        assert float(fields[3]) == pytest.approx(float(expected.target_prob[layer, -1]), abs=1e-4)
        assert int(fields[5]) == int(expected.target_rank[layer, -1])


def test_lens_json(use_tiny, capsys, tmp_path):
    path = tmp_path / "lens.json"
    code, _, _ = run(capsys, "lens", PROMPT, "--target", "o", "--top-k", "3", "--json", str(path))
    data = json.loads(path.read_text())
    expected = logit_lens(use_tiny, PROMPT, target="o", top_k=3)
    assert code == 0 and data["model"] == "tiny-llama" and data["tokens"] == list(PROMPT)
    assert data["target"] == {"text": "o", "id": ord("o")}
    assert [layer["layer"] for layer in data["layers"]] == [0, 1, 2, 3]
    cell = data["layers"][2]["positions"][4]
    assert [t["id"] for t in cell["top"]] == expected.top_ids[2, 4].tolist()
    assert cell["target_rank"] == int(expected.target_rank[2, 4])
    assert cell["kl_to_final"] == pytest.approx(float(expected.kl_to_final[2, 4]), abs=1e-6)


@pytest.mark.parametrize("name, magic", [("grid.png", PNG), ("grid.svg", b"<?xml"), ("grid.pdf", b"%PDF")])
def test_lens_plot_formats(use_tiny, capsys, tmp_path, name, magic):
    path = tmp_path / name
    code, _, _ = run(capsys, "lens", PROMPT, "--plot", str(path))
    assert code == 0 and path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


@pytest.mark.parametrize(
    "argv, colour",
    [
        ([], "prob"),
        (["--colour-by", "prob"], "prob"),
        (["--colour-by", "entropy"], "entropy"),
        (["--colour-by", "kl"], "kl"),
        (["--colour-by", "rank", "--target", "e"], "rank"),
    ],
)
def test_lens_colour_by_reaches_the_grid(use_tiny, capsys, tmp_path, monkeypatch, argv, colour):
    import lensref.plotting as plotting

    seen = []
    real = plotting.plot_grid
    monkeypatch.setattr(plotting, "plot_grid", lambda result, **kw: seen.append(kw["colour_by"]) or real(result, **kw))
    path = tmp_path / "g.png"
    code, _, _ = run(capsys, "lens", PROMPT, "--plot", str(path), *argv)
    assert code == 0 and seen == [colour] and path.read_bytes().startswith(PNG)


def test_lens_tuned_reads_through_the_translators(use_tiny, capsys, tmp_path):
    from lensref.tuned import TunedLens, save_tuned_lens

    lens = TunedLens(use_tiny.n_layers, use_tiny.adapter.d_model)
    with torch.no_grad():
        lens.weight.add_(0.2 * torch.randn(lens.weight.shape, generator=torch.Generator().manual_seed(0)))
    folder = save_tuned_lens(lens, use_tiny, tmp_path / "lens")
    _, plain, _ = run(capsys, "lens", PROMPT, "--json", str(tmp_path / "plain.json"))
    code, tuned, _ = run(capsys, "lens", PROMPT, "--tuned", str(folder), "--json", str(tmp_path / "tuned.json"))
    expected = logit_lens(use_tiny, PROMPT, translator=lens)
    data = json.loads((tmp_path / "tuned.json").read_text())
    assert code == 0 and tuned != plain
    assert data["layers"][1]["positions"][-1]["entropy"] == pytest.approx(float(expected.entropy[1, -1]), abs=1e-5)
    assert tuned.splitlines()[-1] == plain.splitlines()[-1]  # the last layer is never translated


def test_lens_model_and_device_reach_load_model(use_tiny, capsys, calls):
    assert run(capsys, "lens", PROMPT, "--model", "some/model", "--device", "cpu")[0] == 0
    assert run(capsys, "lens", PROMPT)[0] == 0
    assert calls == [("some/model", "cpu"), (None, "cpu")]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--colour-by", "rank", "--plot", "{tmp}/g.png"],
            "--colour-by rank colours each cell by the target's rank; add --target TOKEN",
        ),
        (["--colour-by", "kl"], "--colour-by kl colours the grid figure; add --plot FILE"),
        (["--colour-by", "rank", "--target", "e"], "--colour-by rank colours the grid figure; add --plot FILE"),
        (["--colour-by", "pink", "--plot", "{tmp}/g.png"], "argument --colour-by: invalid choice: 'pink'"),
        (["--top-k", "0"], "--top-k must be at least 1, got 0"),
        (["--top-k", "-3"], "--top-k must be at least 1, got -3"),
        (["--top-k", "513"], "--top-k 513 is more than the 512 tokens of tiny-llama's vocabulary"),
        (["--top-k", "two"], "argument --top-k: invalid int value: 'two'"),
        (["--plot", "{tmp}/missing/g.png"], "--plot {tmp}/missing/g.png: folder {tmp}/missing does not exist"),
        (["--plot", "{tmp}"], "--plot {tmp}: is a folder; give a file name"),
        (["--plot", "{tmp}/g.xyz"], "--plot {tmp}/g.xyz: cannot write a .xyz figure; use one of .png"),
        (["--json", "{tmp}/missing/r.json"], "--json {tmp}/missing/r.json: folder {tmp}/missing does not exist"),
        (["--json", "{tmp}"], "--json {tmp}: is a folder; give a file name"),
        (["--target", "ab"], "the target 'ab' is 2 tokens"),
        (["--target", ""], "the target is empty"),
        (["--tuned", "{tmp}/nolens"], "no tuned lens at {tmp}/nolens"),
        (["--device"], "argument --device: expected one argument"),
    ],
)
def test_lens_bad_options_are_one_line(use_tiny, capsys, tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    one_line_error(capsys, ["lens", PROMPT, *argv], message.replace("{tmp}", str(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def test_lens_bad_prompts_are_one_line(use_tiny, capsys):
    one_line_error(capsys, ["lens", ""], "the prompt is empty")
    one_line_error(capsys, ["lens", "x" * 300], "the prompt is 300 tokens long; this model reads at most 256")
    one_line_error(capsys, ["lens"], "lensref lens: the following arguments are required: prompt")


def test_colour_by_rank_without_target_in_a_real_process(tmp_path):
    """The acceptance case, end to end: one line on stderr, exit status 2, no model loaded, no file written."""
    plot = tmp_path / "grid.png"
    proc = subprocess.run(
        [sys.executable, "-m", "lensref", "lens", "The Eiffel Tower is in", "--colour-by", "rank", "--plot", str(plot)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "LENSREF_CACHE": str(tmp_path / "cache")},
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: --colour-by rank colours each cell by the target's rank; add --target TOKEN\n"
    assert proc.stdout == "" and not plot.exists() and not (tmp_path / "cache").exists()


# --- the model options every model command shares: real code, nothing loaded --------------------------------

MODEL_COMMANDS = [
    ["lens", PROMPT],
    ["logitdiff", PROMPT, "--target", "a", "--distractor", "b"],
    ["dla", PROMPT, "--target", "a", "--distractor", "b"],
    ["patchscope", PROMPT],
    ["tuned", "train"],
    ["tuned", "eval"],
]


@pytest.mark.parametrize("argv", MODEL_COMMANDS, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize(
    "option, message",
    [
        (["--device", "cuda"], "--device cuda was asked for but no CUDA GPU is available here; use --device cpu"),
        (["--device", "tpu"], "unknown device 'tpu'; use cpu or cuda"),
        (["--model", "./no-such-folder"], "model path './no-such-folder' does not exist"),
    ],
)
def test_model_and_device_errors_are_one_line(capsys, argv, option, message):
    if option[1] == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    one_line_error(capsys, [*argv, *option], message)


def test_bench_model_error_is_one_line(capsys):
    one_line_error(
        capsys, ["bench", "--model", "./no-such-folder", "--no-memory"], "model path './no-such-folder' does not exist"
    )


# --- logitdiff -----------------------------------------------------------------------------------------------


def test_logitdiff_position_json_and_plot(use_tiny, capsys, tmp_path, calls):
    out_json, out_png = tmp_path / "d.json", tmp_path / "d.png"
    code, out, _ = run(
        capsys,
        "logitdiff",
        PROMPT,
        "--target",
        "a",
        "--distractor",
        "b",
        "--position",
        "4",
        "--json",
        str(out_json),
        "--plot",
        str(out_png),
        "--model",
        "m",
        "--device",
        "cpu",
    )
    lines = out.splitlines()
    assert code == 0 and lines[0] == "tiny-llama: logit a - logit b after 'o'" and calls == [("m", "cpu")]
    data = json.loads(out_json.read_text())
    assert data["target"] == {"text": "a", "id": 97} and data["distractor"] == {"text": "b", "id": 98}
    assert [float(line.split()[1]) for line in lines[2:6]] == pytest.approx(
        [layer["logit_diff"][4] for layer in data["layers"]], abs=1e-3
    )
    assert out_png.read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--target", "a"], "lensref logitdiff: the following arguments are required: --distractor"),
        (["--distractor", "a"], "lensref logitdiff: the following arguments are required: --target"),
        (["--target", "a", "--distractor", "a"], "the target and distractor are the same token ('a')"),
        (["--target", "a", "--distractor", "b", "--position", "11"], "position 11 is out of range"),
        (["--target", "a", "--distractor", "b", "--position", "x"], "argument --position: invalid int value: 'x'"),
        (["--target", "a", "--distractor", "b", "--plot", "{tmp}/no/d.png"], "--plot {tmp}/no/d.png: folder"),
        (["--target", "a", "--distractor", "b", "--plot", "{tmp}/d.doc"], "--plot {tmp}/d.doc: cannot write a .doc"),
        (["--target", "a", "--distractor", "b", "--json", "{tmp}/no/d.json"], "--json {tmp}/no/d.json: folder"),
    ],
)
def test_logitdiff_bad_options_are_one_line(use_tiny, capsys, tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    one_line_error(capsys, ["logitdiff", PROMPT, *argv], message.replace("{tmp}", str(tmp_path)))


# --- dla -----------------------------------------------------------------------------------------------------


def test_dla_position_top_json_and_plot(use_tiny, capsys, tmp_path, calls):
    out_json, out_png = tmp_path / "a.json", tmp_path / "a.png"
    code, out, _ = run(
        capsys,
        "dla",
        PROMPT,
        "--target",
        "a",
        "--distractor",
        "b",
        "--position",
        "2",
        "--top",
        "2",
        "--json",
        str(out_json),
        "--plot",
        str(out_png),
        "--model",
        "m",
        "--device",
        "cpu",
    )
    lines = out.splitlines()
    assert code == 0 and calls == [("m", "cpu")]
    assert lines[0] == "tiny-llama: logit a - logit b after 'l'"
    assert lines[2] == "largest components:" and lines[5] == "largest heads:" and len(lines) == 8
    data = json.loads(out_json.read_text())
    assert data["position"] == 2 and data["sum_of_components"] == pytest.approx(data["model_logit_diff"], abs=1e-5)
    assert out_png.read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "lensref dla: the following arguments are required: --target, --distractor"),
        (["--target", "a", "--distractor", "b", "--top", "0"], "--top must be at least 1, got 0"),
        (["--target", "a", "--distractor", "b", "--position", "-12"], "position -12 is out of range"),
        (["--target", "ab", "--distractor", "b"], "the target 'ab' is 2 tokens"),
        (["--target", "a", "--distractor", "b", "--plot", "{tmp}"], "--plot {tmp}: is a folder"),
        (["--target", "a", "--distractor", "b", "--json", "{tmp}/no/a.json"], "--json {tmp}/no/a.json: folder"),
    ],
)
def test_dla_bad_options_are_one_line(use_tiny, capsys, tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    one_line_error(capsys, ["dla", PROMPT, *argv], message.replace("{tmp}", str(tmp_path)))


# --- patchscope ----------------------------------------------------------------------------------------------


def test_patchscope_options(use_tiny, capsys, tmp_path, calls):
    out = tmp_path / "p.json"
    code, text, _ = run(
        capsys,
        "patchscope",
        PROMPT,
        "--position",
        "1",
        "--layers",
        "0,2-3",
        "--tokens",
        "3",
        "--target-prompt",
        "x -> x ; # ->",
        "--placeholder",
        "#",
        "--target-layer",
        "1",
        "--json",
        str(out),
        "--model",
        "m",
        "--device",
        "cpu",
    )
    lines = text.splitlines()
    assert code == 0 and calls == [("m", "cpu")]
    assert lines[0].startswith("tiny-llama -> tiny-llama: 'e' (position 1) read through 'x -> x ; # ->'")
    assert [line.split()[:2] for line in lines[2:]] == [["0", "1"], ["2", "1"], ["3", "1"]]
    data = json.loads(out.read_text())
    assert [r["layer"] for r in data["continuations"]] == [0, 2, 3]
    assert all(r["target_layer"] == 1 and len(r["tokens"]) == 3 for r in data["continuations"])


def test_patchscope_target_model(monkeypatch, capsys, tmp_path):
    models = {None: tiny_model("llama", seed=0), "wide": tiny_model("gpt2", seed=1, d_model=48, n_layers=2)}
    monkeypatch.setattr("lensref.commands.patchscope.load_model", lambda spec=None, **k: models[spec])
    code, text, _ = run(capsys, "patchscope", PROMPT, "--layers", "3", "--tokens", "1", "--target-model", "wide")
    assert code == 0 and text.startswith("tiny-llama -> tiny-gpt2:")
    assert text.splitlines()[2].split()[:2] == ["3", "2"]  # the same relative depth in the other model


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tokens", "0"], "--tokens must be at least 1, got 0"),
        (["--layers", "9"], "layer 9 is out of range"),
        (["--layers", "a-b"], "cannot read layers 'a-b'"),
        (["--placeholder", "zz"], "the placeholder 'zz' is not a token of the target prompt"),
        (["--target-prompt", "no marker here"], "the placeholder '?' is not a token of the target prompt"),
        (["--target-prompt", " "], "the prompt is empty"),
        (["--target-layer", "99"], "target layer 99 is out of range"),
        (["--position", "99"], "position 99 is out of range"),
        (["--json", "{tmp}/no/p.json"], "--json {tmp}/no/p.json: folder {tmp}/no does not exist"),
    ],
)
def test_patchscope_bad_options_are_one_line(use_tiny, capsys, tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    one_line_error(capsys, ["patchscope", PROMPT, *argv], message.replace("{tmp}", str(tmp_path)))


# --- quiz: the options the quiz test files do not reach --------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["quiz", "take", "--seed", "3"], "--seed only chooses the order --shuffle shows; add --shuffle"),
        (["quiz", "take", "--json", "{tmp}/no/t.json"], "--json {tmp}/no/t.json: folder {tmp}/no does not exist"),
        (["quiz", "take", "--bank", "{tmp}/none.yaml"], "{tmp}/none.yaml: quiz bank not found"),
        (["quiz", "grade", "{tmp}/a.json", "--json", "{tmp}/no/r.json"], "--json {tmp}/no/r.json: folder"),
        (["quiz", "grade", "{tmp}/none.json"], "{tmp}/none.json: no such answers file"),
        (["quiz", "grade"], "lensref quiz grade: the following arguments are required: answers"),
        (["quiz", "export"], "lensref quiz export: the following arguments are required: --format"),
        (["quiz", "export", "--format", "csv"], "argument --format: invalid choice: 'csv'"),
        (["quiz", "grade-class", "{tmp}/none.csv"], "{tmp}/none.csv: no such responses file"),
        (["quiz", "check", "--bank", "{tmp}/none.yaml"], "{tmp}/none.yaml: quiz bank not found"),
        (["quiz", "wat"], "lensref quiz: argument ACTION: invalid choice: 'wat'"),
    ],
)
def test_quiz_bad_options_are_one_line(capsys, tmp_path, argv, message):
    (tmp_path / "a.json").write_text('{"1": "a"}', encoding="utf-8")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    one_line_error(capsys, argv, message.replace("{tmp}", str(tmp_path)))


def test_quiz_bank_option_reads_another_bank(capsys, tmp_path):
    bank = tmp_path / "bank.yaml"
    bank.write_text(
        "id: tiny\ntitle: Tiny\nquestions:\n  - id: one\n    question: Which?\n    section: intro\n"
        "    answer: Red\n    options:\n      - text: Red\n        explanation: Right.\n"
        "      - text: Blue\n        explanation: Wrong.\n",
        encoding="utf-8",
    )
    answers = tmp_path / "a.json"
    answers.write_text('{"one": "b"}', encoding="utf-8")
    assert run(capsys, "quiz", "check", "--bank", str(bank))[1].startswith(f"ok: {bank}: 1 questions, 2 options")
    code, out, _ = run(capsys, "quiz", "grade", str(answers), "--bank", str(bank))
    assert code == 0 and out.splitlines()[-1] == "score: 0/1"
    code, out, _ = run(
        capsys,
        "quiz",
        "export",
        "--format",
        "gift",
        "-o",
        "-",
        "--bank",
        str(bank),
        "--base-url",
        "https://example.org/course",
    )
    assert code == 0 and "Which?" in out and "~Blue#" in out
    assert out.count("example.org/course/intro.html") == 2  # each option's explanation links the book


def test_quiz_grade_class_options(capsys, tmp_path):
    sample = TESTS / "fixtures" / "quiz" / "responses.csv"
    rows = sample.read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    dee = rows[4].split(",")
    dee[header.index("7")] = "-"  # dee leaves a question blank (Moodle writes "-")
    blank = tmp_path / "blank.csv"
    blank.write_text("\n".join(rows[:4] + [",".join(dee)] + rows[5:]) + "\n", encoding="utf-8")
    out = tmp_path / "results"
    one_line_error(capsys, ["quiz", "grade-class", str(blank), "--out", str(out)], "")
    assert not out.exists()
    code, text, _ = run(
        capsys, "quiz", "grade-class", str(blank), "--out", str(out), "--blank-as-wrong", "--id-column", "email"
    )
    assert code == 0 and text.startswith("graded 4 learners on 15 questions")
    assert sorted(p.name for p in out.iterdir()) == ["difficulty.png", "learners.csv", "questions.csv"]
    learners = (out / "learners.csv").read_text(encoding="utf-8")
    assert "ada@example.org" in learners and "ignored columns: learner" in text
    one_line_error(
        capsys, ["quiz", "grade-class", str(sample), "--out", str(blank)], f"--out {blank}: exists and is not a folder"
    )
    one_line_error(
        capsys,
        ["quiz", "grade-class", str(sample), "--out", str(out), "--bank", str(tmp_path / "b.yaml")],
        f"{tmp_path / 'b.yaml'}: quiz bank not found",
    )


def test_submit_course_option(capsys, tmp_path):
    notebook = TESTS.parent / "exercises" / "01-logit-lens" / "logit_lens.ipynb"
    out = tmp_path / "submitted"
    code, text, _ = run(
        capsys, "submit", str(notebook), "--student", "ada", "--out", str(out), "--course", str(TESTS.parent)
    )
    assert code == 0 and (out / "ada" / "01-logit-lens" / "logit_lens.ipynb").read_bytes() == notebook.read_bytes()
    one_line_error(
        capsys,
        ["submit", str(notebook), "--student", "ada", "--out", str(out), "--course", str(tmp_path)],
        f"{tmp_path / 'solutions'}: no such folder",
    )


# --- the coverage table ----------------------------------------------------------------------------------------

T = "test_cli_options.py::"
G = "test_grading_cli.py::"
E = "test_exercises_grading.py::"
C = "test_collect.py::"
X = "test_lms_grade_export.py::"
COVERAGE: dict[tuple[str, str], list[str]] = {
    ("lens", "prompt"): [T + "test_lens_prints_one_line_per_layer", T + "test_lens_bad_prompts_are_one_line"],
    ("lens", "--model"): [
        T + "test_lens_model_and_device_reach_load_model",
        T + "test_model_and_device_errors_are_one_line",
    ],
    ("lens", "--device"): [
        T + "test_lens_model_and_device_reach_load_model",
        T + "test_model_and_device_errors_are_one_line",
    ],
    ("lens", "--target"): [T + "test_lens_top_k_and_target", T + "test_lens_bad_options_are_one_line"],
    ("lens", "--top-k"): [T + "test_lens_top_k_and_target", T + "test_lens_bad_options_are_one_line"],
    ("lens", "--json"): [T + "test_lens_json", T + "test_lens_bad_options_are_one_line"],
    ("lens", "--plot"): [T + "test_lens_plot_formats", T + "test_lens_bad_options_are_one_line"],
    ("lens", "--colour-by"): [
        T + "test_lens_colour_by_reaches_the_grid",
        T + "test_lens_bad_options_are_one_line",
        T + "test_colour_by_rank_without_target_in_a_real_process",
    ],
    ("lens", "--tuned"): [
        T + "test_lens_tuned_reads_through_the_translators",
        T + "test_lens_bad_options_are_one_line",
    ],
    ("lens", "--site"): [
        "test_sites.py::test_the_cli_reads_at_a_site",
        "test_sites.py::test_the_cli_refuses_in_one_line",
    ],
    ("logitdiff", "prompt"): [T + "test_logitdiff_position_json_and_plot"],
    ("logitdiff", "--model"): [
        T + "test_logitdiff_position_json_and_plot",
        T + "test_model_and_device_errors_are_one_line",
    ],
    ("logitdiff", "--device"): [
        T + "test_logitdiff_position_json_and_plot",
        T + "test_model_and_device_errors_are_one_line",
    ],
    ("logitdiff", "--target"): [
        T + "test_logitdiff_position_json_and_plot",
        T + "test_logitdiff_bad_options_are_one_line",
    ],
    ("logitdiff", "--distractor"): [
        T + "test_logitdiff_position_json_and_plot",
        T + "test_logitdiff_bad_options_are_one_line",
    ],
    ("logitdiff", "--position"): [
        T + "test_logitdiff_position_json_and_plot",
        T + "test_logitdiff_bad_options_are_one_line",
    ],
    ("logitdiff", "--json"): [
        T + "test_logitdiff_position_json_and_plot",
        T + "test_logitdiff_bad_options_are_one_line",
    ],
    ("logitdiff", "--plot"): [
        T + "test_logitdiff_position_json_and_plot",
        T + "test_logitdiff_bad_options_are_one_line",
    ],
    ("logitdiff", "--site"): ["test_sites.py::test_the_cli_reads_at_a_site"],
    ("dla", "prompt"): [T + "test_dla_position_top_json_and_plot"],
    ("dla", "--model"): [T + "test_dla_position_top_json_and_plot", T + "test_model_and_device_errors_are_one_line"],
    ("dla", "--device"): [T + "test_dla_position_top_json_and_plot", T + "test_model_and_device_errors_are_one_line"],
    ("dla", "--target"): [T + "test_dla_position_top_json_and_plot", T + "test_dla_bad_options_are_one_line"],
    ("dla", "--distractor"): [T + "test_dla_position_top_json_and_plot", T + "test_dla_bad_options_are_one_line"],
    ("dla", "--position"): [T + "test_dla_position_top_json_and_plot", T + "test_dla_bad_options_are_one_line"],
    ("dla", "--top"): [T + "test_dla_position_top_json_and_plot", T + "test_dla_bad_options_are_one_line"],
    ("dla", "--json"): [T + "test_dla_position_top_json_and_plot", T + "test_dla_bad_options_are_one_line"],
    ("dla", "--plot"): [T + "test_dla_position_top_json_and_plot", T + "test_dla_bad_options_are_one_line"],
    ("patchscope", "prompt"): [T + "test_patchscope_options"],
    ("patchscope", "--model"): [T + "test_patchscope_options", T + "test_model_and_device_errors_are_one_line"],
    ("patchscope", "--device"): [T + "test_patchscope_options", T + "test_model_and_device_errors_are_one_line"],
    ("patchscope", "--position"): [T + "test_patchscope_options", T + "test_patchscope_bad_options_are_one_line"],
    ("patchscope", "--layers"): [T + "test_patchscope_options", T + "test_patchscope_bad_options_are_one_line"],
    ("patchscope", "--target-prompt"): [T + "test_patchscope_options", T + "test_patchscope_bad_options_are_one_line"],
    ("patchscope", "--placeholder"): [T + "test_patchscope_options", T + "test_patchscope_bad_options_are_one_line"],
    ("patchscope", "--target-layer"): [T + "test_patchscope_options", T + "test_patchscope_bad_options_are_one_line"],
    ("patchscope", "--tokens"): [T + "test_patchscope_options", T + "test_patchscope_bad_options_are_one_line"],
    ("patchscope", "--target-model"): [T + "test_patchscope_target_model"],
    ("patchscope", "--json"): [T + "test_patchscope_options", T + "test_patchscope_bad_options_are_one_line"],
    ("tuned train", "--model"): [
        "test_tuned_helpers.py::test_cli_train_options",
        T + "test_model_and_device_errors_are_one_line",
    ],
    ("tuned train", "--device"): [
        "test_tuned_helpers.py::test_cli_train_options",
        T + "test_model_and_device_errors_are_one_line",
    ],
    ("tuned train", "--out"): ["test_tuned_helpers.py::test_cli_train_options"],
    ("tuned train", "--text"): [
        "test_tuned_helpers.py::test_cli_train_options",
        "test_tuned_helpers.py::test_cli_train_bad_options_are_one_line",
    ],
    ("tuned train", "--preset"): [
        "test_tuned_helpers.py::test_cli_train_options",
        "test_tuned_helpers.py::test_cli_train_bad_options_are_one_line",
    ],
    ("tuned train", "--max-tokens"): [
        "test_tuned_helpers.py::test_cli_train_options",
        "test_tuned_helpers.py::test_cli_train_bad_options_are_one_line",
    ],
    ("tuned train", "--steps"): [
        "test_tuned_helpers.py::test_cli_train_options",
        "test_tuned_helpers.py::test_cli_train_bad_options_are_one_line",
    ],
    ("tuned train", "--quiet"): ["test_tuned_helpers.py::test_cli_train_options"],
    ("tuned eval", "--model"): [
        "test_tuned_helpers.py::test_cli_eval_options",
        T + "test_model_and_device_errors_are_one_line",
    ],
    ("tuned eval", "--device"): [
        "test_tuned_helpers.py::test_cli_eval_options",
        T + "test_model_and_device_errors_are_one_line",
    ],
    ("tuned eval", "--lens"): [
        "test_tuned_helpers.py::test_cli_eval_options",
        "test_tuned_helpers.py::test_cli_eval_bad_options_are_one_line",
    ],
    ("tuned eval", "--max-tokens"): [
        "test_tuned_helpers.py::test_cli_eval_options",
        "test_tuned_helpers.py::test_cli_eval_bad_options_are_one_line",
    ],
    ("tuned eval", "--json"): [
        "test_tuned_helpers.py::test_cli_eval_options",
        "test_tuned_helpers.py::test_cli_eval_bad_options_are_one_line",
    ],
    ("tuned eval", "--plot"): [
        "test_tuned_helpers.py::test_cli_eval_options",
        "test_tuned_helpers.py::test_cli_eval_bad_options_are_one_line",
    ],
    ("tuned eval", "--quiet"): ["test_tuned_helpers.py::test_cli_eval_options"],
    **{
        ("tuned import", option): ["test_tuned_lens_interop.py::test_the_cli_imports_and_exports"]
        for option in ("dir", "--model", "--device", "--out")
    },
    **{
        ("tuned export", option): ["test_tuned_lens_interop.py::test_the_cli_imports_and_exports"]
        for option in ("--model", "--device", "--lens", "--format", "--out")
    },
    ("check", "notebook"): ["test_check_submit.py::test_check_cli_exit_status_and_bad_input"],
    ("check", "--timeout"): ["test_check_submit.py::test_check_cli_exit_status_and_bad_input"],
    ("submit", "notebook"): [
        "test_check_submit.py::test_submit_zip_holds_the_layout_grade_reads",
        "test_check_submit.py::test_submit_refuses_what_is_not_the_courses",
    ],
    ("submit", "--student"): [
        "test_check_submit.py::test_submit_zip_holds_the_layout_grade_reads",
        "test_check_submit.py::test_submit_refuses_what_is_not_the_courses",
    ],
    ("submit", "--out"): [
        "test_check_submit.py::test_submit_refuses_what_is_not_the_courses",
        T + "test_submit_course_option",
    ],
    ("submit", "--course"): [T + "test_submit_course_option"],
    ("lab", "--work"): ["browser/test_lab.py::test_lensref_lab_command_prints_the_url_and_serves_the_work_folder"],
    ("lab", "--port"): ["browser/test_lab.py::test_lensref_lab_command_prints_the_url_and_serves_the_work_folder"],
    ("lab", "--no-browser"): [
        "browser/test_lab.py::test_lensref_lab_command_prints_the_url_and_serves_the_work_folder"
    ],
    ("bench", "--json"): ["test_bench_lens.py::test_cli_writes_json_list"],
    ("bench", "--sizes"): [
        "test_bench_lens.py::test_cli_writes_json_list",
        "test_bench_lens.py::test_cli_rejects_bad_input",
    ],
    ("bench", "--repeats"): [
        "test_bench_lens.py::test_cli_writes_json_list",
        "test_bench_lens.py::test_cli_rejects_bad_input",
    ],
    ("bench", "--model"): [T + "test_bench_model_error_is_one_line"],
    ("bench", "--no-memory"): ["test_bench_lens.py::test_cli_writes_json_list"],
    ("quiz take", "--bank"): [T + "test_quiz_bad_options_are_one_line"],
    ("quiz take", "--shuffle"): ["test_quiz_grading.py::test_take_shuffled_letters_follow_the_shown_order"],
    ("quiz take", "--seed"): [
        "test_quiz_grading.py::test_take_shuffled_letters_follow_the_shown_order",
        T + "test_quiz_bad_options_are_one_line",
    ],
    ("quiz take", "--json"): [
        "test_quiz_grading.py::test_take_piped_all_right",
        T + "test_quiz_bad_options_are_one_line",
    ],
    ("quiz grade", "--bank"): [T + "test_quiz_bank_option_reads_another_bank"],
    ("quiz grade", "answers"): [
        "test_quiz_grading.py::test_cli_grade_prints_results_and_writes_json",
        T + "test_quiz_bad_options_are_one_line",
    ],
    ("quiz grade", "--json"): [
        "test_quiz_grading.py::test_cli_grade_prints_results_and_writes_json",
        T + "test_quiz_bad_options_are_one_line",
    ],
    ("quiz grade-class", "--bank"): [T + "test_quiz_grade_class_options"],
    ("quiz grade-class", "responses"): [T + "test_quiz_grade_class_options", T + "test_quiz_bad_options_are_one_line"],
    ("quiz grade-class", "--out"): [T + "test_quiz_grade_class_options"],
    ("quiz grade-class", "--id-column"): [T + "test_quiz_grade_class_options"],
    ("quiz grade-class", "--blank-as-wrong"): [T + "test_quiz_grade_class_options"],
    ("quiz export", "--bank"): [T + "test_quiz_bank_option_reads_another_bank"],
    ("quiz export", "--format"): [
        "test_quiz_export.py::test_cli_export_writes_a_file",
        T + "test_quiz_bad_options_are_one_line",
    ],
    ("quiz export", "--output"): [
        "test_quiz_export.py::test_cli_export_to_stdout_and_bad_folder",
        T + "test_quiz_bank_option_reads_another_bank",
    ],
    ("quiz export", "--base-url"): [T + "test_quiz_bank_option_reads_another_bank"],
    ("quiz check", "--bank"): ["test_quiz_grading.py::test_cli_check", T + "test_quiz_bad_options_are_one_line"],
    ("collect", "inputs"): [
        C + "test_a_symlink_a_dotdot_member_and_a_1gb_member_are_three_refusals_and_the_honest_zips_are_collected",
        C + "test_bad_input_is_one_error_line_and_exit_status_2",
    ],
    ("collect", "--assignment"): [
        C + "test_a_moodle_download_is_collected_under_names_from_the_participants",
        C + "test_other_assignments_notebooks_are_left_out_with_assignment",
        C + "test_bad_input_is_one_error_line_and_exit_status_2",
    ],
    ("collect", "--submitted"): [
        C + "test_a_symlink_a_dotdot_member_and_a_1gb_member_are_three_refusals_and_the_honest_zips_are_collected"
    ],
    ("collect", "--force"): [C + "test_an_existing_submission_is_refused_without_force_and_replaced_with_it"],
    ("grade", "assignment"): [
        G + "test_limits_jobs_timeout_and_out_reach_the_run",
        E + "test_cli_bad_input_is_one_line_and_exit_2",
    ],
    ("grade", "--submitted"): [G + "test_submitted_folder_and_exit_1_when_one_submission_cannot_be_graded"],
    ("grade", "--out"): [G + "test_limits_jobs_timeout_and_out_reach_the_run"],
    ("grade", "--timeout"): [
        G + "test_limits_jobs_timeout_and_out_reach_the_run",
        E + "test_cli_bad_input_is_one_line_and_exit_2",
    ],
    ("grade", "--force"): [G + "test_force_regrades_what_is_unchanged"],
    ("grade", "--memory"): [
        G + "test_limits_jobs_timeout_and_out_reach_the_run",
        E + "test_cli_bad_input_is_one_line_and_exit_2",
    ],
    ("grade", "--max-procs"): [
        G + "test_limits_jobs_timeout_and_out_reach_the_run",
        E + "test_cli_bad_input_is_one_line_and_exit_2",
    ],
    ("grade", "--disk"): [
        G + "test_limits_jobs_timeout_and_out_reach_the_run",
        E + "test_cli_bad_input_is_one_line_and_exit_2",
    ],
    ("grade", "--no-sandbox"): [G + "test_no_sandbox_warns_and_grades_the_same"],
    ("grade", "--jobs"): [G + "test_limits_jobs_timeout_and_out_reach_the_run"],
    ("grade", "--scheduler"): ["test_grading_scale.py::test_a_scheduler_that_does_not_answer_is_one_line_and_exit_2"],
    ("grade", "--baseline"): [G + "test_baseline_prints_both_times_and_their_ratio"],
    ("grade export", "assignment"): [
        X + "test_an_unknown_assignment_or_no_gradebook_is_one_line",
        X + "test_grade_assignment_still_parses_as_before",
    ],
    ("grade export", "--format"): [
        X + "test_a_roster_by_student_folder_matches_without_collected_csv",
        X + "test_bad_input_is_one_line_and_exit_2",
    ],
    ("grade export", "--roster"): [
        X + "test_canvas_grades_parse_back_to_the_gradebook",
        X + "test_moodle_grades_parse_back_to_the_gradebook",
        X + "test_bad_input_is_one_line_and_exit_2",
    ],
    ("grade export", "--out"): [X + "test_canvas_grades_parse_back_to_the_gradebook"],
    ("grade export", "--feedback"): [
        X + "test_moodle_feedback_zip_names_every_participant",
        X + "test_canvas_feedback_files_name_user_and_submitted_file",
        X + "test_bad_input_is_one_line_and_exit_2",
    ],
    ("grade export", "--column"): [X + "test_canvas_grades_parse_back_to_the_gradebook"],
    ("grade export", "--graded"): [X + "test_an_unknown_assignment_or_no_gradebook_is_one_line"],
    ("grade export", "--submitted"): [X + "test_a_roster_by_student_folder_matches_without_collected_csv"],
    ("grade export", "--skip-unmatched"): [
        X + "test_a_roster_missing_students_lists_each_and_writes_nothing",
        X + "test_feedback_for_a_student_the_lms_never_saw_is_listed",
    ],
}


def parser_options() -> set[tuple[str, str]]:
    """(subcommand path, option) for every option and positional argument of the real parser."""
    found = set()

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, path + [name])
            elif not isinstance(action, argparse._HelpAction) and path:
                found.add(
                    (" ".join(path), max(action.option_strings, key=len) if action.option_strings else action.dest)
                )

    walk(build_parser(), [])
    return found


def test_source(reference: str) -> str:
    """The source of a test function, decorators included, from ``file::function``."""
    file, name = reference.split("::")
    source = (TESTS / file).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            lines = source.splitlines()
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return "\n".join(lines[first - 1 : node.end_lineno])
    raise AssertionError(f"{reference}: no such test")


test_source.__test__ = False  # a helper, not a test


# Subcommands whose options are covered elsewhere, each with the reason.
ELSEWHERE: dict[str, str] = {}


def test_every_option_of_every_subcommand_is_tested():
    commands = {cmd.split()[0] for cmd, _ in parser_options()}
    assert commands == {c.split()[0] for c, _ in COVERAGE} | set(ELSEWHERE), (
        "a subcommand is neither here nor ELSEWHERE"
    )
    options = {(cmd, opt) for cmd, opt in parser_options() if cmd.split()[0] not in ELSEWHERE}
    assert sorted(options - set(COVERAGE)) == [], "options without a test: add them to COVERAGE"
    assert sorted(set(COVERAGE) - options) == [], "COVERAGE names options the parser no longer has"
    for (command, option), references in COVERAGE.items():
        for reference in references:
            source = test_source(reference)
            word = option if option.startswith("-") else command.split()[-1]
            short = {"--output": "-o"}.get(option)
            assert word in source or (short and f'"{short}"' in source), f"{reference} never uses {option}"

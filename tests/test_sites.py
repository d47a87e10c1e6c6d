"""``--site pre|mid|post``: the default reads exactly as before, the other sites read inside each block, the last
row is the model's output at every site, parallel blocks refuse ``mid`` in one line, and the CLI and the grid say
which site they show."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from lensref import LensError, logit_lens, tiny_model
from lensref.cli import main
from lensref.logitdiff import logit_diff
from lensref.plotting import plot_grid
from lensref.tuned import TunedLens

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from byte_tokenizer import save_tiny  # noqa: E402

PROMPT = "The cat sat on"


@pytest.fixture(scope="module")
def lm():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def folders(lm, tmp_path_factory):
    root = tmp_path_factory.mktemp("sites")
    return {"llama": save_tiny(lm, root / "tiny-llama"), "gptj": save_tiny(tiny_model("gptj"), root / "tiny-gptj")}


def test_the_default_reads_as_before(lm):
    default, pre = logit_lens(lm, PROMPT, target="a"), logit_lens(lm, PROMPT, target="a", site="pre")
    assert "site" not in default.to_dict() and default.to_dict() == pre.to_dict()
    assert default.format_table().splitlines()[0] == "tiny-llama: next-token predictions after 'n'"
    assert "site" not in logit_diff(lm, PROMPT, "a", "b").to_dict()


def test_each_site_reads_its_own_states_and_ends_at_the_output(lm):
    results = {site: logit_lens(lm, PROMPT, keep_logits=True, site=site) for site in ("pre", "mid", "post")}
    L = lm.n_layers
    for site, result in results.items():
        assert torch.equal(result.logits[L], results["pre"].logits[L]), site
        assert result.to_dict().get("site", "pre") == site
    assert torch.allclose(results["post"].logits[: L - 1], results["pre"].logits[1:L])
    assert not torch.allclose(results["mid"].logits[1], results["pre"].logits[1])
    assert not torch.allclose(results["mid"].logits[1], results["post"].logits[1])
    diffs = {site: logit_diff(lm, PROMPT, "a", "b", site=site) for site in ("pre", "mid")}
    assert torch.equal(diffs["mid"].diff[L], diffs["pre"].diff[L]) and diffs["mid"].to_dict()["site"] == "mid"
    assert "(site mid)" in diffs["mid"].format_table().splitlines()[0]


def test_bad_sites_are_one_line(lm):
    with pytest.raises(LensError, match=r"^unknown site 'middle'; use one of pre, mid, post$"):
        logit_lens(lm, PROMPT, site="middle")
    with pytest.raises(LensError, match=r"^a tuned lens translates the states entering each block \(site pre\)"):
        logit_lens(lm, PROMPT, site="mid", translator=TunedLens(lm.n_layers, lm.adapter.d_model))
    with pytest.raises(LensError, match=r"^site 'mid' needs .* but gpt_neox \(use_parallel_residual=True\) runs"):
        logit_lens(tiny_model("gpt_neox"), PROMPT, site="mid")


def test_the_grid_title_names_the_site(lm):
    fig = plot_grid(logit_lens(lm, PROMPT, site="mid"))
    assert "site mid" in fig.axes[0].get_title()
    assert "site" not in plot_grid(logit_lens(lm, PROMPT)).axes[0].get_title()


def test_the_cli_reads_at_a_site(folders, tmp_path, capsys):
    out = tmp_path / "mid.json"
    assert main(["lens", PROMPT, "--model", str(folders["llama"]), "--site", "mid", "--json", str(out),
                 "--plot", str(tmp_path / "mid.png")]) == 0  # fmt: skip
    first = capsys.readouterr().out.splitlines()[0]
    assert (
        first
        == "tiny-llama: next-token predictions after 'n' (site mid: row l reads block l after attention, before the MLP)"
    )
    assert json.loads(out.read_text())["site"] == "mid"
    assert main(["logitdiff", PROMPT, "--model", str(folders["llama"]), "--target", "a", "--distractor", "b",
                 "--site", "post"]) == 0  # fmt: skip
    assert "(site post)" in capsys.readouterr().out.splitlines()[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--site", "mid"], "error: site 'mid' needs a point between attention and the MLP, but gptj runs them in "
                            "parallel on the same input; use site 'pre' or 'post'"),
        (["--site", "mid", "--tuned", "x"], "error: --tuned reads the states entering each block (--site pre), "
                                            "not --site mid"),
    ],
)  # fmt: skip
def test_the_cli_refuses_in_one_line(folders, capsys, args, message):
    assert main(["lens", PROMPT, "--model", str(folders["gptj"]), *args]) == 2
    assert capsys.readouterr().err.strip() == message

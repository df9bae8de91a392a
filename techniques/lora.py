"""`lora`: low-rank adapters through peft (LoRA, or DoRA with `use_dora`); the base weights freeze.

What it trades: each targeted d_out x d_in weight W gets a trainable update (alpha/r) * B @ A with
A: r x d_in, B: d_out x r, B initialised to zero (so training starts from the unmodified model).
Trainable parameters, gradients and optimizer states shrink from all weights to
r * (d_in + d_out) per targeted layer; the forward and backward still run through the full
frozen weights, so compute per token barely drops. DoRA adds a trainable magnitude vector per
output row and normalises the direction, which costs extra compute per step.

On a model whose block layers are already bitsandbytes 4-bit (after `nf4`), `apply` first runs
peft's k-bit training preparation (freeze, upcast non-quantized fp16/bf16 parameters to fp32), so
that `[nf4, lora]` is the same run as `qlora` with the same settings. Gradient checkpointing is
not switched on here (peft's default does): `grad_ckpt` is the technique that measures it.

Records (technique_records["lora"]): adapter_params, lora_layers, adapter_bytes (the adapter as
peft's save_pretrained writes it: adapter_model.safetensors; its size depends only on the shapes,
so it is measured right after the adapters are created), adapter_config_bytes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .base import PROBABILITY, Context, Range, Technique, at_least, register

ALL_LINEAR = "all-linear"  # peft: every Linear in the blocks, the output layer excluded


@dataclass(frozen=True)
class LoraParams:
    r: int = 8  # adapter rank; higher: more capacity, more trainable params/optimizer memory
    alpha: float = 16.0  # the update is scaled by alpha / r
    dropout: float = 0.0  # dropout on the adapter's input (0: deterministic training)
    target_modules: tuple[str, ...] = (ALL_LINEAR,)  # module-name suffixes, or "all-linear"
    use_dora: bool = False  # DoRA: weight-decomposed adapters (magnitude + direction)

    ranges = {"r": at_least(1, 4096), "alpha": Range(0.0, 1e6, lo_open=True), "dropout": PROBABILITY}

    def __post_init__(self):
        if not self.target_modules:
            raise ValueError(f"target_modules is empty: name module suffixes or {ALL_LINEAR!r}")
        if ALL_LINEAR in self.target_modules and len(self.target_modules) > 1:
            raise ValueError(f"target_modules: {ALL_LINEAR!r} cannot be combined with names")


def _dir_bytes(path: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in path.glob(pattern))


def add_adapters(model, p: LoraParams, ctx: Context, record_as: str):
    """Wrap `model` with peft LoRA adapters (k-bit preparation first on a 4-bit model);
    returns the PeftModel around the same instance and records the adapter's size."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from ._bnb4bit import disable_cpu_repack, is_4bit

    if is_4bit(model):
        disable_cpu_repack(model)
        model.is_loaded_in_4bit = True  # peft dispatches its 4-bit LoRA layer on this flag
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        ctx.record(record_as, "base_4bit_layers", len([m for m in model.modules() if type(m).__name__ == "Linear4bit"]))
    targets = ALL_LINEAR if p.target_modules == (ALL_LINEAR,) else list(p.target_modules)
    cfg = LoraConfig(
        r=p.r,
        lora_alpha=p.alpha,
        lora_dropout=p.dropout,
        target_modules=targets,
        use_dora=p.use_dora,
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, cfg)
    adapter = [t for n, t in peft_model.named_parameters() if t.requires_grad]
    ctx.record(record_as, "adapter_params", sum(t.numel() for t in adapter))
    ctx.record(record_as, "lora_layers", sum(1 for n, _ in peft_model.named_modules() if n.endswith(".lora_A")))
    with tempfile.TemporaryDirectory(prefix="effbench-adapter-") as d:
        peft_model.save_pretrained(d, save_embedding_layers=False)
        ctx.record(record_as, "adapter_bytes", _dir_bytes(Path(d), "adapter_model.*"))  # B on disk
        ctx.record(record_as, "adapter_config_bytes", _dir_bytes(Path(d), "adapter_config.json"))
    return peft_model


@register
class Lora(Technique):
    name = "lora"
    family = "adapter"
    description = "LoRA / DoRA adapters through peft on the block linear layers; base weights frozen"
    scenarios = ("train",)
    requires = ("peft",)
    conflicts_with = ("qlora",)

    Config = LoraParams

    def apply(self, model, ctx: Context):
        return add_adapters(model, self.config, ctx, self.name)

"""`adam8bit`: AdamW with its two moment estimates stored 8-bit (bitsandbytes' block-wise dynamic
quantization), through the technique contract's `make_optimizer` hook.

What it trades: AdamW keeps 2 fp32 states per trainable parameter (8 B); the 8-bit version keeps
2 x 1 B plus one fp32 absmax per 256-value block and state (~2.03 B), about a quarter, for a small
quantization error in the update. Tensors with fewer than `min_8bit_size` elements keep fp32
states (bitsandbytes' default 4096: small tensors save little and are sensitive), so with LoRA on
a small model, where many adapter matrices are small, the saving is less than 4x.

`paged=True` uses the paged variant, whose states live in CUDA unified memory and are evicted to
host memory under pressure; it needs CUDA, so on CPU the run is skipped with that reason.
The learning rate is the run's (the harness sets it on every step); weight decay is 0 like the
harness's default AdamW, so the two differ only in how the states are stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import PROBABILITY, Context, Range, Technique, at_least, register, requirement_missing


@register
class Adam8bit(Technique):
    name = "adam8bit"
    family = "optimizer"
    description = "bitsandbytes 8-bit AdamW optimizer states (optionally paged, CUDA only)"
    scenarios = ("train",)
    requires = ("bitsandbytes",)

    @dataclass(frozen=True)
    class Config:
        paged: bool = False  # states in CUDA unified memory, evicted to host under pressure (CUDA only)
        min_8bit_size: int = 4096  # tensors with fewer elements keep fp32 states
        beta1: float = 0.9
        beta2: float = 0.999
        eps: float = 1e-8

        ranges = {
            "min_8bit_size": at_least(0),
            "beta1": PROBABILITY,
            "beta2": PROBABILITY,
            "eps": Range(0.0, 1.0, lo_open=True),
        }

    def skip_reason(self, scenario: str, device: str) -> str | None:
        reason = super().skip_reason(scenario, device)
        if reason is None and self.config.paged:
            missing = requirement_missing("cuda", device)
            if missing:
                reason = (
                    f"adam8bit: paged=true keeps optimizer states in CUDA unified memory, which needs "
                    f"a CUDA GPU: {missing} (use paged=false on CPU)"
                )
        return reason

    def make_optimizer(self, params: list, ctx: Context):
        import bitsandbytes as bnb

        c = self.config
        cls = bnb.optim.PagedAdamW8bit if c.paged else bnb.optim.AdamW8bit
        lr = ctx.hparams.get("lr") or 1e-4  # overwritten by the harness's schedule every step
        return cls(params, lr=lr, betas=(c.beta1, c.beta2), eps=c.eps, weight_decay=0.0, min_8bit_size=c.min_8bit_size)

"""`grad_ckpt`: activation (gradient) checkpointing on the transformer blocks.

What it trades: a checkpointed block keeps only its input during the forward and recomputes its
internals during the backward, so activation memory drops from ~(tensors per block) x layers x
tokens x hidden to ~layers x tokens x hidden, for about one extra forward per step (~+30% step
time). Losses and gradients are unchanged (same computation, done twice).

How: transformers' `gradient_checkpointing_enable` on the model instance (inside a peft wrapper
when there is one), non-reentrant torch.utils.checkpoint by default. Non-reentrant checkpointing
passes gradients to adapters even when the block's input does not require grad; with
`use_reentrant=true` it would not, so the embeddings' output is then made to require grad (peft's
usual fix; transformers does it for token-input models too). Checkpointing acts only in training
mode; evaluation runs unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Context, Technique, TechniqueError, at_least, register


def _base_model(model):
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


@register
class GradCkpt(Technique):
    name = "grad_ckpt"
    family = "activation_memory"
    description = "activation checkpointing of the transformer blocks (recompute in backward)"
    scenarios = ("train",)

    @dataclass(frozen=True)
    class Config:
        every_n_layers: int = 1  # checkpoint every n-th block; higher: less recompute, more memory
        use_reentrant: bool = False  # torch.utils.checkpoint flavour; False is the recommended one

        ranges = {"every_n_layers": at_least(1, 1024)}

    def apply(self, model, ctx: Context):
        from transformers.modeling_layers import GradientCheckpointingLayer

        base = _base_model(model)
        if not getattr(base, "supports_gradient_checkpointing", False):
            raise TechniqueError(f"grad_ckpt: {type(base).__name__} does not support gradient checkpointing")
        base.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": self.config.use_reentrant},
            every_n_layers=self.config.every_n_layers,
        )
        if self.config.use_reentrant:
            base.enable_input_require_grads()
        blocks = [m for m in base.modules() if isinstance(m, GradientCheckpointingLayer)]
        ctx.record(self.name, "checkpointed_blocks", sum(bool(m.gradient_checkpointing) for m in blocks))
        ctx.record(self.name, "blocks", len(blocks))
        return model

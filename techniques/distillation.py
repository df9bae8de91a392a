"""`distillation`: a student made by dropping blocks of the model, trained against the full model.

What it trades: the student keeps blocks 0, k, 2k, ... (`keep_every` = k), so each of its forward
and backward passes costs about 1/k of the blocks' compute and its weights, gradients and optimizer
states shrink with them (the embeddings and the tied output head stay). What the dropped blocks
knew is then partly recovered by fine-tuning the student with the full model as teacher: each
step also runs the teacher's forward (no backward) on the same batch, and the loss mixes

    alpha * T^2 * KL(teacher_T || student_T)  +  (1 - alpha) * cross-entropy on the answer tokens

where p_T = softmax(logits / T) at temperature T and the KL is the mean, over every non-pad token
position of the batch (every answer and prompt position, not only the answer's), of
sum_v p_T^teacher(v) * (log p_T^teacher(v) - log p_T^student(v)). The T^2 factor keeps the KL's
gradients on the cross-entropy's scale as T changes (Hinton et al., 2015). `alpha = 0` is the
control: the same student fine-tuned on the usual loss, with no teacher kept and none run.

How: `apply` deep-copies the unmodified model as the teacher (frozen, eval mode; only when
alpha > 0), then drops the blocks of the model instance it was given, in place: the decoder's
`layers` ModuleList keeps every k-th block, each kept block's `layer_idx` attributes (its attention
module's, which indexes the KV cache) are renumbered 0..n-1, and the config's `num_hidden_layers`
(and `layer_types` where the config has one) follow, so the student is a correct transformers
model whose generate() with a KV cache works. The fine-tuning workload asks each technique for its
loss (`Technique.train_loss`); this one's is the mix above. Packed batches (`packing`: position ids,
no attention mask) are supported: the teacher runs on the same keyword arguments, so it sees the
same block-diagonal attention, and every position counts as non-pad.

Order: distillation comes before any technique that changes the model (adapters, quantizers,
sparsifiers, compilation, kernels, checkpointing, attention backend), so that the teacher is the
unmodified model and those techniques act on the student; it cannot run with `fused`, whose fused
linear cross-entropy returns no logits for the KL.

Records (technique_records["distillation"]): keep_every, kept_layers (original indices),
student_layers, teacher_layers, student_params, teacher_params (parameters, tied weights once),
student_forward_flops_per_token and teacher_forward_flops_per_token (2 x the matmul weights of
every nn.Linear, output head included; attention scores not counted), teacher_kept; with a
teacher, after the workload: teacher_forward_tokens (input tokens the teacher ran, pad excluded),
teacher_forward_flops (tokens x per-token FLOPs: the teacher's charge for the cost report),
kl_first and kl_last (the KL term of the first and last training step).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from .base import Context, Range, Technique, TechniqueError, at_least, get, register


def kl_teacher_student(teacher_logits, student_logits, mask, temperature: float):
    """Mean over the positions where `mask` is nonzero of KL(p_teacher || p_student), both the
    softmax of logits / temperature over the last (vocabulary) axis; fp32 whatever the inputs."""
    import torch

    t = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
    s = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    per_position = (t.exp() * (t - s)).sum(-1)
    m = mask.to(per_position.dtype)
    return (per_position * m).sum() / m.sum().clamp_min(1.0)


def decoder_layers(model):
    """(the module holding the blocks, their ModuleList) of a transformers causal LM
    (LlamaForCausalLM and its kind: `model.model.layers`); TechniqueError otherwise."""
    import torch

    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or getattr(model, "config", None) is None:
        raise TechniqueError(
            f"distillation: {type(model).__name__} has no decoder blocks at .model.layers (a transformers "
            "causal LM such as LlamaForCausalLM is needed; list distillation before techniques that wrap the model)"
        )
    return inner, layers


def drop_layers(model, keep_every: int) -> list[int]:
    """Keep blocks 0, k, 2k, ... of `model` in place, renumbering their layer_idx and updating the
    config; returns the kept blocks' original indices."""
    import torch

    inner, layers = decoder_layers(model)
    kept = list(range(0, len(layers), keep_every))
    inner.layers = torch.nn.ModuleList([layers[i] for i in kept])
    for new, block in enumerate(inner.layers):
        for m in block.modules():  # the attention's layer_idx indexes the KV cache
            if hasattr(m, "layer_idx"):
                m.layer_idx = new
    cfgs = {id(c): c for c in (model.config, getattr(inner, "config", None)) if c is not None}
    for cfg in cfgs.values():
        types = getattr(cfg, "layer_types", None)
        if types is not None:
            cfg.layer_types = [types[i] for i in kept]
        cfg.num_hidden_layers = len(kept)
    if hasattr(inner, "has_sliding_layers"):  # Qwen2 and its kind decide at init whether to build a sliding mask
        inner.has_sliding_layers = "sliding_attention" in (getattr(inner.config, "layer_types", None) or ())
    return kept


def forward_flops_per_token(model) -> int:
    """2 x the weights of every nn.Linear (the output head included): one forward's matmul FLOPs
    per token, attention scores aside."""
    import torch

    return 2 * sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


@register
class Distillation(Technique):
    name = "distillation"
    family = "transfer"
    description = (
        "student with every k-th block kept, fine-tuned on KL to the full model's logits (alpha 0: no teacher)"
    )
    scenarios = ("train",)

    @dataclass(frozen=True)
    class Config:
        keep_every: int = 2  # the student keeps blocks 0, k, 2k, ...; higher: smaller, cheaper, worse
        temperature: float = 2.0  # softens both distributions; higher: more weight on unlikely tokens
        alpha: float = 0.5  # weight of the KL term; 0: no teacher (the control), 1: KL alone

        ranges = {
            "keep_every": at_least(2, 1024),
            "temperature": Range(0.0, 100.0, lo_open=True),
            "alpha": Range(0.0, 1.0),  # [0, 1]: both ends valid
        }

    def __init__(self, config=None):
        super().__init__(config)
        self.teacher = None
        self._tokens = 0
        self._flops_per_token = 0

    def check_combination(self, names) -> None:
        if "fused" in names and self.config.alpha > 0:
            raise TechniqueError(
                "distillation cannot be combined with fused: its fused linear cross-entropy returns no "
                "student logits, which the KL against the teacher needs"
            )
        before = names[: names.index(self.name)] if self.name in names else []
        changers = [n for n in before if get(n).apply is not Technique.apply]
        if changers:
            raise TechniqueError(
                f"distillation must be listed before {changers} (techniques that change the model): the "
                f"teacher is the unmodified model and they act on the student (got {list(names)})"
            )

    def apply(self, model, ctx: Context):
        c = self.config
        teacher_layers = len(decoder_layers(model)[1])
        teacher_params = sum(p.numel() for p in model.parameters())
        self._flops_per_token = forward_flops_per_token(model)
        if c.alpha > 0:
            self.teacher = copy.deepcopy(model).eval()
            self.teacher.requires_grad_(False)
        kept = drop_layers(model, c.keep_every)
        rec = {
            "keep_every": c.keep_every,
            "kept_layers": kept,
            "student_layers": len(kept),
            "teacher_layers": teacher_layers,
            "student_params": sum(p.numel() for p in model.parameters()),
            "teacher_params": teacher_params,
            "student_forward_flops_per_token": forward_flops_per_token(model),
            "teacher_forward_flops_per_token": self._flops_per_token,
            "teacher_kept": self.teacher is not None,
        }
        for k, v in rec.items():
            ctx.record(self.name, k, v)
        return model

    def train_loss(self, model, batch, out, ctx: Context):
        if self.teacher is None:  # alpha = 0: the usual loss
            return None
        import torch

        c = self.config
        kwargs = {k: v for k, v in batch.items() if k != "labels"}
        kwargs["use_cache"] = False
        with torch.no_grad():
            teacher_logits = self.teacher(**kwargs).logits
        if out.logits is None:
            raise TechniqueError("distillation: the student's forward returned no logits (a fused loss?)")
        mask = batch.get("attention_mask")
        if mask is None:  # a packed batch holds no padding: every position counts
            mask = torch.ones(batch["input_ids"].shape, device=batch["input_ids"].device)
        kl = kl_teacher_student(teacher_logits, out.logits, mask, c.temperature)
        self._tokens += int(mask.sum())
        if "kl_first" not in ctx.records.get(self.name, {}):
            ctx.record(self.name, "kl_first", float(kl.detach()))
        ctx.record(self.name, "kl_last", float(kl.detach()))
        loss = c.alpha * c.temperature**2 * kl
        if c.alpha < 1:
            loss = loss + (1 - c.alpha) * out.loss
        return loss

    def finish(self, model, ctx: Context) -> None:
        if self.teacher is not None:
            ctx.record(self.name, "teacher_forward_tokens", self._tokens)
            ctx.record(self.name, "teacher_forward_flops", self._tokens * self._flops_per_token)

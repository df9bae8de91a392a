"""Weight sparsity for inference: `magnitude`, `wanda` and `semi_structured_2_4`.

What they trade: zeroed weights (quality lost, measured by the quality suite) for speed and memory
only where a kernel skips the zeros. Unstructured zeros in dense tensors run dense kernels, so
their speed is dense speed; they show how much quality a given sparsity costs. A 2:4 pattern on
CUDA becomes a torch semi-structured sparse tensor, so sparse tensor-core kernels really run.

Each touches the blocks' Linear weights only (not embeddings, not the output head unless asked),
must come before any quantizer in the technique list, and records what the weights hold afterwards
(`achieved_sparsity`, measured by counting zeros) and whether a sparse kernel runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .base import PROBABILITY, Context, Technique, TechniqueError, at_least, get, register

DENSE_NOTE = "zeros are stored in dense tensors and multiplied by dense kernels: speed here is not a sparsity speed"


def parse_pattern(pattern: str) -> tuple[int, int] | None:
    """'unstructured' -> None; 'N:M' -> (N kept, M group size)."""
    if pattern == "unstructured":
        return None
    try:
        n, m = (int(x) for x in pattern.split(":"))
    except ValueError:
        raise TechniqueError(f"pattern {pattern!r} is neither 'unstructured' nor 'N:M' (e.g. '2:4')") from None
    if not 0 < n < m:
        raise TechniqueError(f"pattern {pattern!r}: need 0 < N < M (N weights kept of every M)")
    return n, m


def check_order(name: str, names: list[str] | tuple[str, ...]) -> None:
    """Sparsity must come before quantization: a quantized weight cannot be masked in place."""
    mine = names.index(name)
    for i, other in enumerate(names):
        if get(other).family == "quantizer" and i < mine:
            raise TechniqueError(
                f"{name} must be listed before {other}: sparsity masks dense weights, "
                f"which {other} has already replaced by quantized ones ({list(names)})"
            )


class _Sparsifier(Technique):
    scenarios = ("infer",)

    def check_combination(self, names) -> None:
        check_order(self.name, names)

    def _calibration_norms(self, model, layers, ctx: Context) -> dict:
        from . import _weight_masks

        if ctx.calibration_ids is None:
            raise TechniqueError(f"{self.name}: needs calibration text (ctx.calibration_ids), none given")
        ids = ctx.calibration_ids(self.config.n_samples, self.config.seq_len)
        ctx.record(self.name, "calibration_tokens", int(ids.numel()))
        return _weight_masks.input_norms(model, layers, ids)

    def _prune(self, model, ctx: Context, layers, mask_of) -> None:
        import torch

        from ._infer_common import head_tied, measured_sparsity

        with torch.no_grad():
            for name, mod in layers:
                keep = mask_of(name, mod.weight)
                mod.weight.data.mul_(keep.to(mod.weight.dtype))
        m = measured_sparsity(layers)
        per = m["per_layer"].values()
        ctx.record(self.name, "achieved_sparsity", m["overall"])
        ctx.record(self.name, "achieved_sparsity_per_layer_min_max", [min(per), max(per)])
        ctx.record(self.name, "pruned_layers", len(layers))
        ctx.record(self.name, "pruned_weights", m["n_weights"])
        if getattr(self.config, "include_head", False) and head_tied(model):
            ctx.record(
                self.name,
                "note_head",
                "the output head shares its weight with the input embeddings: "
                "pruning the head pruned the embeddings too",
            )


@register
class Magnitude(_Sparsifier):
    name = "magnitude"
    family = "sparsifier"
    description = "unstructured pruning of each Linear by |weight| at a given sparsity"

    @dataclass(frozen=True)
    class Config:
        sparsity: float = 0.5  # fraction of each layer's weights zeroed; higher: smaller, worse
        include_head: bool = False  # also prune the output head (tied to the embeddings in SmolLM2)
        include_embeddings: bool = False  # also prune the input embedding matrix

        ranges = {"sparsity": PROBABILITY}

    def apply(self, model, ctx: Context):
        import torch

        from . import _weight_masks
        from ._infer_common import block_linears

        s = self.config.sparsity
        layers = block_linears(model, self.config.include_head)
        self._prune(model, ctx, layers, lambda n, w: _weight_masks.unstructured_mask(w.abs(), s, per_row=False))
        if self.config.include_embeddings:
            emb = (model.get_base_model() if hasattr(model, "get_base_model") else model).get_input_embeddings()
            with torch.no_grad():
                emb.weight.mul_(_weight_masks.unstructured_mask(emb.weight.abs(), s, per_row=False))
            ctx.record(self.name, "embeddings_sparsity", float((emb.weight == 0).float().mean()))
        ctx.record(self.name, "requested_sparsity", s)
        ctx.record(self.name, "sparse_kernel", False)
        ctx.record(self.name, "note", DENSE_NOTE)
        return model


@register
class Wanda(_Sparsifier):
    name = "wanda"
    family = "sparsifier"
    description = "pruning by |weight| x input-activation norm from calibration text, unstructured or N:M"

    @dataclass(frozen=True)
    class Config:
        sparsity: float | None = None  # fraction zeroed per output row; None: 0.5, or 1 - N/M for N:M
        pattern: str = "unstructured"  # or "N:M": keep N of every M input weights (e.g. "2:4")
        n_samples: int = 32  # calibration sequences; higher: steadier norms, longer setup
        seq_len: int = 128  # tokens per calibration sequence
        include_head: bool = False  # also prune the output head (tied to the embeddings in SmolLM2)

        ranges = {"sparsity": PROBABILITY, "n_samples": at_least(1, 4096), "seq_len": at_least(2, 8192)}

        def __post_init__(self):
            nm = parse_pattern(self.pattern)
            if nm and self.sparsity is not None and abs(self.sparsity - (1 - nm[0] / nm[1])) > 1e-9:
                raise ValueError(f"pattern {self.pattern} fixes sparsity at {1 - nm[0] / nm[1]}, got {self.sparsity}")

    def apply(self, model, ctx: Context):
        from . import _weight_masks
        from ._infer_common import block_linears

        cfg = self.config
        nm = parse_pattern(cfg.pattern)
        s = (1 - nm[0] / nm[1]) if nm else (0.5 if cfg.sparsity is None else cfg.sparsity)
        layers = block_linears(model, cfg.include_head)
        norms = self._calibration_norms(model, layers, ctx)

        def mask_of(name, w):
            score = _weight_masks.wanda_score(w, norms[name])
            return _weight_masks.nm_mask(score, *nm) if nm else _weight_masks.unstructured_mask(score, s, per_row=True)

        self._prune(model, ctx, layers, mask_of)
        ctx.record(self.name, "requested_sparsity", s)
        ctx.record(self.name, "sparse_kernel", False)
        ctx.record(self.name, "note", DENSE_NOTE)
        return model


@register
class SemiStructured24(_Sparsifier):
    name = "semi_structured_2_4"
    family = "sparsifier"
    description = "2:4 sparsity (2 kept of every 4 input weights), chosen by Wanda or magnitude; sparse kernels on CUDA"

    @dataclass(frozen=True)
    class Config:
        score: Literal["wanda", "magnitude"] = "wanda"  # wanda: better quality, needs calibration
        n_samples: int = 32  # calibration sequences (wanda only)
        seq_len: int = 128  # tokens per calibration sequence (wanda only)
        sparse_kernel: bool = True  # on CUDA: convert to torch's semi-structured sparse tensors

        ranges = {"n_samples": at_least(1, 4096), "seq_len": at_least(2, 8192)}

    def apply(self, model, ctx: Context):
        from . import _weight_masks
        from ._infer_common import block_linears

        cfg = self.config
        layers = block_linears(model)
        norms = self._calibration_norms(model, layers, ctx) if cfg.score == "wanda" else {}

        def mask_of(name, w):
            score = _weight_masks.wanda_score(w, norms[name]) if norms else w.abs().float()
            return _weight_masks.nm_mask(score, 2, 4)

        self._prune(model, ctx, layers, mask_of)
        ctx.record(self.name, "requested_sparsity", 0.5)
        ctx.record(self.name, "sparse_kernel", self._convert(layers, ctx))
        return model

    def _convert(self, layers, ctx: Context) -> bool:
        """Swap weights for torch semi-structured sparse tensors where a kernel exists; say why not."""
        later = (
            [n for n in ctx.techniques[ctx.techniques.index(self.name) + 1 :] if get(n).family == "quantizer"]
            if self.name in ctx.techniques
            else []
        )
        if ctx.device != "cuda":
            why = f"device {ctx.device!r}: the 2:4 mask is applied to dense weights; {DENSE_NOTE}"
        elif not self.config.sparse_kernel:
            why = f"sparse_kernel=false: {DENSE_NOTE}"
        elif later:
            why = f"{later[0]} follows and quantizes the masked dense weights" + (
                " into its own 2:4 sparse format" if later[0] == "torchao_fp8" else f"; {DENSE_NOTE}"
            )
        else:
            return _to_semi_structured(layers, ctx, self.name)
        ctx.record(self.name, "note", why)
        return False


def _to_semi_structured(layers, ctx: Context, name: str) -> bool:
    import torch
    from torch.sparse import to_sparse_semi_structured

    done, failed = 0, {}
    for lname, mod in layers:
        try:
            sp = to_sparse_semi_structured(mod.weight.detach())
            torch.nn.functional.linear(
                torch.zeros(2, mod.in_features, dtype=mod.weight.dtype, device=mod.weight.device), sp
            )  # a kernel exists for it
        except Exception as e:  # shape or dtype without a CUTLASS/cuSPARSELt kernel: stays dense
            failed[lname] = f"{type(e).__name__}: {e}"[:200]
            continue
        mod.weight = torch.nn.Parameter(sp, requires_grad=False)
        done += 1
    ctx.record(name, "sparse_layers", done)
    if failed:
        ctx.record(name, "dense_layers", failed)
    return done > 0

"""`torch_compile`: the model's forward compiled by torch.compile (TorchDynamo + Inductor).

What it trades: a one-off compile (tens of seconds, C++ on CPU and Triton on CUDA) for faster
steps, from fused elementwise chains, fewer kernel launches and (`max-autotune`) tuned matmuls.
It pays only after enough tokens: `effbench.read.breakeven` gives the count, compile_s / (base
seconds per token - compiled seconds per token), "never" when the compiled run is not faster.

How: `model.compile(mode=..., dynamic=...)` on the instance it is given (a PeftModel wrapper
included): torch compiles that object's `__call__` in place, so the model stays the same object
and no class is patched. Compilation happens at the first call, so `apply` makes it there, with
a warm-up in the workload's mode (train: forward and backward of a [2, 16] batch under the
workload's autocast, gradients cleared after; infer: a prefill and one cached decode step
without grad) and records its time, `compile_s`, beside the graphs compiled. Shapes the
warm-up did not cover (another batch size, a size-1 dimension, which torch specializes) compile
again during the workload, in its first steps; `finish` records them as `recompilations`
(torch._dynamo's count of compiled graphs after the warm-up). `dynamic=true` (the default)
makes sizes symbolic from the first compile, so lengths that vary from batch to batch reuse one
graph; `false` compiles one graph per shape.

Refused where the mode cannot run: `reduce-overhead` captures CUDA graphs (CUDA only); on CPU,
Inductor needs a C++ compiler (`$CXX`, else g++).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import time
from dataclasses import dataclass
from typing import Literal

from .base import Context, Technique, TechniqueError, register

WARMUP_SHAPE = (2, 16)  # batch, tokens: sizes 0 and 1 would be specialized, not symbolic


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


@register
class TorchCompile(Technique):
    name = "torch_compile"
    family = "compiler"
    description = "torch.compile of the model's forward (Inductor); compile time and recompilations recorded"
    scenarios = ("train", "infer")

    @dataclass(frozen=True)
    class Config:
        # default: fusion only; reduce-overhead: + CUDA graphs (CUDA); max-autotune: + tuned GEMMs, longer compile
        mode: Literal["default", "reduce-overhead", "max-autotune"] = "default"
        dynamic: bool = True  # symbolic shapes: one graph for varying lengths; false: a graph per shape

    def skip_reason(self, scenario: str, device: str) -> str | None:
        why = super().skip_reason(scenario, device)
        if why is not None:
            return why
        if self.config.mode == "reduce-overhead" and device != "cuda":
            return f"torch_compile mode='reduce-overhead' captures CUDA graphs: it needs CUDA, the run's device is {device!r}"
        cxx = os.environ.get("CXX", "g++")
        if device == "cpu" and shutil.which(cxx) is None:
            return f"torch_compile on CPU needs a C++ compiler for Inductor: {cxx!r} is not on PATH"
        return None

    def apply(self, model, ctx: Context):
        why = self.skip_reason(ctx.scenario, ctx.device)
        if why is not None:
            raise TechniqueError(why)
        if getattr(model, "_compiled_call_impl", None) is not None:
            raise TechniqueError("torch_compile: the model is compiled already")
        model.compile(mode=self.config.mode, dynamic=self.config.dynamic)
        ids = self._warmup_ids(model, ctx)
        before = _graphs()
        _sync(ctx.device)
        t0 = time.perf_counter()
        self._warm_up(model, ids, ctx)
        _sync(ctx.device)
        ctx.record(self.name, "compile_s", time.perf_counter() - t0)
        self._graphs_after_warmup = _graphs()
        ctx.record(self.name, "graphs_compiled", self._graphs_after_warmup - before)
        return model

    def finish(self, model, ctx: Context) -> None:
        after = getattr(self, "_graphs_after_warmup", None)
        if after is not None:
            ctx.record(self.name, "recompilations", _graphs() - after)

    @staticmethod
    def _warmup_ids(model, ctx: Context):
        import torch

        if ctx.calibration_ids is not None:
            return ctx.calibration_ids(*WARMUP_SHAPE).to(ctx.device)
        vocab = int(getattr(getattr(model, "config", None), "vocab_size", 1000))
        return (torch.arange(WARMUP_SHAPE[0] * WARMUP_SHAPE[1], device=ctx.device) % vocab).view(WARMUP_SHAPE)

    @staticmethod
    def _warm_up(model, ids, ctx: Context) -> None:
        """One call in the mode the workload will call: the graphs it compiles are the ones reused."""
        import torch

        was_training = model.training
        if ctx.scenario == "train":
            autocast = (  # as the finetune workload: bf16 autocast on CUDA, plain fp32 on CPU
                torch.autocast("cuda", dtype=torch.bfloat16) if ctx.device == "cuda" else contextlib.nullcontext()
            )
            model.train()
            with autocast:
                out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids)
            out.loss.backward()
            for p in model.parameters():
                p.grad = None
        else:
            try:
                keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
            except (TypeError, ValueError):
                keep = {}
            model.eval()
            with torch.no_grad():
                out = model(input_ids=ids, use_cache=True, **keep)
                nxt = out.logits[:, -1:].argmax(-1)
                model(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)
        model.train(was_training)

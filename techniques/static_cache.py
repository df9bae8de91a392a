"""`static_cache`: decode with transformers' static KV cache, optionally the decode step compiled.

What it trades: the default dynamic cache grows each layer's keys and values by concatenation at
every step (a new allocation per layer per token, shapes that change each step); a static cache
allocates `batch x max_cache_len` positions once and writes each step in place, so every decode
step has the same shapes and the same tensors. Alone that saves the reallocation and costs the
preallocated memory (recorded as `cache_bytes.b<batch>`); its point is that the step becomes
compilable with fixed shapes (`compile`), and on CUDA capturable as a CUDA graph
(`reduce-overhead`), removing the per-kernel launch overhead that dominates small-batch decode.

How: the infer workload asks its techniques for the KV cache its prefill and decode loop fill
(`kv_cache`: one `transformers.StaticCache` per batch size and length, reset between repeats, so a
CUDA graph replays on the same buffers) and for the one-token decode call (`decode_call`: with
`compile`, `model.get_compiled_call(CompileConfig(fullgraph=True, dynamic=False, mode=...))`,
transformers' own compiled decode step; prefill stays uncompiled, as in `generate`). Its
generation measurement calls `generate(cache_implementation="static")` with the same compile
config (or `disable_compile=True` when `compile="none"`, so nothing compiles behind the
parameter's back). The model instance is not changed.

With `compile`, `apply` warms the compiled step up at the workload's batch sizes and cache length
(a prefill and two decode steps each; CUDA graphs record on a later call than the first) and
records `compile_s` and `graphs_compiled`; `finish` records `recompilations` after the warm-up
(generate()'s cache is sized for its own length: one more graph). Refused where it cannot run:
`reduce-overhead` off CUDA, a compile on CPU without a C++ compiler, and beside `prompt_lookup`
(transformers refuses assisted generation with a static cache) or a compiling `torch_compile`.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import Literal

from .base import Context, Technique, TechniqueError, register


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def cache_bytes(config, batch: int, max_len: int, dtype) -> int:
    """Bytes a static cache preallocates: keys and values of every layer, batch x KV heads x
    positions x head width."""
    import torch

    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * batch * kv * max_len * head_dim * torch.empty((), dtype=dtype).element_size()


@register
class StaticKVCache(Technique):
    name = "static_cache"
    family = "decoding"
    description = "transformers' static KV cache for decode; compiled step and CUDA graphs optional"
    scenarios = ("infer",)

    @dataclass(frozen=True)
    class Config:
        # none: static cache only; default / max-autotune: the decode step compiled (fixed shapes);
        # reduce-overhead: compiled + CUDA graphs (CUDA only). Compiling costs tens of seconds.
        compile: Literal["none", "default", "reduce-overhead", "max-autotune"] = "none"

    def __init__(self, config=None):
        super().__init__(config)
        self._caches: dict[tuple[int, int], object] = {}
        self._step, self._compile_config = None, None

    def skip_reason(self, scenario: str, device: str) -> str | None:
        why = super().skip_reason(scenario, device)
        if why is not None:
            return why
        if self.config.compile == "reduce-overhead" and device != "cuda":
            return f"static_cache compile='reduce-overhead' captures CUDA graphs: it needs CUDA, the run's device is {device!r}"
        cxx = os.environ.get("CXX", "g++")
        if self.config.compile != "none" and device == "cpu" and shutil.which(cxx) is None:
            return f"static_cache compile on CPU needs a C++ compiler for Inductor: {cxx!r} is not on PATH"
        return None

    def check_combination(self, names) -> None:
        if "prompt_lookup" in names:
            raise TechniqueError(
                "static_cache cannot be combined with prompt_lookup: transformers refuses assisted generation "
                "with a static cache ('assisted generate is not supported with Static cache classes')"
            )
        if "torch_compile" in names and self.config.compile != "none":
            raise TechniqueError(
                f"static_cache compile={self.config.compile!r} cannot be combined with torch_compile: both would "
                "compile the model's forward; use one of them, or static_cache with compile='none'"
            )

    def apply(self, model, ctx: Context):
        why = self.skip_reason(ctx.scenario, ctx.device)
        if why is not None:
            raise TechniqueError(why)
        if not (hasattr(model, "generate") and hasattr(getattr(model, "config", None), "num_hidden_layers")):
            raise TechniqueError(f"static_cache: {type(model).__name__} is not a transformers causal LM")
        ctx.record(self.name, "compile", self.config.compile)
        if self.config.compile != "none":
            from transformers import CompileConfig

            cfg = CompileConfig(fullgraph=True, dynamic=False, mode=self.config.compile)
            cfg._compile_all_devices = True  # transformers compiles on CUDA only unless told (CPU: Inductor C++)
            self._compile_config = cfg
            self._step = model.get_compiled_call(cfg)
            self._warm_up(model, ctx)
        return model

    def _warm_up(self, model, ctx: Context) -> None:
        """A prefill and two compiled decode steps at each of the workload's batch sizes and its cache
        length: the graphs the decode loop then reuses."""
        import torch

        hp = ctx.hparams
        batches, prompt_len = hp.get("batch_sizes") or (1,), hp.get("prompt_len") or 16
        max_len = prompt_len + (hp.get("decode_tokens") or 4)
        before = _graphs()
        _sync(ctx.device)
        t0 = time.perf_counter()
        with torch.no_grad():
            for b in batches:
                ids = (torch.arange(b * prompt_len, device=ctx.device) % model.config.vocab_size).view(b, prompt_len)
                cache = self.kv_cache(model, b, max_len, ctx)
                out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
                for _ in range(2):
                    out = self._step(input_ids=out.logits[:, -1:].argmax(-1), past_key_values=cache, use_cache=True)
        _sync(ctx.device)
        ctx.record(self.name, "compile_s", time.perf_counter() - t0)
        self._graphs_after_warmup = _graphs()
        ctx.record(self.name, "graphs_compiled", self._graphs_after_warmup - before)

    def kv_cache(self, model, batch_size: int, max_cache_len: int, ctx: Context):
        from transformers import StaticCache

        key = (batch_size, max_cache_len)
        cache = self._caches.get(key)
        if cache is None:
            cache = self._caches[key] = StaticCache(config=model.config, max_cache_len=max_cache_len)
            ctx.record(
                self.name,
                f"cache_bytes.b{batch_size}",
                cache_bytes(model.config, batch_size, max_cache_len, model.dtype),
            )
            ctx.record(self.name, f"max_cache_len.b{batch_size}", max_cache_len)
        else:
            cache.reset()  # same buffers: a captured CUDA graph replays on them
        return cache

    def decode_call(self, model, ctx: Context):
        return self._step

    def generate_kwargs(self, model, ctx: Context) -> dict:
        if self._compile_config is None:
            return {"cache_implementation": "static", "disable_compile": True}
        return {"cache_implementation": "static", "compile_config": self._compile_config}

    def finish(self, model, ctx: Context) -> None:
        after = getattr(self, "_graphs_after_warmup", None)
        if after is not None:
            ctx.record(self.name, "recompilations", _graphs() - after)

"""Break-even of a one-off cost (compiling) against a per-unit saving, derived at report time.

  break_even = compile_s / (t_base - t_compiled)     units (tokens or steps), t_* in s per unit

After `break_even` units the compiled run has saved as many seconds as compiling cost; before it,
compiling has cost more than it saved. A compiled run that is not faster (t_compiled >= t_base)
never breaks even: None, with the reason. Rates in tokens/s are turned into seconds per token.
"""

from __future__ import annotations

TECHNIQUE = "torch_compile"  # the technique whose record holds compile_s


def break_even(compile_s: float, t_compiled: float, t_base: float) -> float | None:
    """Units after which compiling has saved more than it cost; None when it never does."""
    if compile_s < 0 or t_compiled <= 0 or t_base <= 0:
        raise ValueError(f"need compile_s >= 0 and positive times per unit, got {compile_s}, {t_compiled}, {t_base}")
    saving = t_base - t_compiled
    return compile_s / saving if saving > 0 else None


def _rate(run: dict, name: str) -> float | None:
    m = run.get("metrics", {}).get(name)
    return None if not m else m.get("value")


def tokens_to_break_even(compiled: dict, base: dict, rate: str = "train_tokens_per_s") -> tuple[float | None, str]:
    """(tokens after which the compiled run has paid for its compile, why not), from two runs of a
    result set: `compiled` with a torch_compile record, `base` the same run without it. `rate` is
    a tokens/s metric both runs measured (train_tokens_per_s; an infer run's decode_tokens_per_s.b8)."""
    compile_s = compiled.get("technique_records", {}).get(TECHNIQUE, {}).get("compile_s")
    if compile_s is None:
        return None, f"no {TECHNIQUE} compile_s recorded"
    r_c, r_b = _rate(compiled, rate), _rate(base, rate)
    if not r_c or not r_b:
        return None, f"{rate} not measured in both runs"
    n = break_even(compile_s, 1.0 / r_c, 1.0 / r_b)
    if n is None:
        return None, f"never: not faster ({r_c:.4g} vs {r_b:.4g} tokens/s)"
    return n, ""


def _key(spec: dict) -> tuple:
    """What a compiled run and its partner share: scenario, model, task, techniques less torch_compile."""
    techs = [t for t in spec.get("techniques") or [] if t.get("name") != TECHNIQUE]
    return spec.get("scenario"), spec.get("model"), spec.get("task"), techs


def _rate_of(run: dict) -> str:
    if run["spec"].get("scenario") == "finetune":
        return "train_tokens_per_s"
    keys = [k for k in run.get("metrics", {}) if k.startswith("decode_tokens_per_s.b")]
    return max(keys, key=lambda k: int(k.rsplit(".b", 1)[1])) if keys else "decode_tokens_per_s"


def compiled_pairs(runs: list[dict]) -> list[tuple[dict, dict | None, str]]:
    """(compiled run, its uncompiled partner or None, the tokens/s metric to compare) for every run
    with a torch_compile record; the partner has the same scenario, model, task and techniques
    less torch_compile. Fine-tuning compares train_tokens_per_s, inference the largest batch's
    decode_tokens_per_s."""
    out = []
    for r in runs:
        if TECHNIQUE in (r.get("technique_records") or {}):
            base = next((b for b in runs if b is not r and _key(b["spec"]) == _key(r["spec"])), None)
            out.append((r, base, _rate_of(r)))
    return out

"""The public tasks (effbench.tasks.public) scored through lm-eval on a suite's fixed item sample:
what the infer workload's quality suite reports and what fine-tuning's retention check measures."""

from __future__ import annotations

from effbench.child import measure
from effbench.tasks import lmeval, public


def public_metric_names(names) -> list[str]:
    """The metrics public_quality records for tasks `names`: per task acc and acc_norm, and the
    pooled `public_acc_norm` / `public_acc` over the lm-eval formulation's tasks (not `_card`)."""
    out = [f"{n}_{m}" for n in names for m in ("acc", "acc_norm")]
    if any(not n.endswith(public.CARD_SUFFIX) for n in names):
        out += ["public_acc", "public_acc_norm"]
    return out


def public_quality(model, tokenizer, spec, budget) -> tuple[dict, dict, dict]:
    """The public tasks (effbench.tasks.public) through lm-eval, each on its suite's fixed item
    sample: per task acc and acc_norm with stderr, item count and chance; per-item scores (for
    paired tests); the data's SHA-256 and the sample's item ids. `public_acc_norm`: the mean over
    all scored items of the lm-eval-formulation tasks (with equal item counts, the mean of tasks)."""
    names = list(budget.public_tasks)
    metrics, items, data = {}, {}, {}
    try:
        pdir = lmeval.write_public(names)
    except public.PublicDataError as e:
        for k in public_metric_names(names):
            metrics[k] = measure.missing(str(e))
        return metrics, items, data
    ids = {n: public.sample_ids(n, budget.public_items, budget.public_sample_seed) for n in names}
    samples = {f"effbench_{n}": ids[n] for n in names if len(ids[n]) < public.base_task(n).n}
    out = lmeval.evaluate_many(
        model, tokenizer, [f"effbench_{n}" for n in names], pdir, spec.device, budget.eval_batch_size,
        samples=samples, seed=spec.seed,
    )  # fmt: skip
    pooled: dict[str, list[float]] = {"acc": [], "acc_norm": []}
    chances: list[float] = []
    for n in names:
        t, r = public.base_task(n), out[f"effbench_{n}"]
        if r["doc_ids"] != ids[n]:
            raise RuntimeError(f"lm-eval scored other items of {n} than the sample asked for")
        card = n.endswith(public.CARD_SUFFIX)
        for m in ("acc", "acc_norm"):
            metrics[f"{n}_{m}"] = {
                **r[m],
                "unit": "fraction",
                "higher_is_better": True,
                "chance": t.chance,
                "method": f"lm-eval multiple_choice {m}"
                + (" (acc_norm: log-likelihood / answer length in characters)" if m == "acc_norm" else "")
                + (", the SmolLM2 card's cloze prompts" if card else ", lm-eval's prompts")
                + f", zero-shot, {len(ids[n])} of {t.n} {t.split} items",
            }
            items[f"{n}.{m}"] = r["items"][m]
            if not card:
                pooled[m] += r["items"][m]
        if not card:
            chances += [t.chance] * len(ids[n])
        data[n] = {
            "sha256": t.sha256,
            "items_sha256": public.ids_sha256(ids[n]),
            "n_items": len(ids[n]),
            "split": f"{t.split} ({t.n})",
            "ids": ids[n],
        }
    if chances:
        lm_tasks = [n for n in names if not n.endswith(public.CARD_SUFFIX)]
        for m in ("acc", "acc_norm"):
            metrics[f"public_{m}"] = {
                **lmeval.summarize(pooled[m]),
                "unit": "fraction",
                "higher_is_better": True,
                "chance": sum(chances) / len(chances),
                "method": f"{m} over all {len(pooled[m])} scored items of {', '.join(lm_tasks)} (pooled)",
            }
            items[f"public.{m}"] = pooled[m]
    data["source"] = public.DATA_WHEEL
    return metrics, items, data

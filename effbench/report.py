"""Summary tables of a result set (markdown through tabulate), with derived figures computed here."""
from __future__ import annotations

from tabulate import tabulate

from . import cost


def _v(run, name):
    m = run.get("metrics", {}).get(name)
    return None if not m else m.get("value")


def fmt(x, spec: str = ".3g", none: str = "–") -> str:
    return none if x is None else format(x, spec)


def pm(run, name, scale=100.0) -> str:
    m = run.get("metrics", {}).get(name)
    if not m or m.get("value") is None:
        return "–"
    se = m.get("stderr")
    return f"{scale * m['value']:.1f} ± {scale * se:.1f}" if se is not None else f"{scale * m['value']:.1f}"


def mib(x) -> str:
    return "–" if x is None else f"{x / 2**20:.0f}"


def techniques_label(run) -> str:
    ts = run["spec"].get("techniques") or []
    if not ts:
        return "(none)"
    parts = []
    for t in ts:
        p = t.get("params") or {}
        parts.append(t["name"] + ("(" + ",".join(f"{k}={v}" for k, v in p.items()) + ")" if p else ""))
    return " + ".join(parts)


def peak_bytes(run):
    return _v(run, "peak_allocated_bytes") if "peak_allocated_bytes" in run.get("metrics", {}) else _v(run, "peak_rss_bytes")


def price(rs) -> tuple[float | None, str]:
    return cost.price_for(rs.get("env", {}), rs.get("price_per_hour"), rs.get("price_source", ""))


def finetune_rows(rs, runs):
    p, _ = price(rs)
    target = cost.target_accuracy(rs)
    rows = []
    for r in runs:
        d = cost.derived(r, p, target)
        rows.append([r["id"], techniques_label(r), pm(r, "accuracy_unmodified"), pm(r, "accuracy"), fmt(d.get("gain_points"), ".1f"),
                     fmt(_v(r, "train_tokens_per_s"), ".1f"), mib(peak_bytes(r)), fmt(_v(r, "trainable_fraction") and 100 * _v(r, "trainable_fraction"), ".2f"),
                     fmt(_v(r, "train_wall_s"), ".0f"), fmt(r.get("setup", {}).get("wall_s"), ".1f"),
                     fmt(d.get("time_to_target_s"), ".0f", "not reached"), fmt(d.get("cost_usd"), ".4f"),
                     fmt(d.get("cost_to_target_usd"), ".4f", "not reached"), fmt(d.get("usd_per_point"), ".5f")])
    head = ["run", "techniques", "acc before %", "acc after %", "gain pts", "train tok/s", "peak MiB", "trainable %",
            "train s", "setup s", "time-to-target s", "cost $", "cost-to-target $", "$/point"]
    return head, rows


def infer_rows(rs, runs):
    p, _ = price(rs)
    rows = []
    for r in runs:
        d = cost.derived(r, p, None)
        dec, key = cost.largest_batch_decode(r)
        b = key.rsplit(".b", 1)[1] if key else "?"
        rows.append([r["id"], techniques_label(r), fmt(_v(r, "prefill_tokens_per_s.b1"), ".0f"), fmt(_v(r, "decode_tokens_per_s.b1"), ".1f"),
                     f"{fmt(dec, '.1f')} (b{b})", fmt(_v(r, "decode_latency_p50_ms.b1"), ".1f"), mib(peak_bytes(r)), mib(_v(r, "weight_bytes")),
                     pm(r, "probe_acc"), pm(r, "arith_accuracy"), fmt(_v(r, "perplexity"), ".2f"), fmt(_v(r, "kld_mean"), ".4f"),
                     fmt(_v(r, "top1_agreement") and 100 * _v(r, "top1_agreement"), ".1f"), fmt(r.get("setup", {}).get("wall_s"), ".1f"),
                     fmt(d.get("usd_per_mtok"), ".3f"), fmt(d.get("usd_per_mtok_per_point"), ".4f")])
    head = ["run", "techniques", "prefill tok/s b1", "decode tok/s b1", "decode tok/s", "p50 ms/tok b1", "peak MiB",
            "weights MiB", "probe acc %", "arith acc %", "ppl", "KLD", "top-1 agree %", "setup s", "$/Mtok", "$/Mtok/pt"]
    return head, rows


def summary_markdown(rs: dict) -> str:
    env = rs.get("env", {})
    p, src = price(rs)
    lines = [f"# effbench result set: suite `{rs.get('suite')}`", "",
             f"- created: {rs.get('created_utc')}  git: {(rs.get('git') or {}).get('sha', '?')}"
             f"{' (dirty tree)' if (rs.get('git') or {}).get('dirty') else ''}",
             f"- device: {env.get('device_name', '?')} ({env.get('device', '?')}), torch {env.get('libraries', {}).get('torch')}, "
             f"threads {env.get('torch_threads')}",
             f"- price: {fmt(p, '.2f')} USD/device-hour ({src})"]
    models = {(r.get("model") or {}).get("name"): (r.get("model") or {}).get("weights_sha256", "")[:16] for r in rs["runs"] if r.get("model")}
    for name, sha in models.items():
        lines.append(f"- model: {name} (weights sha256 {sha}…)")
    t = cost.target_accuracy(rs)
    if t is not None:
        lines.append(f"- fine-tuning target: {100 * t:.1f}% = {rs['target']['fraction']} x final accuracy of `{rs['target']['reference']}`")
    ok = [r for r in rs["runs"] if r["status"] == "ok"]
    for scen, fn, title in (("finetune", finetune_rows, "Fine-tuning"), ("infer", infer_rows, "Inference")):
        runs = [r for r in ok if r["spec"]["scenario"] == scen]
        if runs:
            head, rows = fn(rs, runs)
            lines += ["", f"## {title}", "", tabulate(rows, head, tablefmt="github")]
    other = [r for r in rs["runs"] if r["status"] != "ok"]
    if other:
        rows = [[r["id"], techniques_label(r), r["status"], (r.get("reason") or r.get("error") or "")[:200]] for r in other]
        lines += ["", "## Not measured", "", tabulate(rows, ["run", "techniques", "status", "reason"], tablefmt="github")]
    lines += ["", "Accuracies are percentages ± one standard error over eval items; `–` marks a figure not measured "
              "(its reason is in results.json). Peak MiB: CUDA max allocated, or on CPU the peak RSS of the workload region."]
    return "\n".join(lines) + "\n"

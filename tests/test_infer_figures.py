"""The inference workload's figures against answers computed another way: prefill runs the output
head on the last position only; prefill/decode tokens/s and latency percentiles from a scripted
clock; KL divergence's value and direction against scipy.stats.entropy on hand-made
distributions; perplexity on cases with a known answer; fp32 logits from a bf16 model.
"""

from __future__ import annotations

import math
import statistics
import types

import pytest
import torch
from scipy import stats as sps

from effbench import models
from effbench.child.workloads import infer

BUDGET = types.SimpleNamespace(prompt_len=16, decode_tokens=3, repeats=2)


@pytest.fixture(scope="module")
def tiny_model():
    return models.load("tiny", device="cpu", dtype=torch.float32, seed=0, with_tokenizer=False)[0]


def test_prefill_computes_the_head_on_the_last_position_only(tiny_model):
    seen = []
    h = tiny_model.lm_head.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    try:
        out = infer._speed(tiny_model, torch.arange(100, 140), 2, BUDGET, "cpu")
    finally:
        h.remove()
    # per repeat (warm-up included): one prefill and decode_tokens steps, each [batch, 1, hidden]
    assert len(seen) == (BUDGET.repeats + 1) * (1 + BUDGET.decode_tokens)
    assert all(s[:2] == (2, 1) for s in seen)
    assert "last position" in out["prefill_tokens_per_s.b2"]["method"]


def test_prefill_last_logits_equal_the_full_forward(tiny_model):
    ids = torch.arange(100, 116).unsqueeze(0)
    with torch.no_grad():
        full = tiny_model(input_ids=ids).logits[:, -1]
        last = tiny_model(input_ids=ids, **infer.last_logits_kwargs(tiny_model)).logits
    assert last.shape == (1, 1, full.shape[-1])
    torch.testing.assert_close(last[:, 0], full, atol=1e-5, rtol=1e-5)


class ScriptedClock:
    """perf_counter that advances by scripted durations: call 2i starts interval i, 2i+1 ends it."""

    def __init__(self, durations):
        self.durations, self.t, self.calls = list(durations), 0.0, 0

    def perf_counter(self):
        if self.calls % 2 == 1:
            self.t += self.durations[self.calls // 2]
        self.calls += 1
        return self.t


def test_prefill_and_decode_arithmetic_from_a_scripted_clock(tiny_model, monkeypatch):
    B, P, D = 2, BUDGET.prompt_len, BUDGET.decode_tokens
    prefill = [9.0, 0.5, 0.3]  # the first repeat is the warm-up
    steps = [[9.0, 9.0, 9.0], [0.01, 0.02, 0.03], [0.04, 0.05, 0.10]]
    clock = ScriptedClock([x for p, s in zip(prefill, steps) for x in [p, *s]])
    monkeypatch.setattr(infer, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    out = infer._speed(tiny_model, torch.arange(100, 140), B, BUDGET, "cpu")
    assert clock.calls == 2 * len(clock.durations)
    # prefill: batch x prompt tokens / median of the two timed repeats (an even count: their mean)
    assert out[f"prefill_tokens_per_s.b{B}"]["value"] == pytest.approx(B * P / 0.4)
    assert out[f"prefill_tokens_per_s.b{B}"]["samples"] == pytest.approx([B * P / 0.5, B * P / 0.3])
    # decode: batch x steps / median per-repeat decode time (0.06 s and 0.19 s)
    assert out[f"decode_tokens_per_s.b{B}"]["value"] == pytest.approx(B * D / 0.125)
    assert out[f"decode_tokens_per_s.b{B}"]["samples"] == pytest.approx([B * D / 0.06, B * D / 0.19])
    # per-token latency over all timed steps: median 0.035 s, p90 by linear interpolation
    lat = [0.01, 0.02, 0.03, 0.04, 0.05, 0.10]
    assert out[f"decode_latency_p50_ms.b{B}"]["value"] == pytest.approx(1e3 * statistics.median(lat))
    assert out[f"decode_latency_p90_ms.b{B}"]["value"] == pytest.approx(1e3 * float(torch.tensor(lat).quantile(0.9)))


def test_kl_divergence_value_and_direction_on_hand_made_distributions():
    p = torch.tensor([[0.5, 0.5, 0.0 + 1e-30], [0.7, 0.2, 0.1]], dtype=torch.float64)
    q = torch.tensor([[0.9, 0.1, 1e-30], [0.1, 0.3, 0.6]], dtype=torch.float64)
    got = infer.kl_divergence(p.log(), q.log())
    want = [sps.entropy(p[i].numpy(), q[i].numpy()) for i in range(2)]  # KL(p || q), nats
    assert got.tolist() == pytest.approx(want, rel=1e-9)
    assert got[0].item() == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1), rel=1e-9)
    reverse = infer.kl_divergence(q.log(), p.log())
    assert reverse[0].item() == pytest.approx(0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5), rel=1e-9)
    assert abs(got[0] - reverse[0]) > 0.1  # KL is not symmetric: the direction matters


class FixedLM(torch.nn.Module):
    """A causal LM stand-in: `probs(window)` gives the next-token distribution at each position."""

    def __init__(self, probs):
        super().__init__()
        self.probs = probs

    def forward(self, input_ids, **kw):
        return types.SimpleNamespace(logits=self.probs(input_ids[0]).log().unsqueeze(0).float())


def _table(rows):
    t = torch.tensor(rows + [[0.25] * 4], dtype=torch.float64)  # + the last position, never scored
    return lambda ids: t[: len(ids)]


def test_kld_through_the_workload_is_reference_to_model():
    ref = [[0.7, 0.1, 0.15, 0.05], [0.2, 0.3, 0.4, 0.1], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]]
    mod = [[0.4, 0.3, 0.2, 0.1], [0.7, 0.1, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]]
    out = infer.perplexity_and_kld(FixedLM(_table(mod)), FixedLM(_table(ref)), torch.tensor([0, 1, 2, 3, 0]), 5, "cpu")
    per_pos = [sps.entropy(r, m) for r, m in zip(ref, mod)]  # KL(P_ref || P_model)
    assert out["kld_mean"]["value"] == pytest.approx(sum(per_pos) / 4, rel=1e-5)
    assert out["kld_p99"]["value"] == pytest.approx(float(torch.tensor(per_pos).quantile(0.99)), rel=1e-5)
    reverse = sum(sps.entropy(m, r) for r, m in zip(ref, mod)) / 4
    assert abs(out["kld_mean"]["value"] - reverse) > 0.01  # 0.300 against KL(model || ref) 0.319
    assert out["top1_agreement"]["value"] == 0.5  # argmax 0,2,3,0 against 0,0,3,3
    assert out["kld_mean"]["n"] == 4


def test_perplexity_known_answers():
    V = 7
    uniform = FixedLM(lambda ids: torch.full((len(ids), V), 1.0 / V, dtype=torch.float64))
    ids = torch.arange(30) % V
    assert infer.perplexity_and_kld(uniform, None, ids, 8, "cpu")["perplexity"]["value"] == pytest.approx(V, rel=1e-6)

    # p(true next token) = 1/2 in windows starting with an even token, 1/4 otherwise; windows of
    # 4 then 3 tokens (3 and 2 predictions): exp of the mean over all 5 tokens = 2^(7/5), not the
    # mean of the window means (2^1.5)
    def half_or_quarter(ids):
        p_true = 0.5 if int(ids[0]) % 2 == 0 else 0.25
        out = torch.full((len(ids), 4), (1 - p_true) / 3, dtype=torch.float64)
        out[torch.arange(len(ids) - 1), ids[1:]] = p_true
        return out

    ids = torch.tensor([0, 1, 2, 3, 1, 2, 3])
    r = infer.perplexity_and_kld(FixedLM(half_or_quarter), None, ids, 4, "cpu")["perplexity"]
    assert r["n"] == 5 and r["value"] == pytest.approx(2 ** (7 / 5), rel=1e-6)


def test_log_probs_are_fp32_from_a_bf16_model():
    model = models.load("tiny", device="cpu", dtype=torch.bfloat16, seed=0, with_tokenizer=False)[0]
    w = torch.arange(100, 132)
    lp = infer._log_probs(model, w)
    with torch.no_grad():
        h = model.model(input_ids=w.unsqueeze(0)).last_hidden_state[0, :-1]
        want = torch.log_softmax(h.float() @ model.lm_head.weight.float().T, -1)
        bf16 = torch.log_softmax(model(input_ids=w.unsqueeze(0)).logits[0, :-1].float(), -1)
    assert lp.dtype == torch.float32
    torch.testing.assert_close(lp, want, atol=1e-5, rtol=1e-5)
    assert (lp - bf16).abs().max() > 1e-3  # the bf16 head's rounding, which KLD no longer carries
    assert not model.lm_head._forward_hooks  # the fp32 hook is removed afterwards


def test_generation_speedups_are_the_median_ratio_over_replicates_and_reach_the_summary():
    from effbench.read import tradeoff
    from effbench.render import report
    from tests._resultsets import infer_run, make_set

    def gen(rid, rep, fast, slow, ident=1.0):
        r = infer_run(rid, [{"name": "prompt_lookup"}])
        r["spec"]["replicate"] = rep
        r["spec"]["group"] = rid.split("@")[0]
        for prompt, a in (("repeat", fast), ("novel", slow)):
            r["metrics"][f"generate_tokens_per_s.{prompt}"] = {"value": a, "unit": "tokens/s", "higher_is_better": True}
            r["metrics"][f"generate_greedy_tokens_per_s.{prompt}"] = {
                "value": 20.0,
                "unit": "tokens/s",
                "higher_is_better": True,
            }
            r["metrics"][f"token_identity.{prompt}"] = {"value": ident, "unit": "fraction", "higher_is_better": True}
        return r

    members = [gen("pl", 0, 40.0, 18.0), gen("pl@s0r1", 1, 50.0, 19.0), gen("pl@s0r2", 2, 44.0, 30.0)]
    assert tradeoff.generation_speedups(members) == {"copy": pytest.approx(2.2), "novel": pytest.approx(0.95)}
    text = report.summary_markdown(make_set([infer_run(), *members]))
    assert "### Generation (generate(), batch 1" in text
    section = text.split("### Generation", 1)[1].split("###", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith("| pl "))
    assert "2.20x" in row and "0.95x" in row and "| yes" in row


def test_a_suite_that_times_nothing_records_speed_memory_and_energy_as_missing(tiny, monkeypatch):
    """batch_sizes = [] (qlora-base, card: quality-only suites) times no decode at all: no throughput
    key, and the region's wall time, energy and peak memory are missing with the reason, so no
    $/Mtok or peak is drawn from an empty region; weight bytes stay measured."""
    from effbench import runspec
    from effbench.read import cost

    make, tok = tiny
    called = []
    monkeypatch.setattr(infer, "_speed", lambda *a, **k: called.append(a) or {})
    monkeypatch.setattr(infer, "quality", lambda *a, **k: ({"ppl": {"value": 2.0}}, {}, {}))
    spec = runspec.RunSpec(id="infer-q", scenario="infer", model="tiny", budget={"batch_sizes": []})
    budget = spec.budget_obj()
    out = infer.run(make(0), tok, None, spec, budget, None, [], None)
    m = out["metrics"]
    assert not called and not [k for k in m if k.startswith(("decode_tokens_per_s", "prefill_tokens_per_s"))]
    assert "peak_rss_bytes" in m and "peak_allocated_bytes" not in m  # CPU's memory figure
    for k in ("speed_wall_s", "energy_j", "peak_rss_bytes"):
        assert m[k]["value"] is None and "batch_sizes = []" in m[k]["reason"], k
    assert m["weight_bytes"]["value"] > 0 and m["ppl"]["value"] == 2.0
    run = {"spec": spec.to_dict(), "metrics": m, "setup": {"wall_s": 1.0}}
    d = cost.derived(run, 0.1, None)
    assert d["cost_usd"] is None and d["usd_per_mtok"] is None

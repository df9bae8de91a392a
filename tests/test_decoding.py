"""`static_cache` and `prompt_lookup` and the infer workload's decoding hooks, CPU, `tiny`.

Properties: the workload's decode loop with static_cache's cache gives the dynamic cache's greedy
tokens at batch 1 and 3 (and again after the cache is reset for the next repeat); its compiled
step (Dynamo with the eager backend: Inductor's C++ build takes ~40 s a graph here) gives them
too, with compile_s and graphs recorded; generate() with each technique's kwargs gives plain
greedy's tokens on both generation prompts; token identity and copyable fraction on hand-made
lists; a mismatch is a failure with the first differing position; refusals (reduce-overhead off
CUDA, the two together, prompt_lookup without generate_tokens, bad parameters) happen before work
and name the valid values.
"""

from __future__ import annotations

import pytest
import torch

from effbench import models, runspec
from effbench.child.workloads import generation, infer
from effbench.techniques import Context, TechniqueError, build, build_all


def fresh():
    return models.load("tiny", device="cpu", dtype=torch.float32, seed=0, with_tokenizer=False)[0]


def ctx(names=(), **hp):
    return Context(scenario="infer", device="cpu", dtype=torch.float32, seed=0, techniques=names, hparams=hp)


@pytest.fixture
def eager_compile(monkeypatch):
    real = torch.compile
    torch._dynamo.reset()
    calls = []

    def stand_in(fn, *args, mode=None, dynamic=None, fullgraph=False, **kwargs):
        calls.append({"mode": mode, "dynamic": dynamic, "fullgraph": fullgraph})
        return real(fn, backend="eager", dynamic=dynamic, fullgraph=fullgraph)

    monkeypatch.setattr(torch, "compile", stand_in)
    return calls


def prompt(batch, n=20):
    return (torch.arange(batch * n) * 37 % 3000).view(batch, n)


@pytest.mark.parametrize("batch", [1, 3])
def test_static_cache_decode_gives_the_dynamic_cache_tokens(batch):
    model = fresh()
    keep = infer.last_logits_kwargs(model)
    base, _, _ = infer.decode(model, prompt(batch), 12, infer.decoding(model, [], ctx()), "cpu", keep)
    t = build("static_cache")
    c = ctx(("static_cache",))
    t.apply(model, c)
    dec = infer.decoding(model, [t], c)
    assert dec.cache_described == "static_cache KV cache" and dec.step is model
    for _ in range(2):  # the second run reuses the cache after reset()
        toks, _, steps = infer.decode(model, prompt(batch), 12, dec, "cpu", keep)
        assert torch.equal(toks, base) and len(steps) == 12
    cache = t._caches[(batch, 32)]
    assert type(cache).__name__ == "StaticCache" and len(t._caches) == 1
    allocated = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
    assert c.records["static_cache"][f"cache_bytes.b{batch}"] == allocated  # the recorded bytes are the real ones
    assert all(layer.keys.shape[0] == batch and layer.keys.shape[2] == 32 for layer in cache.layers)


def test_compiled_static_step_gives_the_same_tokens_and_records(eager_compile):
    model = fresh()
    keep = infer.last_logits_kwargs(model)
    base, _, _ = infer.decode(model, prompt(2, 16), 4, infer.decoding(model, [], ctx()), "cpu", keep)
    t = build("static_cache", {"compile": "default"})
    c = ctx(("static_cache",), batch_sizes=(2,), prompt_len=16, decode_tokens=4)
    assert t.apply(model, c) is model
    assert eager_compile == [{"mode": "default", "dynamic": False, "fullgraph": True}]
    rec = c.records["static_cache"]
    assert rec["compile_s"] > 0 and rec["graphs_compiled"] >= 1
    dec = infer.decoding(model, [t], c)
    assert dec.step is not model
    toks, _, _ = infer.decode(model, prompt(2, 16), 4, dec, "cpu", keep)
    assert torch.equal(toks, base)
    t.finish(model, c)
    assert rec["recompilations"] == 0  # the warm-up covered the workload's shapes


@pytest.mark.parametrize(
    "spec",
    [{"name": "static_cache"}, {"name": "prompt_lookup"}, {"name": "prompt_lookup", "params": {"num_tokens": 3}}],
)
def test_generate_with_the_technique_gives_plain_greedy_tokens(spec, tiny):
    make, tok = tiny
    model = make(0)
    t = build(spec["name"], spec.get("params"))
    c = ctx((t.name,), generate_tokens=24)
    t.apply(model, c)
    kwargs = infer.decoding(model, [t], c).generate_kwargs
    assert kwargs
    ids, _ = __import__("effbench.tasks.reftext", fromlist=["token_ids"]).token_ids(tok, 64)
    for name, p in generation.prompts(ids, 32).items():
        ref = generation.generate(model, p, 24, "cpu", {})
        got = generation.generate(model, p, 24, "cpu", kwargs)
        assert len(ref) == 24 and got == ref, name


def test_generation_measurement_records_identity_and_speeds(tiny):
    make, tok = tiny
    model = make(0)
    from effbench.tasks import reftext

    ids, _ = reftext.token_ids(tok, 64)
    budget = runspec.make_budget("infer", {"prompt_len": 32, "generate_tokens": 8, "repeats": 2})
    t = build("prompt_lookup")
    kwargs = t.generate_kwargs(model, ctx())
    out = generation.measure_generation(model, ids, budget, "cpu", kwargs, "prompt_lookup")
    m = out["metrics"]
    assert out["failures"] == []
    for p in ("repeat", "novel"):
        assert m[f"token_identity.{p}"]["value"] == 1.0 and m[f"token_identity.{p}"]["first_mismatch"] is None
        assert (
            len(m[f"generate_tokens_per_s.{p}"]["samples"]) == 2 and m[f"generate_greedy_tokens_per_s.{p}"]["value"] > 0
        )
        assert 0 <= m[f"copyable_fraction.{p}"]["value"] <= 1
    base = generation.measure_generation(model, ids, budget, "cpu", {}, "plain greedy")["metrics"]
    assert "token_identity.repeat" not in base and "generate_tokens_per_s.novel" in base


def test_a_changed_token_is_a_failure_naming_the_position(monkeypatch, tiny):
    make, tok = tiny
    model = make(0)
    from effbench.tasks import reftext

    ids, _ = reftext.token_ids(tok, 64)
    real = generation.generate

    def off_by_one(model, p, n, device, kwargs):
        toks = real(model, p, n, device, {})
        return toks[:5] + [toks[5] + 1] + toks[6:] if kwargs else toks

    monkeypatch.setattr(generation, "generate", off_by_one)
    budget = runspec.make_budget("infer", {"prompt_len": 32, "generate_tokens": 8, "repeats": 1})
    out = generation.measure_generation(model, ids, budget, "cpu", {"x": 1}, "changed")
    assert out["metrics"]["token_identity.repeat"]["value"] == pytest.approx(7 / 8)
    assert out["metrics"]["token_identity.repeat"]["first_mismatch"] == 5
    assert len(out["failures"]) == 2 and "new token 5" in out["failures"][0]


def test_identity_and_copyable_fraction_by_hand():
    assert generation.identity([1, 2, 3], [1, 2, 3]) == (1.0, None)
    assert generation.identity([1, 9, 3, 4], [1, 2, 3, 4]) == (0.75, 1)
    assert generation.identity([1, 2], [1, 2, 3]) == (2 / 3, 2)
    # prompt 5 6 7 8 | 5 6: the bigram (8, 5)... new tokens 7 8 follow (5, 6) and (6, 7) earlier: hits
    assert generation.copyable_fraction([5, 6, 7, 8, 5, 6], [7, 8]) == 1.0
    assert generation.copyable_fraction([5, 6, 7, 8, 5, 6], [9, 9]) == 0.0
    p = generation.prompts(torch.arange(100), 40)
    assert p["repeat"].tolist() == list(range(40)) + list(range(20)) and p["novel"].tolist() == list(range(40, 80))


def test_refusals_before_work():
    with pytest.raises(TechniqueError) as e:
        build("static_cache", {"compile": "cudagraphs"})
    assert "reduce-overhead" in str(e.value) and "none" in str(e.value)
    with pytest.raises(TechniqueError, match="out of range"):
        build("prompt_lookup", {"num_tokens": 0})
    assert "CUDA" in build("static_cache", {"compile": "reduce-overhead"}).skip_reason("infer", "cpu")
    assert "infer" in build("prompt_lookup").skip_reason("train", "cpu")
    with pytest.raises(TechniqueError, match="assisted generation"):
        build_all([{"name": "static_cache"}, {"name": "prompt_lookup"}])
    with pytest.raises(TechniqueError, match="torch_compile"):
        build_all([{"name": "static_cache", "params": {"compile": "default"}}, {"name": "torch_compile"}])
    build_all([{"name": "static_cache"}, {"name": "torch_compile"}])
    spec = runspec.RunSpec(id="pl", scenario="infer", model="tiny", techniques=({"name": "prompt_lookup"},))
    with pytest.raises(runspec.ConfigError, match="generate_tokens"):
        runspec.validate(spec)
    runspec.validate(
        runspec.RunSpec(
            id="pl", scenario="infer", model="tiny", techniques=spec.techniques, budget={"generate_tokens": 8}
        )
    )


def test_a_run_whose_tokens_change_fails_with_its_figures_kept(monkeypatch, tmp_path):
    """Through the child's run_spec: the workload's failure turns status to failed, metrics stay."""
    from effbench.child.main import run_spec

    real = generation.generate

    def changed(model, p, n, device, kwargs):
        toks = real(model, p, n, device, {})
        return [toks[0] + 1] + toks[1:] if kwargs else toks

    monkeypatch.setattr(generation, "generate", changed)
    monkeypatch.chdir(tmp_path)
    budget = {"batch_sizes": [1], "prompt_len": 16, "decode_tokens": 2, "repeats": 1, "generate_tokens": 4}
    spec = runspec.RunSpec(
        id="pl",
        scenario="infer",
        model="tiny",
        techniques=({"name": "prompt_lookup"},),
        budget={**budget, "quality": False},
    )
    res = run_spec(spec.to_dict())
    assert res["status"] == "failed" and "token identity on the repeat prompt" in res["error"]
    assert (
        res["metrics"]["token_identity.novel"]["value"] == 0.75
        and res["metrics"]["token_identity.novel"]["first_mismatch"] == 0
    )
    assert res["metrics"]["generate_tokens_per_s.repeat"]["value"] > 0

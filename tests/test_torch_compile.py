"""`torch_compile` and the break-even arithmetic, CPU.

Properties checked: bad parameters are refused naming the valid choices; reduce-overhead (CUDA
graphs) is refused on CPU before any work; apply compiles the very instance it is given (a peft
wrapper included) with the configured mode and dynamic, warms it up in the workload's mode,
clears the warm-up's gradients and records compile_s and the graphs compiled; finish counts the
graphs compiled after the warm-up; break_even x (t_base - t_compiled) = compile_s, None when the
compiled run is not faster. Inductor's C++ build takes about 40 s a graph of `tiny` on 2 cores,
so the `tiny` tests compile through a recording stand-in (Dynamo with the eager backend) and one
`slow` test compiles a toy module for real and checks its output against eager to 1e-5 (fp32,
fused kernels reorder sums).
"""

from __future__ import annotations

import types

import pytest
import torch

from effbench import models
from effbench.read.breakeven import break_even, tokens_to_break_even
from effbench.techniques import Context, TechniqueError, build, build_all


def fresh():
    return models.load("tiny", device="cpu", dtype=torch.float32, seed=0, with_tokenizer=False)[0]


def ctx(scenario="train", names=("torch_compile",)):
    return Context(scenario=scenario, device="cpu", dtype=torch.float32, seed=0, techniques=names)


@pytest.fixture
def compiles(monkeypatch):
    """Every torch.compile call's keyword arguments; the function traced by Dynamo's eager backend.
    Dynamo's cache is emptied first: graphs another test compiled for the same code would serve."""
    calls, real = [], torch.compile
    torch._dynamo.reset()

    def stand_in(fn, *args, mode=None, dynamic=None, **kwargs):
        calls.append({"mode": mode, "dynamic": dynamic})
        return real(fn, backend="eager", dynamic=dynamic)

    monkeypatch.setattr(torch, "compile", stand_in)
    return calls


def test_bad_parameters_name_the_valid_choices():
    with pytest.raises(TechniqueError, match="reduce-overhead") as e:
        build("torch_compile", {"mode": "fast"})
    assert "max-autotune" in str(e.value) and "default" in str(e.value)
    with pytest.raises(TechniqueError, match="true/false"):
        build("torch_compile", {"dynamic": "yes"})


def test_reduce_overhead_refused_on_cpu_before_work(compiles):
    t = build("torch_compile", {"mode": "reduce-overhead"})
    assert "CUDA" in t.skip_reason("train", "cpu") and "torch_compile" in t.skip_reason("infer", "cpu")
    model = fresh()
    with pytest.raises(TechniqueError, match="CUDA graphs"):
        t.apply(model, ctx())
    assert compiles == [] and getattr(model, "_compiled_call_impl", None) is None


@pytest.mark.parametrize("scenario", ["train", "infer"])
def test_apply_compiles_the_instance_and_records(scenario, compiles):
    t, c, model = build("torch_compile", {"mode": "max-autotune", "dynamic": False}), ctx(scenario), fresh()
    model.eval()
    out = t.apply(model, c)
    assert out is model and model._compiled_call_impl is not None and not model.training
    assert compiles == [{"mode": "max-autotune", "dynamic": False}]
    assert all(p.grad is None for p in model.parameters()), "the warm-up's gradients must not reach the workload"
    rec = c.records["torch_compile"]
    assert rec["compile_s"] > 0 and rec["graphs_compiled"] >= 1
    with torch.no_grad():
        model(input_ids=torch.arange(5).unsqueeze(0), use_cache=False)  # a shape the warm-up did not cover
    t.finish(model, c)
    assert c.records["torch_compile"]["recompilations"] >= 1  # dynamic=False: one graph per shape


def test_compiles_a_peft_wrapped_model_in_place(compiles):
    techs = build_all([{"name": "lora"}, {"name": "torch_compile"}])
    c, model = ctx(names=("lora", "torch_compile")), fresh()
    wrapped = techs[0].apply(model, c)
    out = techs[1].apply(wrapped, c)
    assert out is wrapped and out.get_base_model() is model and wrapped._compiled_call_impl is not None
    with pytest.raises(TechniqueError, match="compiled already"):
        techs[1].apply(wrapped, c)


def test_break_even_property_on_hand_made_numbers():
    for compile_s, t_c, t_b in [(40.0, 0.008, 0.010), (12.5, 0.5, 0.75), (0.0, 1.0, 2.0)]:
        n = break_even(compile_s, t_c, t_b)
        assert n * (t_b - t_c) == pytest.approx(compile_s)
    assert break_even(40.0, 0.008, 0.010) == pytest.approx(20000.0)  # 40 s / 2 ms saved per token
    assert break_even(40.0, 0.010, 0.010) is None and break_even(40.0, 0.012, 0.010) is None
    with pytest.raises(ValueError):
        break_even(1.0, 0.0, 1.0)


def test_tokens_to_break_even_from_runs():
    def run(tps, compile_s=None):
        rec = {"torch_compile": {"compile_s": compile_s}} if compile_s is not None else {}
        return {"metrics": {"train_tokens_per_s": {"value": tps}}, "technique_records": rec}

    n, why = tokens_to_break_even(run(125.0, compile_s=40.0), run(100.0))
    assert n == pytest.approx(40.0 / (1 / 100 - 1 / 125)) == pytest.approx(20000.0) and why == ""
    n, why = tokens_to_break_even(run(90.0, compile_s=40.0), run(100.0))
    assert n is None and why.startswith("never")
    assert tokens_to_break_even(run(125.0), run(100.0))[0] is None


class Toy(torch.nn.Module):
    """One block's worth of a causal LM's interface: ids -> logits, loss against labels."""

    def __init__(self, vocab=64, width=32):
        super().__init__()
        self.emb, self.mlp = torch.nn.Embedding(vocab, width), torch.nn.Linear(width, vocab)
        self.config = types.SimpleNamespace(vocab_size=vocab)

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = self.mlp(torch.nn.functional.gelu(self.emb(input_ids)))
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        return types.SimpleNamespace(logits=logits, loss=loss)


@pytest.mark.slow
def test_real_inductor_compile_of_a_toy_module():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model, ref = Toy(), Toy()
    ref.load_state_dict(model.state_dict())
    t, c = build("torch_compile"), ctx()
    if t.skip_reason("train", "cpu"):
        pytest.skip(t.skip_reason("train", "cpu"))
    t.apply(model, c)
    ids = torch.randint(0, 64, (3, 7))
    assert torch.allclose(model(input_ids=ids).logits, ref(input_ids=ids).logits, atol=1e-5)
    t.finish(model, c)
    rec = c.records["torch_compile"]
    assert rec["compile_s"] > 0 and rec["graphs_compiled"] >= 1 and rec["recompilations"] >= 0


def test_summary_compile_section_pairs_runs():
    from effbench.render.sections import compile_section

    def run(rid, techs, tps, rec=None):
        spec = {"scenario": "finetune", "model": "tiny", "task": "arith", "techniques": techs}
        return {"id": rid, "spec": spec, "metrics": {"train_tokens_per_s": {"value": tps}}, "technique_records": rec}

    lora, tc = {"name": "lora"}, {"name": "torch_compile"}
    rec = {"torch_compile": {"compile_s": 40.0, "recompilations": 3}}
    runs = [run("full", [], 100.0), run("lora", [lora], 100.0), run("lora-tc", [lora, tc], 125.0, rec)]
    text = "\n".join(compile_section(runs))
    assert "| lora-tc" in text and "| lora " in text and "20,000 tokens" in text and "40.0" in text
    assert compile_section(runs[:2]) == []
    assert "no uncompiled partner" in "\n".join(compile_section(runs[2:]))

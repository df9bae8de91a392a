"""Inference techniques (quantization, sparsity) on CPU: the contract, the combination checks,
achieved sparsity, Wanda vs magnitude, stored bits per weight, dequantization error bounds,
weight_bytes of quantized models, KLD of a model against itself, and one end-to-end run.

Tolerances: int8 (bnb) rounds the weights to fp16 before quantizing, so its bound is half a
quantization step plus fp16's relative rounding 2^-11; 4-bit bounds are half the widest gap
between adjacent code levels times the block absmax, plus 1% of absmax for the 8-bit
double-quantized absmax itself.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from effbench import models
from effbench.child.workloads.common import weight_bytes
from effbench.child.workloads.infer import perplexity_and_kld
from effbench.techniques import Context, TechniqueError, build, build_all
from effbench.techniques import _bnb4bit as bnb4bit
from effbench.techniques import _weight_masks as _prune
from effbench.techniques._infer_common import block_linears, linear_weight_stats, measured_sparsity

CPU_TECHS = ("int8", "nf4", "fp4", "torchao_int8wo", "magnitude", "wanda", "semi_structured_2_4")
CUDA_TECHS = ("torchao_int4wo", "torchao_fp8")


@pytest.fixture(scope="module")
def tiny():
    model, _, _ = models.load("tiny", device="cpu", dtype=torch.float32, seed=0, with_tokenizer=False)
    return model


def _ctx(names=()):
    g = torch.Generator().manual_seed(1)
    return Context(
        scenario="infer",
        device="cpu",
        dtype=torch.float32,
        techniques=tuple(names),
        calibration_ids=lambda n, length: torch.randint(0, 49152, (n, length), generator=g),
    )


class Toy(torch.nn.Module):
    """One Linear behind an embedding, callable like a causal LM (input_ids=...)."""

    def __init__(self, d_in=256, d_out=128):
        super().__init__()
        self.emb = torch.nn.Embedding(32, d_in)
        self.proj = torch.nn.Linear(d_in, d_out)

    def forward(self, input_ids, use_cache=False):
        return self.proj(self.emb(input_ids))


@pytest.mark.parametrize("name", CPU_TECHS + CUDA_TECHS)
def test_contract(name, tiny):
    t = build(name)
    with pytest.raises(TechniqueError, match="valid: "):
        build(name, {"no_such_param": 1})
    if name in ("nf4", "fp4"):  # train only as the base of adapters (checked by check_scenario)
        assert t.skip_reason("train", "cpu") is None and t.train_needs_after == ("lora",)
    else:
        assert t.skip_reason("train", "cpu") is not None  # inference only
    if name in CUDA_TECHS:
        assert "CUDA" in t.skip_reason("infer", "cpu")
        return
    assert t.skip_reason("infer", "cpu") is None
    m = copy.deepcopy(tiny)
    ctx = _ctx([name])
    assert t.apply(m, ctx) is m
    rec = ctx.records[name]
    assert ("bits_per_weight" in rec) != ("achieved_sparsity" in rec)


def test_combinations(tiny):
    with pytest.raises(TechniqueError, match="before"):
        build_all([{"name": "nf4"}, {"name": "magnitude"}])  # quantized weights cannot be masked
    with pytest.raises(TechniqueError, match="cannot be combined"):
        build_all([{"name": "int8"}, {"name": "nf4"}])
    with pytest.raises(TechniqueError, match="cannot be combined"):
        build_all([{"name": "wanda"}, {"name": "magnitude"}])
    with pytest.raises(TechniqueError):
        build("wanda", {"pattern": "2:4", "sparsity": 0.3})  # 2:4 fixes sparsity at 0.5
    techs = build_all([{"name": "magnitude"}, {"name": "nf4"}])
    m, ctx = copy.deepcopy(tiny), _ctx(["magnitude", "nf4"])
    for t in techs:
        m = t.apply(m, ctx)
    import bitsandbytes.functional as bf

    lin = bnb4bit.linear4bit_modules(m)[0]
    deq = bf.dequantize_4bit(lin.weight.data, lin.weight.quant_state)
    assert (deq == 0).float().mean() >= 0.5  # nf4 has an exact zero: the pruned weights stay zero


@pytest.mark.parametrize(
    "name,params",
    [
        ("magnitude", {"sparsity": 0.5}),
        ("magnitude", {"sparsity": 0.7}),
        ("wanda", {"sparsity": 0.5}),
        ("wanda", {"pattern": "2:4"}),
        ("semi_structured_2_4", {}),
        ("semi_structured_2_4", {"score": "magnitude"}),
    ],
)
def test_achieved_sparsity(name, params, tiny):
    m, ctx = copy.deepcopy(tiny), _ctx([name])
    build(name, params).apply(m, ctx)
    layers = block_linears(m)
    want = params.get("sparsity", 0.5)
    for _, mod in layers:  # round(s * count) zeros per matrix/row: exact on these shapes up to 1 weight
        assert abs(float((mod.weight == 0).float().mean()) - want) <= 1 / mod.weight.numel() + 1e-9
    assert ctx.records[name]["achieved_sparsity"] == pytest.approx(measured_sparsity(layers)["overall"])
    if name == "semi_structured_2_4" or params.get("pattern") == "2:4":
        for _, mod in layers:
            assert int((mod.weight.reshape(-1, 4) != 0).sum(-1).max()) <= 2  # every group of 4: <= 2 kept
        assert ctx.records[name].get("sparse_kernel") is False
    assert torch.equal(m.get_input_embeddings().weight, tiny.get_input_embeddings().weight)  # untouched
    assert torch.equal(m.get_output_embeddings().weight, tiny.get_output_embeddings().weight)


def test_wanda_beats_magnitude_on_outlier_channels():
    torch.manual_seed(0)
    lin = torch.nn.Linear(128, 64, bias=False)
    x = torch.randn(512, 128)
    x[:, :6] *= 25.0  # a few high-norm input channels, as in LLM activations
    w = lin.weight.detach()
    ref = x @ w.T
    norm = x.norm(dim=0)
    errs = {}
    for how, score in (("magnitude", w.abs()), ("wanda", _prune.wanda_score(w, norm))):
        keep = _prune.unstructured_mask(score, 0.5, per_row=how == "wanda")
        errs[how] = float(((x @ (w * keep).T) - ref).pow(2).mean())
    assert errs["wanda"] < 0.7 * errs["magnitude"]


def test_input_norms_match_definition():
    toy = Toy()
    ids = torch.randint(0, 32, (5, 9))
    norms = _prune.input_norms(toy, [("proj", toy.proj)], ids, batch=2)
    direct = toy.emb(ids).reshape(-1, 256).norm(dim=0)
    torch.testing.assert_close(norms["proj"], direct, rtol=1e-5, atol=1e-6)


def _quantized_toy(name, **params):
    toy = Toy()
    ref = toy.proj.weight.detach().clone()
    ctx = _ctx([name])
    build(name, params).apply(toy, ctx)
    return toy, ref, ctx.records[name]


def test_int8_storage_and_error():
    toy, ref, rec = _quantized_toy("int8")
    assert rec["bits_per_weight"] == pytest.approx(8 + 32 / 256)  # int8 + one fp32 scale per row
    w = toy.proj.weight
    deq = w.data.float() * w.SCB[:, None] / 127
    bound = w.SCB[:, None] / 127 / 2 + ref.abs() * 2.0**-11 + 1e-7
    assert ((deq - ref).abs() <= bound).all()
    before = weight_bytes(toy)["total"]
    assert before == rec["quantized_weight_bytes"] + (toy.emb.weight.numel() + toy.proj.bias.numel()) * 4
    with torch.no_grad():
        toy(torch.randint(0, 32, (1, 4)))  # moves SCB onto the layer's state
    assert weight_bytes(toy)["total"] == before


@pytest.mark.parametrize("name,dq", [("nf4", True), ("nf4", False), ("fp4", True)])
def test_4bit_storage_and_error(name, dq):
    import bitsandbytes.functional as bf

    toy, ref, rec = _quantized_toy(name, double_quant=dq)
    n = ref.numel()
    qs = toy.proj.weight.quant_state
    tables = sum(
        t.numel() * t.element_size()
        for t in (qs.code, getattr(qs.state2, "code", None), qs.offset)
        if isinstance(t, torch.Tensor)
    )  # code tables and offset: per layer, not per weight
    expected = bnb4bit.expected_bytes(n, 64, dq) + tables + (4 * len(qs.state2.absmax) - n / 64 * 4 / 256 if dq else 0)
    stored = linear_weight_stats(block_linears(toy))["stored_bytes"]
    assert stored == pytest.approx(expected, abs=4)
    other = (toy.emb.weight.numel() + toy.proj.bias.numel()) * 4  # fp32 embedding and bias
    assert weight_bytes(toy)["total"] == stored + other  # the harness counts the same bytes
    assert rec["bits_per_weight"] == pytest.approx(8 * expected / n, abs=0.01)
    deq = bf.dequantize_4bit(toy.proj.weight.data, qs).float()
    absmax = ref.reshape(-1, 64).abs().amax(-1, keepdim=True)
    half_gap = float(torch.diff(qs.code.float().sort().values).max()) / 2
    err = (deq - ref).reshape(-1, 64).abs()
    assert (err <= absmax * (half_gap + (0.01 if dq else 1e-6)) + 1e-7).all()


def test_torchao_int8wo_storage_and_error():
    toy, ref, rec = _quantized_toy("torchao_int8wo")
    w = toy.proj.weight
    assert 8 + 32 / 256 <= rec["bits_per_weight"] <= 8 + 64 / 256  # int8 + fp32 scale (+ zero point) per row
    err = (w.dequantize().float() - ref).abs()
    assert (err <= w.scale.float().reshape(-1, 1) / 2 * 1.001 + 1e-7).all()
    two = torch.nn.Sequential(Toy(), Toy())  # equal-shaped torchao weights are counted separately
    plain = weight_bytes(two)["total"]
    for t in two:
        build("torchao_int8wo").apply(t, _ctx())
    assert weight_bytes(two)["total"] < plain / 2 and weight_bytes(two)["total"] > 2 * rec["quantized_weight_bytes"]


def test_kld_of_model_against_itself_is_zero(tiny):
    ids = torch.randint(0, 49152, (96,), generator=torch.Generator().manual_seed(0))
    out = perplexity_and_kld(tiny, copy.deepcopy(tiny), ids, 32, "cpu")
    assert out["kld_mean"]["value"] == pytest.approx(0.0, abs=1e-7)
    assert out["kld_p99"]["value"] == pytest.approx(0.0, abs=1e-7)
    assert out["top1_agreement"]["value"] == 1.0


def test_end_to_end_nf4(tmp_path):
    cli = Path(sys.executable).parent / "effbench"
    cmd = [
        str(cli),
        "run",
        "--scenario",
        "infer",
        "--model",
        "tiny",
        "-t",
        "nf4",
        "--budget",
        "batch_sizes=[1,2]",
        "prompt_len=16",
        "decode_tokens=4",
        "repeats=2",
        "ppl_tokens=256",
        "ppl_window=128",
        "probe_limit=12",
        "arith_limit=8",
        "--out",
        str(tmp_path),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    run = json.loads(next(tmp_path.rglob("results.json")).read_text())["runs"][0]
    assert run["status"] == "ok", run.get("error")
    assert 4 < run["technique_records"]["nf4"]["bits_per_weight"] < 6
    assert run["metrics"]["weight_bytes"]["parts"]["quant_constants"] > 0


def _default_arch_on_meta():
    """The default model's architecture (SmolLM2-135M) with no storage: shapes only."""
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        return LlamaForCausalLM(LlamaConfig(**models.SMOLLM2_ARCH))


def test_torchao_int4wo_default_group_size_covers_every_block_linear_of_the_default_model():
    """torchao leaves a layer whose input width the group size does not divide unquantized (128
    and 576 left 180 of 210 block linears untouched): the default group size divides them all, and
    one that does not is refused before torchao runs, with the valid sizes."""
    model = _default_arch_on_meta()
    layers = block_linears(model)
    assert len(layers) == 30 * 7 and {m.in_features for _, m in layers} == {576, 1536}
    g = build("torchao_int4wo").config.group_size
    assert all(m.in_features % g == 0 for _, m in layers)
    with pytest.raises(TechniqueError, match=r"group_size=128 does not divide .*\[576, 1536\].*valid here: \[32, 64\]"):
        build("torchao_int4wo", {"group_size": 128}).apply(model, _ctx(["torchao_int4wo"]))


def test_report_flags_runs_that_left_layers_unchanged():
    from effbench.render import report

    run = {"technique_records": {"torchao_int4wo": {"layers_left_unchanged": 180}, "lora": {"r": 8}}}
    assert report.unchanged_layers(run) == "180 (torchao_int4wo)"
    assert report.unchanged_layers({"technique_records": {"torchao_int8wo": {"layers_left_unchanged": 0}}}) == "–"


def test_feed_2d_gives_a_2d_only_op_the_layout_it_needs():
    """torchao's sparse fp8 linear takes [N, H] only: feed_2d flattens [B, T, H] and restores it,
    checked against the plain linear on CPU with a reference op that refuses anything but 2-D."""
    from effbench.techniques.quant_torchao import feed_2d

    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(24, 40)
    ref = copy.deepcopy(lin)

    def only_2d(x):
        if x.dim() != 2:
            raise RuntimeError(f"2-D input expected, got {tuple(x.shape)}")
        return torch.nn.functional.linear(x, lin.weight, lin.bias)

    lin.forward = only_2d
    with pytest.raises(RuntimeError, match="2-D input expected"):
        lin(torch.randn(2, 3, 24, generator=g))
    feed_2d(lin)
    for shape in ((5, 24), (2, 7, 24), (2, 3, 4, 24)):
        x = torch.randn(*shape, generator=g)
        y = lin(x)
        assert y.shape == (*shape[:-1], 40)
        torch.testing.assert_close(y, ref(x), rtol=0, atol=0)
    assert type(lin).forward is torch.nn.Linear.forward  # the class is untouched
    xt = torch.randn(7, 2, 24, generator=g).transpose(0, 1)  # non-contiguous activations
    torch.testing.assert_close(lin(xt), ref(xt), rtol=0, atol=0)

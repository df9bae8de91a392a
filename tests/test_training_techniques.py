"""Training techniques (lora, qlora, adam8bit, grad_ckpt) on the `tiny` model, CPU, fp32.

Properties checked: the contract (build, unknown parameter, skip reasons, instance kept); only
adapter parameters train, in the number LoRA's shapes give; 4-bit storage is 4 bits per weight
plus the stated absmax overhead, and weight_bytes() counts it; a few steps lower the training
loss for every technique; 8-bit AdamW states are ~1/4 of AdamW's; merged LoRA = unmerged LoRA;
[4-bit, lora] = qlora; checkpointing recomputes blocks without changing loss or gradients; an
evaluation before training leaves 4-bit gradients intact (bitsandbytes' CPU repack trap).

Tolerances (fp32): merged vs unmerged logits 1e-4 absolute (values ~1e0; merging reorders the
sum W x + B(A x)); checkpointed vs plain loss and grads 1e-6 (same ops recomputed, same order).
"""

from __future__ import annotations

import copy

import pytest
import torch

from effbench import models, tasks
from effbench.child.workloads.common import collate, encode, logical_numel, optimizer_state_bytes, weight_bytes
from effbench.techniques import Context, TechniqueError, build, build_all, registry
from effbench.techniques._bnb4bit import expected_bytes, linear4bit_bytes, linear4bit_modules, quantize_linear_4bit

NAMES = ("lora", "qlora", "adam8bit", "grad_ckpt")
# tiny: hidden 64, 4 heads of 16, 2 kv heads, MLP 176, 2 blocks -> per block sum(d_in + d_out)
# over q, k, v, o, gate, up, down = 128 + 96 + 96 + 128 + 240 + 240 + 240
IN_PLUS_OUT_PER_BLOCK, OUT_PER_BLOCK, BLOCKS = 1168, 608, 2


@pytest.fixture(scope="module")
def tok():
    return models.load("tiny", device="cpu", dtype=torch.float32, seed=0)[1]


def fresh(seed=0):
    return models.load("tiny", device="cpu", dtype=torch.float32, seed=seed, with_tokenizer=False)[0]


def ctx(names=()):
    return Context(
        scenario="train", device="cpu", dtype=torch.float32, seed=0, hparams={"lr": 1e-3}, techniques=tuple(names)
    )


def applied(specs, c=None):
    c = c or ctx([s["name"] for s in specs])
    techs = build_all(specs)
    model = fresh()
    for t in techs:
        model = t.apply(model, c)
    return model, techs, c


@pytest.fixture(scope="module")
def batch(tok):
    data = tasks.load("arith", n_train=8, n_eval=8, seed=0)
    return collate(encode(tok, data.train), tok.pad_token_id, "cpu")


def train(model, techs, batch, steps=4, lr=1e-3):
    torch.manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = None
    for t in techs:
        opt = t.make_optimizer(params, ctx()) or opt
    opt = opt or torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    for g in opt.param_groups:  # as the harness does: the run's lr for every optimizer
        g["lr"] = lr
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    model.eval()
    return losses, opt


# -- contract --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_contract(name):
    assert name in registry()
    with pytest.raises(TechniqueError, match=r"rank.*valid"):
        build(name, {"rank": 4})
    why = build(name).skip_reason("infer", "cpu")
    assert why and name in why  # training-only, with a reason naming the technique
    assert build(name).skip_reason("train", "cpu") is None
    model = fresh()
    out = build(name).apply(model, ctx([name]))
    base = out.get_base_model() if hasattr(out, "get_base_model") else out
    assert base is model


def test_bad_values_and_skips():
    with pytest.raises(TechniqueError, match="r=0"):
        build("lora", {"r": 0})
    with pytest.raises(TechniqueError, match="fp8"):
        build("qlora", {"quant_type": "fp8"})
    with pytest.raises(TechniqueError, match="cannot be combined"):
        build_all([{"name": "lora"}, {"name": "qlora"}])
    why = build("adam8bit", {"paged": True}).skip_reason("train", "cpu")
    assert "adam8bit" in why and "CUDA" in why and "paged=false" in why
    on_cuda = build("adam8bit", {"paged": True}).skip_reason("train", "cuda")
    assert on_cuda is None if torch.cuda.is_available() else ("adam8bit" in on_cuda and "torch.cuda" in on_cuda)


# -- what trains -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,params,extra",
    [("lora", {"r": 8}, 0), ("lora", {"r": 4, "use_dora": True}, OUT_PER_BLOCK), ("qlora", {"r": 8}, 0)],
)
def test_only_adapters_train(name, params, extra):
    model, _, c = applied([{"name": name, "params": params}])
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable), sorted(trainable)[:5]
    n = params["r"] * IN_PLUS_OUT_PER_BLOCK * BLOCKS + extra * BLOCKS  # DoRA: one magnitude per output row
    assert sum(trainable.values()) == n == c.records[name]["adapter_params"]
    # the saved adapter: fp32 values plus a safetensors header (< 16 KiB for 28 tensors)
    assert 4 * n <= c.records[name]["adapter_bytes"] <= 4 * n + 16384


@pytest.mark.parametrize("double_quant", [True, False])
def test_qlora_storage_is_4bit_plus_absmax(double_quant):
    import bitsandbytes as bnb

    model, _, c = applied([{"name": "qlora", "params": {"double_quant": double_quant, "blocksize": 64}}])
    mods = linear4bit_modules(model)
    assert len(mods) == 7 * BLOCKS and all(isinstance(m, bnb.nn.Linear4bit) for m in mods)
    inner = model.get_base_model()  # embeddings and the (tied) output layer stay unquantized
    assert type(inner.lm_head) is torch.nn.Linear and inner.lm_head.weight is inner.model.embed_tokens.weight
    n_total, expect = 0, 0.0
    for m in mods:
        n = m.in_features * m.out_features
        qs = m.weight.quant_state
        assert m.weight.data.dtype == torch.uint8 and m.weight.data.numel() == n // 2  # 2 weights per byte
        assert qs.absmax.numel() == n // 64  # one constant per 64 weights
        assert qs.absmax.dtype == (torch.uint8 if double_quant else torch.float32)
        n_total += n
        expect += expected_bytes(n, 64, double_quant)
    measured = linear4bit_bytes(model)
    assert measured == c.records["qlora"]["quantized_weight_bytes"]
    # beyond the format: a 16-entry fp32 code per layer (+ an fp32 offset and the 256-entry
    # nested code with double quantization)
    slack = len(mods) * (64 + 4 + 1024) + 16 * len(mods)  # the last term: nested absmax rounding up
    assert expect <= measured <= expect + slack
    bits = 8 * expect / n_total
    assert bits == pytest.approx(4 + 8 * (1 + 4 / 256) / 64 if double_quant else 4.5, rel=1e-9)
    # weight_bytes() counts the packed weights and all their constants, nothing twice
    wb = weight_bytes(model)
    plain = sum(p.numel() * p.element_size() for p in model.parameters() if not isinstance(p, bnb.nn.Params4bit))
    plain_buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    assert wb["total"] == plain + plain_buffers + measured
    # parameter counts (trainable fraction, FLOPs) see weights, not packed bytes
    adapters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(logical_numel(p) for p in model.parameters()) == sum(p.numel() for p in fresh().parameters()) + adapters


# -- training --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "specs",
    [
        [{"name": "lora", "params": {"r": 8}}],
        [{"name": "lora", "params": {"r": 8, "use_dora": True}}],
        [{"name": "qlora", "params": {"r": 8}}],
        [{"name": "lora", "params": {"r": 8}}, {"name": "adam8bit", "params": {"min_8bit_size": 0}}],
        [{"name": "lora", "params": {"r": 8}}, {"name": "grad_ckpt"}],
        [{"name": "adam8bit"}],  # full fine-tuning: the embedding's states are 8-bit
    ],
    ids=lambda s: "+".join(t["name"] + ("-dora" if t.get("params", {}).get("use_dora") else "") for t in s),
)
def test_steps_reduce_training_loss(specs, batch):
    model, techs, _ = applied(specs)
    lr = 1e-2 if any(s["name"] in ("lora", "qlora") for s in specs) else 1e-3
    losses, _ = train(model, techs, batch, steps=4, lr=lr)
    assert losses[-1] < losses[0] - 0.5, losses  # nats; the tiny model starts near ln(49152) = 10.8


def test_adam8bit_states_are_a_quarter(batch):
    sizes = {}
    for specs in ([], [{"name": "adam8bit"}]):
        model, techs, _ = applied(specs)
        _, opt = train(model, techs, batch, steps=1)
        sizes[bool(specs)] = optimizer_state_bytes(opt)
    params = list(fresh().parameters())
    n = sum(p.numel() for p in params)
    assert sizes[False] == 8 * n + 4 * len(params)  # AdamW: two fp32 states + an fp32 step count
    # 8-bit: 2 x (1 B + 4 B / 256) per value; the small norm vectors stay fp32 (< 4096 values)
    assert 0.25 <= sizes[True] / sizes[False] <= 0.26


@pytest.mark.parametrize("use_dora", [False, True])
def test_merged_lora_equals_unmerged(use_dora, batch, tok):
    from effbench.child.workloads import finetune

    model, techs, _ = applied([{"name": "lora", "params": {"r": 8, "use_dora": use_dora}}])
    train(model, techs, batch, steps=3, lr=1e-2)  # B != 0 so merging changes the weights
    assert any(float(p.detach().abs().sum()) > 0 for n, p in model.named_parameters() if "lora_B" in n)
    ids = batch["input_ids"]
    with torch.no_grad():
        unmerged = model(input_ids=ids).logits
        merged_model = copy.deepcopy(model).merge_and_unload()
        merged = merged_model(input_ids=ids).logits
    assert not any("lora" in n for n, _ in merged_model.named_parameters())
    torch.testing.assert_close(merged, unmerged, atol=1e-4, rtol=0)
    if not use_dora:  # accuracy per item through lm-eval (the harness's metric), once
        evals = tasks.load("arith", n_train=8, n_eval=4, seed=0).eval
        a = finetune.evaluate_accuracy(model, tok, evals, "cpu", 4, 0)
        b = finetune.evaluate_accuracy(merged_model, tok, evals, "cpu", 4, 0)
        assert a["items"] == b["items"] and a["value"] == b["value"]


def test_4bit_then_lora_equals_qlora(batch):
    settings = dict(quant_type="nf4", double_quant=True, blocksize=64)
    q, _, _ = applied([{"name": "qlora", "params": {"r": 8, **settings}}])
    m = quantize_linear_4bit(fresh(), "nf4", True, torch.float32, 64)  # what `nf4` does
    m = build("lora", {"r": 8}).apply(m, ctx(["nf4", "lora"]))
    pairs = [[(n, p.shape) for n, p in x.named_parameters() if p.requires_grad] for x in (q, m)]
    assert pairs[0] == pairs[1] and pairs[0]
    with torch.no_grad():
        assert torch.equal(q(input_ids=batch["input_ids"]).logits, m(input_ids=batch["input_ids"]).logits)
    if "nf4" in registry():  # the registered technique (techniques/quant_bnb.py), as a suite names it
        shared = {k: v for k, v in vars(build("nf4").config).items() if k in settings}
        r, _, _ = applied([{"name": "nf4", "params": shared}, {"name": "lora", "params": {"r": 8}}])
        q2, _, _ = applied([{"name": "qlora", "params": {"r": 8, **shared}}])
        with torch.no_grad():
            assert torch.equal(q2(input_ids=batch["input_ids"]).logits, r(input_ids=batch["input_ids"]).logits)
        assert build("nf4").skip_reason("train", "cpu") is None  # a finetune run takes [nf4, lora]


def test_eval_before_training_keeps_4bit_gradients(batch):
    grads = []
    for evaluate_first in (False, True):
        model, _, _ = applied([{"name": "qlora", "params": {"r": 8}}])
        if evaluate_first:  # what the harness does before training (eval mode, no grad)
            model.eval()
            with torch.no_grad():
                model(input_ids=batch["input_ids"])
        model.train()
        model(**batch).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    first = [n for n in grads[0] if "layers.0." in n and "lora_B" in n]
    assert first and all(float(grads[0][n].abs().sum()) > 0 for n in first)
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], atol=0, rtol=0)


def test_grad_ckpt_recomputes_blocks_same_loss_and_grads(batch):
    results = []
    for specs in ([{"name": "lora"}], [{"name": "lora"}, {"name": "grad_ckpt"}]):
        model, _, c = applied(specs)
        calls = []
        block = model.get_base_model().model.layers[0]
        # a pre-hook: non-reentrant recomputation stops early, before a forward hook would run
        block.register_forward_pre_hook(lambda *a, calls=calls: calls.append(1))
        model.train()
        loss = model(**batch).loss
        loss.backward()
        results.append(
            (
                float(loss),
                {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
                len(calls),
                c.records.get("grad_ckpt"),
            )
        )
    (l0, g0, n0, _), (l1, g1, n1, rec) = results
    assert (n0, n1) == (1, 2)  # the checkpointed block runs again in the backward
    assert rec == {"checkpointed_blocks": BLOCKS, "blocks": BLOCKS}
    assert l1 == pytest.approx(l0, abs=1e-6) and g0.keys() == g1.keys()
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], atol=1e-6, rtol=0)


def test_qlora_quantizes_from_the_compute_dtype():
    """QLoRA's recipe: the 4-bit weights are quantized from, and dequantize to, the compute dtype
    (bf16 under CUDA's autocast), not the fp32 master weights. The default follows the workload:
    bf16 when training on CUDA, the run's dtype elsewhere; an explicit compute_dtype wins."""
    from effbench.techniques._bnb4bit import default_compute_dtype

    cuda_train = Context(scenario="train", device="cuda", dtype=torch.float32)
    assert default_compute_dtype(cuda_train) == torch.bfloat16
    assert default_compute_dtype(ctx()) == torch.float32
    assert default_compute_dtype(Context(scenario="infer", device="cuda", dtype=torch.bfloat16)) == torch.bfloat16
    ref = fresh()
    model, _, _ = applied([{"name": "qlora", "params": {"compute_dtype": "bfloat16"}}])
    mods = linear4bit_modules(model)
    assert mods and all(
        m.weight.quant_state.dtype == torch.bfloat16 and m.compute_dtype == torch.bfloat16 for m in mods
    )
    import bitsandbytes.functional as bf

    # dequantized weights come back in bf16, within 4-bit rounding of the bf16-rounded original
    q = model.get_base_model().model.layers[0].mlp.up_proj.base_layer
    w0 = ref.model.layers[0].mlp.up_proj.weight.data.to(torch.bfloat16)
    deq = bf.dequantize_4bit(q.weight.data, q.weight.quant_state)
    assert deq.dtype == torch.bfloat16
    absmax = w0.float().reshape(-1, 64).abs().amax(-1, keepdim=True)
    assert ((deq.float() - w0.float()).reshape(-1, 64).abs() <= absmax * 0.2).all()
    plain, _, _ = applied([{"name": "qlora"}])  # on CPU: the run's fp32
    assert all(m.weight.quant_state.dtype == torch.float32 for m in linear4bit_modules(plain))

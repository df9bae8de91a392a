"""Training FLOPs per token against torch.utils.flop_counter.FlopCounterMode, which counts every
matmul that really runs (aten.mm/addmm/bmm) during a real forward + backward step.

The model is a small Llama (tiny's widths, a 512-token vocabulary so that the blocks weigh as
much as the head) with eager attention, whose QK^T and AV are bmm calls the counter sees (it
does not count CPU SDPA kernels). The rotary embedding's one small bmm per sequence
(inv_freq x positions) is outside our count and subtracted by module. Expected agreement: exact
(both are sums of integers); 1e-9 relative allows float summation order.

transformers and the flop counter are imported inside the tests: both import triton, and triton
imported at collection, before the kernel tests set TRITON_INTERPRET, would not interpret.
"""

from __future__ import annotations

import pytest
import torch

from effbench.child import measure
from effbench.child.workloads import flops
from effbench.models import TINY_ARCH
from effbench.techniques import Context, build_all

BATCH, SEQ, VOCAB = 3, 20, 512


def model_with(specs):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**dict(TINY_ARCH, vocab_size=VOCAB), attn_implementation="eager"))
    ctx = Context(
        scenario="train",
        device="cpu",
        dtype=torch.float32,
        seed=0,
        hparams={"lr": 1e-3},
        techniques=tuple(s["name"] for s in specs),
    )
    for t in build_all(specs):
        model = t.apply(model, ctx)
    return model


def counted_per_token(model, ids) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    with FlopCounterMode(display=False) as fc:
        model(input_ids=ids, labels=ids).loss.backward()
    rotary = sum(v for k, per_op in fc.get_flop_counts().items() if k.endswith("rotary_emb") for v in per_op.values())
    return (fc.get_total_flops() - rotary) / ids.numel()


CASES = {
    "full": [],
    "lora": [{"name": "lora", "params": {"r": 4}}],
    "grad_ckpt": [{"name": "grad_ckpt", "params": {}}],
    "grad_ckpt_reentrant": [{"name": "grad_ckpt", "params": {"use_reentrant": True}}],
    "lora+grad_ckpt": [{"name": "lora", "params": {"r": 4}}, {"name": "grad_ckpt", "params": {}}],
    "grad_ckpt_every2": [{"name": "grad_ckpt", "params": {"every_n_layers": 2}}],
}


@pytest.mark.parametrize("case", list(CASES))
def test_executed_flops_match_flop_counter(case):
    model = model_with(CASES[case])
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=torch.Generator().manual_seed(1))
    f = flops.per_token(flops.census(model, ids[:1]), model.config, SEQ)
    assert f["executed"] == pytest.approx(counted_per_token(model, ids), rel=1e-9)
    parts = f["executed_parts"]
    assert f["executed"] == pytest.approx(parts["forward"] + parts["backward"] + parts["recomputed_forward"])
    assert (parts["recomputed_forward"] > 0) == ("grad_ckpt" in case)


def test_model_flops_are_full_finetuning_with_the_head():
    full, lora = model_with([]), model_with(CASES["lora"])
    ids = torch.randint(0, VOCAB, (1, SEQ), generator=torch.Generator().manual_seed(1))
    f_full = flops.per_token(flops.census(full, ids), full.config, SEQ)
    f_lora = flops.per_token(flops.census(lora, ids), lora.config, SEQ)
    # the model figure does not depend on the technique, and for full fine-tuning it is what runs
    assert f_full["model"] == f_lora["model"] == pytest.approx(f_full["executed"])
    # the tied output head (vocab x hidden, its weight the embedding's) is in: 6*d*V per token
    d, L = TINY_ARCH["hidden_size"], TINY_ARCH["num_hidden_layers"]
    blocks = sum(
        m.in_features * m.out_features
        for n, m in full.named_modules()
        if isinstance(m, torch.nn.Linear) and ".layers." in n
    )
    assert full.lm_head.weight is full.model.embed_tokens.weight
    assert f_full["model"] == 6 * (blocks + d * VOCAB) + 12 * L * SEQ * d
    # LoRA: frozen base weights skip their weight gradients (and layer 0's q/k/v their input
    # gradients), adapters add a little: fewer FLOPs run than full fine-tuning's
    assert f_lora["executed"] < f_full["executed"]
    assert f_lora["executed_parts"]["adapter_weights"] > 0


def test_census_leaves_the_model_as_it_was():
    model = model_with(CASES["grad_ckpt"])
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flops.census(model, torch.zeros(1, 4, dtype=torch.long))
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_mfu_metric_from_executed_flops(monkeypatch):
    from effbench.child.workloads.finetune import flop_metrics

    model = model_with(CASES["lora"])
    pairs = [(list(range(5, 15)), list(range(15, 20)))] * 4  # 15 tokens per sequence
    monkeypatch.setattr(measure, "peak_flops", lambda device: (1e9, "test peak"))
    m = flop_metrics(model, pairs, 0, "cpu", step_tokens=[60, 60], batch_size=4, tokens_per_s=100.0)
    assert m["train_executed_flops_per_token"]["parts"]["forward"] > 0
    assert m["mfu"]["value"] == pytest.approx(m["train_executed_flops_per_token"]["value"] * 100.0 / 1e9)
    assert m["train_flops_per_token"]["parts"]["seq_len"] == 15
    monkeypatch.setattr(measure, "peak_flops", lambda device: (None, "MFU is reported on CUDA GPUs only"))
    m = flop_metrics(model, pairs, 0, "cpu", step_tokens=[60], batch_size=4, tokens_per_s=100.0)
    assert m["mfu"] == {"value": None, "reason": "MFU is reported on CUDA GPUs only"}

"""`packing` on the `tiny` model, CPU, fp32.

Properties checked: a packed row holds exactly the examples' tokens with positions restarting per
example; its loss equals the padded batch's (the same mean over answer tokens) and each example's
own loss weighted by its answer tokens, and its gradients equal the padded batch's, so no token
attends across a boundary; the finetune workload takes the technique's batch builder and counts
real tokens; the pad fraction it records is the padded batches' pad share.

Tolerances (fp32): loss 1e-5 absolute (values ~1e1), gradients 1e-5 relative to their largest
element (sdpa over one long row and over padded rows sums in another order).
"""

from __future__ import annotations

import pytest
import torch

from effbench import models, tasks
from effbench.child.workloads import finetune
from effbench.child.workloads.common import collate, encode, input_tokens
from effbench.techniques import Context, TechniqueError, build
from effbench.techniques.packing import pack


@pytest.fixture(scope="module")
def tok():
    return models.load("tiny", device="cpu", dtype=torch.float32, seed=0)[1]


@pytest.fixture(scope="module")
def pairs(tok):
    ps = encode(tok, tasks.load("arith-noisy", n_train=6, n_eval=4, seed=1).train)
    assert len({len(p) + len(a) for p, a in ps}) > 1, "the equivalence needs examples of unequal lengths"
    return ps


def fresh():
    return models.load("tiny", device="cpu", dtype=torch.float32, seed=0, with_tokenizer=False)[0]


def ctx():
    return Context(scenario="train", device="cpu", dtype=torch.float32, seed=0, techniques=("packing",))


def loss_and_grads(batch):
    model = fresh()
    model.train()
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_contract():
    t = build("packing")
    assert t.family == "batching" and t.skip_reason("infer", "cpu") and "packing" in t.skip_reason("infer", "cpu")
    assert t.skip_reason("train", "cpu") is None
    with pytest.raises(TechniqueError, match="valid"):
        build("packing", {"rows": 2})


def test_packed_row_layout(pairs):
    b = pack(pairs, "cpu")
    lengths = [len(p) + len(a) for p, a in pairs]
    assert b["input_ids"].shape == (1, sum(lengths)) and "attention_mask" not in b and b["use_cache"] is False
    assert b["input_ids"][0].tolist() == [t for p, a in pairs for t in p + a]
    assert b["position_ids"][0].tolist() == [i for n in lengths for i in range(n)]
    assert int((b["labels"] != -100).sum()) == sum(len(a) for _, a in pairs)
    assert input_tokens(b) == sum(lengths) == input_tokens(collate(pairs, 0, "cpu"))


def test_packed_loss_and_grads_equal_unpacked(pairs, tok):
    packed_loss, packed_grads = loss_and_grads(pack(pairs, "cpu"))
    padded_loss, padded_grads = loss_and_grads(collate(pairs, tok.pad_token_id, "cpu"))
    model = fresh()
    with torch.no_grad():  # each example alone, weighted by its answer tokens
        alone = [(float(model(**collate([pr], tok.pad_token_id, "cpu")).loss), len(pr[1])) for pr in pairs]
    per_sequence = sum(loss * n for loss, n in alone) / sum(n for _, n in alone)
    assert abs(float(packed_loss) - float(padded_loss)) < 1e-5
    assert abs(float(packed_loss) - per_sequence) < 1e-5
    for name, g in padded_grads.items():
        scale = float(g.abs().max()) or 1.0
        assert float((packed_grads[name] - g).abs().max()) <= 1e-5 * scale, name


def test_cross_boundary_attention_would_change_the_loss(pairs):
    """The check above can fail: without restarting positions the row is one long sequence."""
    b = pack(pairs, "cpu")
    b["position_ids"] = torch.arange(b["input_ids"].shape[1]).unsqueeze(0)
    with torch.no_grad():
        leaked = float(fresh()(**b).loss)
        packed = float(fresh()(**pack(pairs, "cpu")).loss)
    assert abs(leaked - packed) > 1e-3


def test_workload_takes_the_batch_builder_and_records_pad_fraction(pairs, tok):
    c = ctx()
    t = build("packing")
    fn = finetune._collate_of([build("baseline"), t], c)
    assert finetune._collate_of([build("baseline")], c) is collate
    batch = fn(pairs[:3], tok.pad_token_id, "cpu")
    fn(pairs[3:], tok.pad_token_id, "cpu")
    lengths = [len(p) + len(a) for p, a in pairs]
    padded = 3 * max(lengths[:3]) + 3 * max(lengths[3:])
    rec = c.records["packing"]
    assert rec["tokens"] == sum(lengths) and rec["padded_tokens"] == padded and rec["batches"] == 2
    assert rec["pad_fraction_padded"] == pytest.approx((padded - sum(lengths)) / padded)
    assert input_tokens(batch) == sum(lengths[:3])

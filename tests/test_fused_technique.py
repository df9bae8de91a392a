"""The `fused` technique on the tiny Llama (fp32, CPU, Triton interpreter): same logits, loss and
gradients as the unfused model, a 5-step AdamW loss curve that tracks the unfused one, and the
contract (instance-only changes, switches, skip on CPU without the interpreter, unknown
architectures rejected).

Tolerances (fp32): logits and loss 1e-4 absolute (values ~1e1; the kernels reorder fp32 sums);
loss curve 1e-4 absolute per step over 5 steps (measured ~2e-6; AdamW's normalised updates can
amplify tiny gradient differences where a gradient is near zero, hence the margin).
"""

from __future__ import annotations

import copy
import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers.models.llama import modeling_llama as ml  # noqa: E402

from effbench.techniques import Context, TechniqueError, build  # noqa: E402

VOCAB = 49152


@pytest.fixture(scope="module")
def tiny_model(tiny):
    """One seeded tiny Llama (conftest's factory); each test deep-copies it before changing it."""
    make, _ = tiny
    return make(0)


def _ctx():
    return Context(scenario="train", device="cpu", dtype=torch.float32)


def _fused(model, **params):
    m = copy.deepcopy(model)
    return build("fused", params).apply(m, _ctx())


def _batch(seed=0, b=2, s=24):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (b, s), generator=g)
    mask = torch.ones_like(ids)
    mask[1, s - 5 :] = 0  # right padding on the second row
    labels = ids.masked_fill(mask == 0, -100)
    return ids, mask, labels


def test_same_logits_loss_and_grads(tiny_model):
    ref, fused = copy.deepcopy(tiny_model), _fused(tiny_model)
    ids, mask, labels = _batch()
    with torch.no_grad():  # inference: labels None -> logits as before
        torch.testing.assert_close(
            fused(input_ids=ids, attention_mask=mask).logits,
            ref(input_ids=ids, attention_mask=mask).logits,
            atol=1e-4,
            rtol=0,
        )
    out_f = fused(input_ids=ids, attention_mask=mask, labels=labels)
    out_r = ref(input_ids=ids, attention_mask=mask, labels=labels)
    assert out_f.logits is None  # flce: the loss never needed the logits
    torch.testing.assert_close(out_f.loss, out_r.loss, atol=1e-4, rtol=0)
    out_f.loss.backward()
    out_r.loss.backward()
    for (name, pf), (_, pr) in zip(fused.named_parameters(), ref.named_parameters()):
        scale = pr.grad.abs().max().item()
        torch.testing.assert_close(
            pf.grad, pr.grad, atol=1e-5 * max(scale, 1e-3), rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}"
        )


def test_num_items_in_batch_matches_transformers(tiny_model):
    """Gradient accumulation passes num_items_in_batch: loss = sum / items, as ForCausalLMLoss."""
    ref, fused = copy.deepcopy(tiny_model), _fused(tiny_model)
    ids, mask, labels = _batch(1)
    with torch.no_grad():
        lf = fused(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=100).loss
        lr = ref(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=100).loss
    torch.testing.assert_close(lf, lr, atol=1e-4, rtol=0)


def test_training_curve_tracks_unfused(tiny_model):
    curves = []
    for model in (copy.deepcopy(tiny_model), _fused(tiny_model)):
        torch.manual_seed(0)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        losses = []
        ids, mask, labels = _batch(0)
        for _ in range(5):  # one batch repeated: the loss must fall (memorisation)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.item())
        curves.append(losses)
    ref, fused = curves
    assert ref[-1] < ref[0] - 0.1  # the run trains, so the comparison means something
    assert max(abs(a - b) for a, b in zip(ref, fused)) < 1e-4, (ref, fused)  # measured: ~2e-6


def test_same_loss_and_grads_under_bf16_autocast(tiny_model):
    """The harness fine-tunes on CUDA with bf16 autocast over fp32 weights; CPU autocast stands
    in. Both models round to bf16, so: loss within 2e-2, each grad within 5% (relative L2 norm)."""
    ref, fused = copy.deepcopy(tiny_model), _fused(tiny_model)
    ids, mask, labels = _batch(2, s=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_f = fused(input_ids=ids, attention_mask=mask, labels=labels)
        out_r = ref(input_ids=ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(out_f.loss, out_r.loss, atol=2e-2, rtol=0)
    out_f.loss.backward()
    out_r.loss.backward()
    for (name, pf), (_, pr) in zip(fused.named_parameters(), ref.named_parameters()):
        assert pf.grad.dtype == torch.float32
        assert (pf.grad - pr.grad).norm() <= 0.05 * pr.grad.norm(), name


def test_switches_and_instance_only(tiny_model):
    class_forwards = {c: c.forward for c in (ml.LlamaRMSNorm, ml.LlamaMLP, ml.LlamaAttention, ml.LlamaForCausalLM)}
    ctx = _ctx()
    m = build("fused", {"flce": False, "rope": False}).apply(copy.deepcopy(tiny_model), ctx)
    assert ctx.records["fused"]["modules_swapped"] == {"rmsnorm": 5, "swiglu": 2, "rope": 0, "flce": 0}
    assert "forward" in m.model.norm.__dict__ and "forward" not in m.model.layers[0].self_attn.__dict__
    ids, mask, labels = _batch()
    with torch.no_grad():  # flce off: logits still come back with the loss
        assert m(input_ids=ids, attention_mask=mask, labels=labels).logits.shape == (2, 24, VOCAB)
    assert {c: c.forward for c in class_forwards} == class_forwards  # classes untouched
    assert "forward" not in tiny_model.model.norm.__dict__  # other instances untouched


def test_rejects_other_architectures():
    from transformers import MistralConfig, MistralForCausalLM

    other = MistralForCausalLM(
        MistralConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
    )
    with pytest.raises(TechniqueError, match="unsupported architecture MistralForCausalLM.*LlamaForCausalLM"):
        build("fused").apply(other, _ctx())


def test_skip_reason(monkeypatch):
    tech = build("fused")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert "interpreter" in tech.skip_reason("train", "cpu")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert tech.skip_reason("train", "cpu") is None
    assert tech.skip_reason("infer", "cpu") is None

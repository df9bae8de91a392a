"""`attention`, CPU: the pinned SDPA kernel is the one that runs, its outputs equal torch's default
choice, and backends this device cannot run are refused naming the ones it can.

Properties: `math` and `flash` (torch's CPU FlashAttention) give the default backend's logits to
1e-5 (fp32, `tiny`), with and without a padding mask, and the same fine-tuning loss and gradients
(1e-5 of the largest gradient element); the profiler sees the pinned kernel's aten op and not the
other's; a reference model loaded beside it keeps the default implementation; `efficient` and
`cudnn` are skipped on CPU and refused by `apply` naming the valid choices; a bad name is refused
before work naming all four.
"""

from __future__ import annotations

import pytest
import torch

from effbench import models
from effbench.techniques import Context, TechniqueError, build, build_all

OPS = {  # the aten op each backend runs on CPU
    "math": "aten::_scaled_dot_product_attention_math",
    "flash": "aten::_scaled_dot_product_flash_attention_for_cpu",
}


def fresh():
    return models.load("tiny", device="cpu", dtype=torch.float32, seed=0, with_tokenizer=False)[0]


def ctx(scenario="infer"):
    return Context(scenario=scenario, device="cpu", dtype=torch.float32, seed=0, techniques=("attention",))


def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 2000, (3, 13), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding, as lm-eval's batches
    mask[2, -3:] = 0  # right padding, as the fine-tuning collate
    return ids, mask


def test_bad_backend_names_the_valid_ones():
    with pytest.raises(TechniqueError) as e:
        build("attention", {"backend": "triton"})
    assert all(b in str(e.value) for b in ("math", "efficient", "flash", "cudnn"))


@pytest.mark.parametrize("backend", ["efficient", "cudnn"])
def test_cuda_kernels_refused_on_cpu_naming_the_valid_ones(backend):
    t = build("attention", {"backend": backend})
    why = t.skip_reason("infer", "cpu")
    assert why and "attention" in why and "CUDA" in why
    with pytest.raises(TechniqueError) as e:
        t.apply(fresh(), ctx())
    assert backend in str(e.value) and "cpu" in str(e.value)
    # the probe names what does run here
    assert build("attention").available(fresh(), ctx())["math"] is None


def test_unavailable_on_this_dtype_names_the_available_ones(monkeypatch):
    import effbench.techniques.attention as att

    real = att.probe
    monkeypatch.setattr(att, "probe", lambda b, *a: "padding mask fails: no kernel" if b == "flash" else real(b, *a))
    with pytest.raises(TechniqueError) as e:
        build("attention", {"backend": "flash"}).apply(fresh(), ctx())
    assert "flash" in str(e.value) and "available here: ['math']" in str(e.value) and "float32" in str(e.value)


@pytest.mark.parametrize("backend", ["math", "flash"])
def test_infer_logits_equal_the_default_backend(backend):
    ref, model = fresh(), fresh()
    c = ctx()
    out = build("attention", {"backend": backend}).apply(model, c)
    assert out is model and model.config._attn_implementation.startswith("effbench_sdpa_")
    assert ref.config._attn_implementation == "sdpa", "the reference model keeps the default implementation"
    assert c.records["attention"]["backend"] == backend and "math" in c.records["attention"]["available_backends"]
    ids, mask = batch()
    with torch.no_grad():
        for kw in ({}, {"attention_mask": mask}):
            a, b = ref(input_ids=ids, **kw).logits, model(input_ids=ids, **kw).logits
            keep = mask.bool() if kw else torch.ones_like(ids, dtype=torch.bool)
            assert torch.allclose(a[keep], b[keep], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["math", "flash"])
def test_the_pinned_kernel_is_the_one_that_runs(backend):
    model = fresh()
    build("attention", {"backend": backend}).apply(model, ctx())
    ids, mask = batch()
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model(input_ids=ids)
        model(input_ids=ids, attention_mask=mask)
    names = {e.key for e in prof.key_averages()}
    other = next(b for b in OPS if b != backend)
    assert OPS[backend] in names and OPS[other] not in names


def test_train_loss_and_gradients_equal_the_default_backend():
    ref, model = fresh(), fresh()
    build("attention", {"backend": "math"}).apply(model, ctx("train"))
    ids, mask = batch()
    labels = ids.masked_fill(mask == 0, -100)
    losses, grads = [], []
    for m in (ref, model):
        m.train()
        loss = m(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
    assert (grads[0] - grads[1]).abs().max() <= 1e-5 * grads[0].abs().max()


def test_stacks_after_lora_on_the_wrapped_instance():
    techs = build_all([{"name": "lora"}, {"name": "attention", "params": {"backend": "math"}}])
    model, c = fresh(), ctx("train")
    wrapped = techs[0].apply(model, c)
    assert techs[1].apply(wrapped, c) is wrapped and model.config._attn_implementation == "effbench_sdpa_math"

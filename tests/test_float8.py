"""`float8` training (torchao.float8): refused up front off CUDA and on GPUs without the recipe's
fp8 kernels (checked with the capability faked), and the conversion, which runs on CPU, swaps
exactly the block Linears whose widths the fp8 matmul takes, never the head. Its speed is the GPU
check's and the gpu suite's to measure."""

from __future__ import annotations

import pytest
import torch

from effbench import runspec
from effbench.techniques import Context, TechniqueError, build


def test_refused_off_cuda_naming_why():
    why = build("float8").skip_reason("train", "cpu")
    assert "float8" in why and "NVIDIA GPU" in why and "'cpu'" in why
    assert "scenarios ['train']" in build("float8").skip_reason("infer", "cuda")


@pytest.mark.parametrize(
    "cap,recipe,refused",
    [
        ((8, 0), "tensorwise", "needs compute capability >= 8.9, this GPU has 8.0"),
        ((8, 9), "tensorwise", None),
        ((8, 9), "rowwise", "needs compute capability >= 9.0, this GPU has 8.9"),
        ((9, 0), "rowwise_with_gw_hp", None),
    ],
)
def test_the_recipe_decides_the_gpus(monkeypatch, cap, recipe, refused):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: cap)
    why = build("float8", {"recipe": recipe}).skip_reason("train", "cuda")
    assert (why is None) if refused is None else (refused in why and recipe in why)


def test_an_unknown_recipe_is_refused_with_the_valid_ones():
    with pytest.raises(TechniqueError, match="tensorwise.*rowwise.*rowwise_with_gw_hp"):
        build("float8", {"recipe": "blockwise"})


def test_a_suite_run_on_cpu_is_skipped_before_any_model_loads(tmp_path):
    from effbench.child.main import Skip, _checked

    spec = runspec.RunSpec(id="ft-f8", scenario="finetune", model="tiny", techniques=({"name": "float8"},))
    with pytest.raises(Skip, match="float8 requires an NVIDIA GPU"):
        _checked(spec)


def _model(hidden=64, inter=96, vocab=256):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(cfg)


def test_conversion_swaps_the_aligned_block_linears_only():
    model = _model(hidden=64, inter=104)  # 104 is not a multiple of 16: the MLP stays
    t = build("float8")
    ctx = Context(scenario="train", device="cpu", dtype=torch.float32)
    convert, kept = t.plan(model)
    assert sorted(convert) == sorted(
        f"model.layers.{i}.self_attn.{p}_proj" for i in range(2) for p in ("q", "k", "v", "o")
    )
    assert sorted(kept) == sorted(f"model.layers.{i}.mlp.{p}_proj" for i in range(2) for p in ("gate", "up", "down"))
    t.apply(model, ctx)
    kinds = {n: type(m).__name__ for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert all(kinds[n] == "Float8Linear" for n in convert) and all(kinds[n] == "Linear" for n in kept)
    assert kinds["lm_head"] == "Linear"  # the head stays in high precision
    rec = ctx.records["float8"]
    assert rec["layers_converted"] == 8 and rec["layers_left_unchanged"] == 6 and rec["recipe"] == "tensorwise"


def test_every_block_linear_of_the_default_architecture_converts():
    """SmolLM2-135M (hidden 576, MLP 1536, 3 KV heads of 64): all 210 block Linears, no head."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from effbench import models

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**models.SMOLLM2_ARCH))
    convert, kept = build("float8").plan(model)
    assert len(convert) == 30 * 7 and kept == [] and "lm_head" not in convert


def test_nothing_to_convert_is_refused():
    model = _model(hidden=72, inter=104, vocab=250)
    with pytest.raises(TechniqueError, match="no block Linear has widths divisible by 16"):
        build("float8").apply(model, Context(scenario="train", device="cpu", dtype=torch.float32))

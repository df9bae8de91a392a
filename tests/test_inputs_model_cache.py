"""The cached default model is a plain checkpoint other tools load, and it is verified on every load:
pinned weight SHA-256, pinned architecture, shipped tokenizer; a tampered or old cache is rebuilt,
and refused if rebuilding does not give the pinned weights.

Each test works on its own copy of the cache (EFFBENCH_CACHE points at tmp_path): files it leaves
untouched are hard links to the shared cache, files it changes are replaced, never edited in place.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import struct
import sys

import pytest

from effbench import models

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _free_models():
    """Models hold reference cycles: collect them here, or a later test's garbage collection frees
    hundreds of MB mid-measurement (test_measure's region-peak test reads such a drop as no peak)."""
    yield
    gc.collect()


@pytest.fixture(scope="module")
def checkpoint():
    """The verified cache folder of the default model (built once if needed, ~35 s)."""
    return models.smollm2_checkpoint()


def _copy_cache(src, cache_root, copy=()):
    """A private cache holding `src`: hard links, except real copies of the files named in `copy`."""
    dst = cache_root / "smollm2-135m"
    dst.mkdir(parents=True)
    for p in src.iterdir():
        (shutil.copyfile if p.name in copy else os.link)(p, dst / p.name)
    return dst


def _replace(path, data: bytes) -> None:
    path.unlink()  # never write through a hard link into the shared cache
    path.write_bytes(data)


def test_cache_is_a_plain_checkpoint_loaded_without_gguf(checkpoint, monkeypatch):
    from transformers import AutoModelForCausalLM

    cfg = json.loads((checkpoint / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["architectures"] == ["LlamaForCausalLM"]
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "tokenizer.json").is_file()
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` now fails: the folder must not need it
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert models.state_dict_sha256(model) == models.SMOLLM2_WEIGHTS_SHA256


def test_bf16_load_matches_the_verified_weights_and_keeps_fp32_rope(checkpoint):
    import torch

    model, _, info = models.load("smollm2-135m", dtype=torch.bfloat16, with_tokenizer=False)
    ref, _, _ = models.load("smollm2-135m", dtype=torch.float32, with_tokenizer=False)
    assert info.dtype == "bfloat16" and info.weights_sha256 == models.state_dict_sha256(model)
    assert all(torch.equal(t, ref.state_dict()[k].to(torch.bfloat16)) for k, t in model.state_dict().items())
    assert model.model.rotary_emb.inv_freq.dtype == torch.float32  # as from_pretrained(dtype=bf16) keeps it


def test_lm_eval_hf_model_accepts_the_cache(checkpoint):
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(checkpoint), device="cpu", batch_size=1)
    assert lm.model.config.num_hidden_layers == 30
    assert models.state_dict_sha256(lm.model) == models.SMOLLM2_WEIGHTS_SHA256


def test_flipped_weight_byte_is_detected_and_rebuilt(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EFFBENCH_CACHE", str(tmp_path))
    d = _copy_cache(checkpoint, tmp_path, copy={"model.safetensors"})
    st = d / "model.safetensors"
    with open(st, "r+b") as f:
        header_len = struct.unpack("<Q", f.read(8))[0]
        at = 8 + header_len + (st.stat().st_size - 8 - header_len) // 2  # one byte in the tensor data
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x01]))
    monkeypatch.setattr(models, "BUILT_IN_THIS_PROCESS", [])
    _, _, info = models.load("smollm2-135m", with_tokenizer=False)  # rebuilds from the GGUF (~35 s)
    assert models.BUILT_IN_THIS_PROCESS == ["smollm2-135m"]  # the child reads it: this process built the cache
    err = capsys.readouterr().err
    assert "fails verification" in err and "weights sha256" in err and models.SMOLLM2_WEIGHTS_SHA256 in err
    assert info.weights_sha256 == models.SMOLLM2_WEIGHTS_SHA256
    assert models._cache_problem(d) is None


@pytest.mark.parametrize(
    "tamper,why",
    [
        (
            lambda d: _replace(
                d / "config.json",
                json.dumps(
                    dict(
                        json.loads((d / "config.json").read_text()),
                        quantization_config={"quant_method": "gguf", "gguf_file": models.SMOLLM2_GGUF},
                    )
                ).encode(),
            ),
            "quantization_config",
        ),
        (
            lambda d: _replace(
                d / "config.json",
                json.dumps(dict(json.loads((d / "config.json").read_text()), rms_norm_eps=1e-3)).encode(),
            ),
            "rms_norm_eps",
        ),
        (
            lambda d: _replace(
                d / "tokenizer.json",
                (d / "tokenizer.json").read_bytes().replace(b'"<|endoftext|>"', b'"<|endoftexx|>"', 1),
            ),
            "tokenizer",
        ),
        (lambda d: (d / "pytorch_model.bin").write_bytes(b"x"), "unexpected files"),
        (lambda d: _replace(d / "effbench.json", b'{"gguf": "SmolLM2-135M-Instruct.Q4_1.gguf"}'), "format"),
    ],
)
def test_tampered_or_old_cache_files_are_rebuilt(checkpoint, tmp_path, monkeypatch, capsys, tamper, why):
    monkeypatch.setenv("EFFBENCH_CACHE", str(tmp_path))
    d = _copy_cache(checkpoint, tmp_path)
    tamper(d)
    assert why in models._cache_problem(d)
    rebuilt = []

    def fake_build(out):  # stands in for the 35 s rebuild: put the verified files back
        rebuilt.append(out)
        shutil.rmtree(out)
        _copy_cache(checkpoint, tmp_path)

    monkeypatch.setattr(models, "_build_smollm2", fake_build)
    _, folder, sha = models._load_smollm2()
    assert rebuilt == [d] and folder == d and sha == models.SMOLLM2_WEIGHTS_SHA256
    err = capsys.readouterr().err
    assert "fails verification" in err and why in err


def test_cache_refused_when_the_rebuild_does_not_verify(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("EFFBENCH_CACHE", str(tmp_path))
    _copy_cache(checkpoint, tmp_path)
    monkeypatch.setattr(models, "SMOLLM2_WEIGHTS_SHA256", "0" * 64)  # as if the weights had changed
    monkeypatch.setattr(models, "_build_smollm2", lambda out: None)
    with pytest.raises(
        models.ModelError, match="fails verification: weights sha256 1b7bc67a.* is not the pinned 0{64}"
    ):
        models.load("smollm2-135m", with_tokenizer=False)

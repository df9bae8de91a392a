"""`distillation` on tiny models, CPU, fp32.

Properties checked: the KL term equals a hand-computed case (explicit softmax and log, masked
positions ignored); the student keeps blocks 0, k, 2k, ... with layer_idx renumbered and the
config (num_hidden_layers, layer_types) following, and its generate() with a KV cache gives the
greedy tokens a cache-free forward gives (a Llama, and a Qwen2 whose sliding-window layer types
must follow the kept blocks); alpha = 0 keeps no teacher and leaves the model's loss; alpha = 1
training steps through the fine-tuning loop bring the student's KL to the teacher down; the loop
backpropagates a technique's loss and logs the cross-entropy; a packed batch gives the same
distillation loss as the padded one; bad parameters and combinations are refused naming what is
valid.

Tolerances (fp32): the hand-computed KL 1e-6 (values ~1e-1); packed vs padded loss 1e-5.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from effbench import models, tasks
from effbench.child import measure
from effbench.child.workloads import finetune
from effbench.child.workloads.common import collate, encode
from effbench.techniques import Context, TechniqueError, build, build_all
from effbench.techniques.distillation import kl_teacher_student
from effbench.techniques.packing import pack


def ctx():
    return Context(scenario="train", device="cpu", dtype=torch.float32, seed=0, techniques=("distillation",))


def small_llama(layers: int = 5, vocab: int = 97):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(cfg).eval()


def small_qwen2(layers: int = 4, vocab: int = 97):
    """Layers 0-1 full attention, 2-3 a sliding window of 4: layer_types must follow the kept blocks."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        use_sliding_window=True,
        sliding_window=4,
        max_window_layers=2,
    )
    assert cfg.layer_types == ["full_attention"] * 2 + ["sliding_attention"] * 2
    return Qwen2ForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def tok():
    return models.load("tiny", device="cpu", dtype=torch.float32, seed=0)[1]


@pytest.fixture(scope="module")
def pairs(tok):
    return encode(tok, tasks.load("arith-noisy", n_train=8, n_eval=4, seed=1).train)


def tiny():
    return models.load("tiny", device="cpu", dtype=torch.float32, seed=0, with_tokenizer=False)[0]


# -- the KL term -----------------------------------------------------------------------------------


def _softmax(zs, t):
    e = [math.exp(z / t) for z in zs]
    return [x / sum(e) for x in e]


def test_kl_against_a_hand_computed_case():
    teacher = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [9.0, -9.0, 0.0]]
    student = [[0.5, 2.5, 0.0], [1.0, 1.0, 1.0], [-9.0, 9.0, 0.0]]  # the last position is masked out
    mask = [1, 1, 0]
    temperature = 2.0
    by_hand = []
    for zt, zs, m in zip(teacher, student, mask):
        if m:
            p, q = _softmax(zt, temperature), _softmax(zs, temperature)
            by_hand.append(sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q)))
    expected = sum(by_hand) / len(by_hand)
    got = kl_teacher_student(torch.tensor([teacher]), torch.tensor([student]), torch.tensor([mask]), temperature)
    assert got.shape == () and abs(float(got) - expected) < 1e-6
    assert expected > 0.01  # a case where the distributions differ
    same = kl_teacher_student(torch.tensor([teacher]), torch.tensor([teacher]), torch.tensor([mask]), 0.7)
    assert abs(float(same)) < 1e-6


def test_loss_mixes_kl_and_cross_entropy():
    model = small_llama()
    t = build("distillation", {"alpha": 0.25, "temperature": 3.0})
    c = ctx()
    t.apply(model, c)
    ids = torch.randint(0, 97, (2, 7), generator=torch.Generator().manual_seed(1))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    out = model(**batch)
    with torch.no_grad():
        tl = t.teacher(input_ids=ids).logits
    kl = kl_teacher_student(tl, out.logits, batch["attention_mask"], 3.0)
    loss = t.train_loss(model, batch, out, c)
    assert float(loss.detach()) == pytest.approx(
        0.25 * 9.0 * float(kl.detach()) + 0.75 * float(out.loss.detach()), rel=1e-6
    )


# -- the student -------------------------------------------------------------------------------------


def greedy_without_cache(model, ids, n: int):
    with torch.no_grad():
        for _ in range(n):
            nxt = model(input_ids=ids, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
    return ids


@pytest.mark.parametrize("make, n_layers, keep_every", [(small_llama, 5, 2), (small_qwen2, 4, 2), (small_llama, 5, 3)])
def test_student_drops_layers_and_generates_with_a_kv_cache(make, n_layers, keep_every):
    model = make()
    blocks = list(model.model.layers)
    types = getattr(model.config, "layer_types", None)
    c = ctx()
    t = build("distillation", {"keep_every": keep_every})
    student = t.apply(model, c)
    kept = list(range(0, n_layers, keep_every))
    assert student is model
    assert [id(b) for b in student.model.layers] == [id(blocks[i]) for i in kept]  # the same blocks, in order
    assert student.config.num_hidden_layers == len(kept) == len(student.model.layers)
    assert [b.self_attn.layer_idx for b in student.model.layers] == list(range(len(kept)))
    if types is not None:
        assert student.config.layer_types == [types[i] for i in kept]
    teacher = t.teacher
    assert len(teacher.model.layers) == n_layers and teacher.config.num_hidden_layers == n_layers
    assert [b.self_attn.layer_idx for b in teacher.model.layers] == list(range(n_layers))
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    rec = c.records["distillation"]
    assert rec["student_layers"] == len(kept) and rec["teacher_layers"] == n_layers and rec["kept_layers"] == kept
    assert rec["student_params"] < rec["teacher_params"] == sum(p.numel() for p in teacher.parameters())
    lin = sum(m.in_features * m.out_features for m in teacher.modules() if isinstance(m, torch.nn.Linear))
    assert rec["teacher_forward_flops_per_token"] == 2 * lin

    ids = torch.randint(0, 97, (2, 6), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        cache = student(input_ids=ids, use_cache=True).past_key_values
        generated = student.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False, use_cache=True
        )
    assert cache.get_seq_length() == 6 and len(cache.layers) == len(kept)
    assert torch.equal(generated, greedy_without_cache(student, ids, 8))


def test_alpha_zero_keeps_no_teacher_and_leaves_the_model_loss():
    model = small_llama()
    t = build("distillation", {"alpha": 0.0})
    c = ctx()
    t.apply(model, c)
    assert t.teacher is None and c.records["distillation"]["teacher_kept"] is False
    assert len(model.model.layers) == 3
    ids = torch.randint(0, 97, (1, 5))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    out = model(**batch)
    assert t.train_loss(model, batch, out, c) is None
    assert finetune._loss_of([build("baseline"), t], c, model, batch, out) is out.loss


# -- training ------------------------------------------------------------------------------------------


def _train(model, pairs, pad_id, techniques, c, steps: int, lr: float, collate_fn=collate):
    spec = SimpleNamespace(device="cpu", seed=0)
    b = SimpleNamespace(batch_size=4, lr=lr, warmup_steps=1, train_tokens=None, eval_every=10**6)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    mem, energy = measure.Memory("cpu"), measure.Energy("cpu")
    return finetune._train(
        model, pairs, pad_id, opt, spec, b, steps, lambda *a: None, mem, energy, collate_fn, techniques, c
    )


def _kl_on(t, model, batch, temperature):
    with torch.no_grad():
        kw = {k: v for k, v in batch.items() if k != "labels"}
        return float(
            kl_teacher_student(t.teacher(**kw).logits, model(**kw).logits, batch["attention_mask"], temperature)
        )


def test_alpha_one_training_moves_the_student_toward_the_teacher(pairs, tok):
    torch.manual_seed(0)
    model = tiny()
    t = build("distillation", {"alpha": 1.0, "temperature": 2.0})
    c = ctx()
    t.apply(model, c)
    held = collate(pairs[:4], tok.pad_token_id, "cpu")
    before = _kl_on(t, model, held, 2.0)
    log_ = _train(model, pairs, tok.pad_token_id, [t], c, steps=6, lr=3e-3)
    after = _kl_on(t, model, held, 2.0)
    t.finish(model, c)
    rec = c.records["distillation"]
    assert after < 0.8 * before, (before, after)
    assert rec["kl_last"] < rec["kl_first"]
    assert rec["teacher_forward_tokens"] == sum(log_.step_tokens)
    assert rec["teacher_forward_flops"] == rec["teacher_forward_tokens"] * rec["teacher_forward_flops_per_token"]
    assert len(log_.losses) == 6 and all(math.isfinite(x) for x in log_.losses)


class _ZeroLoss:
    """A technique whose loss has no gradient: the loop must backpropagate it, not out.loss."""

    name = "zero_loss"

    def train_loss(self, model, batch, out, ctx):
        return 0.0 * out.loss


def test_the_loop_backpropagates_the_technique_loss_and_logs_cross_entropy(pairs, tok):
    model = tiny()
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    log_ = _train(model, pairs, tok.pad_token_id, [_ZeroLoss()], ctx(), steps=2, lr=1e-2)
    assert all(torch.equal(p, w0[n]) for n, p in model.named_parameters())  # zero gradient, no step
    assert all(x > 1.0 for x in log_.losses)  # the logged loss is the cross-entropy, not the zero
    moved = tiny()
    _train(moved, pairs, tok.pad_token_id, [build("baseline")], ctx(), steps=1, lr=1e-2)
    assert not all(torch.equal(p, w0[n]) for n, p in moved.named_parameters())


def test_packed_batches_give_the_padded_distillation_loss(pairs, tok):
    t = build("distillation", {"alpha": 0.5})
    c = ctx()
    model = t.apply(tiny(), c)
    padded, packed = collate(pairs, tok.pad_token_id, "cpu"), pack(pairs, "cpu")
    with torch.no_grad():
        a = t.train_loss(model, padded, model(**padded), c)
        b = t.train_loss(model, packed, model(**packed), c)
    assert abs(float(a) - float(b)) < 1e-5
    build_all([{"name": "distillation"}, {"name": "packing"}])  # accepted


# -- refusals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, valid",
    [
        ({"keep_every": 1}, "[2, 1024]"),
        ({"keep_every": 0}, "[2, 1024]"),
        ({"temperature": 0.0}, "(0, 100]"),
        ({"temperature": -1.0}, "(0, 100]"),
        ({"alpha": 1.5}, "[0, 1]"),
        ({"alpha": -0.1}, "[0, 1]"),
    ],
)
def test_bad_parameters_are_refused_with_the_valid_range(params, valid):
    with pytest.raises(TechniqueError) as e:
        build("distillation", params)
    assert valid in str(e.value) and next(iter(params)) in str(e.value)


def test_bad_types_and_unknown_parameters_are_refused():
    with pytest.raises(TechniqueError, match="keep_every must be int"):
        build("distillation", {"keep_every": 2.5})
    with pytest.raises(TechniqueError, match="valid: .*alpha.*keep_every.*temperature"):
        build("distillation", {"layers": 2})
    t = build("distillation")
    assert (t.config.keep_every, t.config.temperature, t.config.alpha) == (2, 2.0, 0.5)
    assert t.family == "transfer" and "distillation" in t.skip_reason("infer", "cpu")


def test_combinations():
    with pytest.raises(TechniqueError, match=r"before \['lora'\]"):
        build_all([{"name": "lora"}, {"name": "distillation"}])
    with pytest.raises(TechniqueError, match="fused"):
        build_all([{"name": "distillation"}, {"name": "fused"}])
    build_all([{"name": "distillation", "params": {"alpha": 0.0}}, {"name": "fused"}])  # no teacher, no KL
    build_all([{"name": "random"}, {"name": "distillation"}, {"name": "lora"}, {"name": "grad_ckpt"}])

"""Per-example scores from a reference model, for the `perplexity` and `el2n` pruning strategies.

Examples are tokenized the way the fine-tuning workload sees them (prompt ids, then answer ids,
no special tokens) and scored in right-padded batches without gradients:

- `loss`: mean next-token cross-entropy (nats/token) over the scored tokens;
- `el2n`: mean over the scored tokens of || softmax(logits) - onehot(next token) ||_2
  (Paul et al. 2021, "Deep Learning on a Data Diet"), in [0, sqrt(2)].

`scope` picks the scored tokens: `answer` (what fine-tuning trains on) or `text` (every token after
the first). `warm_up` trains a model for a few AdamW steps on the answer tokens, as EL2N needs.
Both leave the global torch RNG as they found it, so that techniques applied later (a LoRA init)
draw the same numbers whether or not the data was scored.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F


def encode(tokenizer, examples) -> list[tuple[list[int], list[int]]]:
    out = []
    for e in examples:
        p = tokenizer(e.prompt, add_special_tokens=False)["input_ids"]
        a = tokenizer(e.answer, add_special_tokens=False)["input_ids"]
        out.append((p, a))
    return out


def _batch(pairs, pad_id: int, device: str, scope: str):
    n = max(len(p) + len(a) for p, a in pairs)
    ids = torch.full((len(pairs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), n), dtype=torch.long)
    labels = torch.full((len(pairs), n), -100, dtype=torch.long)
    for i, (p, a) in enumerate(pairs):
        seq = p + a
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        start = len(p) if scope == "answer" and p else 1
        labels[i, start : len(seq)] = torch.tensor(seq[start:])
    return ids.to(device), mask.to(device), labels.to(device)


def _rng_devices(device: str) -> list:
    return [torch.cuda.current_device()] if device == "cuda" and torch.cuda.is_available() else []


@torch.no_grad()
def score(
    model, tokenizer, examples, device: str, batch_size: int = 32, scope: str = "text", kind: str = "loss"
) -> tuple[list[float], int]:
    """(one score per example, tokens forwarded). `kind`: "loss" or "el2n"; `scope`: "text" or "answer"."""
    if kind not in ("loss", "el2n") or scope not in ("text", "answer"):
        raise ValueError(f"kind={kind!r} must be loss|el2n and scope={scope!r} text|answer")
    pairs = encode(tokenizer, examples)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores, n_tokens = [], 0
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=_rng_devices(device)):
        for s in range(0, len(pairs), batch_size):
            ids, mask, labels = _batch(pairs[s : s + batch_size], pad, device, scope)
            n_tokens += int(mask.sum())
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            target = labels[:, 1:]
            valid = target != -100
            safe = target.clamp(min=0)
            if kind == "loss":
                per_tok = F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), safe.reshape(-1), reduction="none"
                ).view_as(safe)
            else:  # ||p - e_y||^2 = sum p^2 - 2 p_y + 1
                p = logits.softmax(-1)
                p_y = p.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
                per_tok = ((p * p).sum(-1) - 2 * p_y + 1).clamp(min=0).sqrt()
            per_ex = (per_tok * valid).sum(1) / valid.sum(1).clamp(min=1)
            scores += per_ex.tolist()
    model.train(was_training)
    return scores, n_tokens


def warm_up(model, tokenizer, examples, device: str, steps: int, batch_size: int, lr: float, seed: int) -> int:
    """Train `model` in place for `steps` AdamW steps on the answer tokens; returns tokens trained."""
    pairs = encode(tokenizer, examples)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = random.Random(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    n_tokens = 0
    model.train()
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(seed)
        for _ in range(steps):
            ids, mask, labels = _batch(
                [pairs[rng.randrange(len(pairs))] for _ in range(batch_size)], pad, device, "answer"
            )
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            n_tokens += int(mask.sum())
    model.eval()
    del opt
    return n_tokens


def mean_by_kind(examples, scores) -> dict[str, float]:
    """Mean score per generator tag: shows what a score separates (junk high, duplicates low...)."""
    acc: dict[str, list[float]] = {}
    for e, s in zip(examples, scores):
        acc.setdefault(e.kind, []).append(s)
    return {k: sum(v) / len(v) for k, v in sorted(acc.items())}


def free_memory(device: str) -> None:
    """Return a dropped reference model's memory before the workload starts (caller dels it first)."""
    import gc

    gc.collect()
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()

"""Pieces both workloads use: batching prompt/answer pairs, and counting bytes of tensors."""

from __future__ import annotations

import torch

from effbench.tasks.arith import END


def encode(tokenizer, examples) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, answer ids) per example; the answer ends with END, the generation stop."""
    out = []
    for e in examples:
        p = tokenizer(e.prompt, add_special_tokens=False)["input_ids"]
        a = tokenizer(e.answer + END, add_special_tokens=False)["input_ids"]
        out.append((p, a))
    return out


def collate(pairs, pad_id: int, device: str) -> dict:
    """Right-padded batch; labels are -100 on prompt and padding (loss on answer tokens only)."""
    n = max(len(p) + len(a) for p, a in pairs)
    ids = torch.full((len(pairs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), n), dtype=torch.long)
    labels = torch.full((len(pairs), n), -100, dtype=torch.long)
    for i, (p, a) in enumerate(pairs):
        seq = p + a
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        labels[i, len(p) : len(seq)] = torch.tensor(a)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def input_tokens(batch: dict) -> int:
    """Real (non-pad) input tokens of a batch: its attention mask's sum, or every input id where
    the batch has no mask (a packed batch holds no padding)."""
    mask = batch.get("attention_mask")
    return int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes a tensor actually stores; tensor subclasses (torchao) are summed over their parts."""
    inner = t.data if isinstance(t, torch.nn.Parameter) else t
    if type(inner) is not torch.Tensor and hasattr(inner, "__tensor_flatten__"):
        names, _ = inner.__tensor_flatten__()
        return sum(tensor_bytes(getattr(inner, n)) for n in names)
    return t.numel() * t.element_size()


def logical_numel(p: torch.Tensor) -> int:
    """Weights a parameter stands for: a bitsandbytes 4-bit weight stores two per uint8 element,
    its quant_state keeps the original shape; every other tensor is its numel()."""
    shape = getattr(getattr(p, "quant_state", None), "shape", None)
    return int(torch.Size(shape).numel()) if shape is not None and getattr(p, "bnb_quantized", False) else p.numel()


def _quant_state_tensors(p) -> list[torch.Tensor]:
    """Quantization constants bitsandbytes keeps beside a weight (absmax, nested state, code, SCB)."""
    out = []
    qs = getattr(p, "quant_state", None)
    if qs is not None:
        for name in ("absmax", "code"):
            v = getattr(qs, name, None)
            if isinstance(v, torch.Tensor):
                out.append(v)
        s2 = getattr(qs, "state2", None)
        if s2 is not None:
            for name in ("absmax", "code"):
                v = getattr(s2, name, None)
                if isinstance(v, torch.Tensor):
                    out.append(v)
        off = getattr(qs, "offset", None)
        if isinstance(off, torch.Tensor):
            out.append(off)
    scb = getattr(p, "SCB", None)
    if isinstance(scb, torch.Tensor):
        out.append(scb)
    return out


def _storage_key(t: torch.Tensor):
    """What identifies a tensor's storage, so tied tensors count once. Wrapper subclasses
    (torchao, semi-structured sparse) report data_ptr() 0: they are keyed by the wrapper object."""
    inner = t.data if isinstance(t, torch.nn.Parameter) else t
    if type(inner) is not torch.Tensor and hasattr(inner, "__tensor_flatten__"):
        return ("wrapper", id(inner))
    return (t.data_ptr(), t.numel())


def weight_bytes(model: torch.nn.Module) -> dict:
    """Bytes of parameters and buffers as stored (tied tensors counted once), including
    quantization constants kept beside the weights."""
    seen, params, buffers, qconst = set(), 0, 0, 0
    for p in model.parameters():
        key = _storage_key(p)
        if key in seen:
            continue
        seen.add(key)
        params += tensor_bytes(p)
        for q in _quant_state_tensors(p):
            k2 = (q.data_ptr(), q.numel())
            if k2 not in seen:
                seen.add(k2)
                qconst += tensor_bytes(q)
    for m in model.modules():  # bitsandbytes Linear8bitLt moves SCB from its weight to .state at the first forward
        scb = getattr(getattr(m, "state", None), "SCB", None)
        if isinstance(scb, torch.Tensor) and (scb.data_ptr(), scb.numel()) not in seen:
            seen.add((scb.data_ptr(), scb.numel()))
            qconst += tensor_bytes(scb)
    for b in model.buffers():
        key = _storage_key(b)
        if key not in seen:
            seen.add(key)
            buffers += tensor_bytes(b)
    return {"parameters": params, "buffers": buffers, "quant_constants": qconst, "total": params + buffers + qconst}


def optimizer_state_bytes(opt) -> int:
    seen, total = set(), 0
    for state in opt.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor) and (v.data_ptr(), v.numel()) not in seen:
                seen.add((v.data_ptr(), v.numel()))
                total += tensor_bytes(v)
    return total


def grad_bytes(model: torch.nn.Module) -> int:
    return sum(tensor_bytes(p.grad) for p in model.parameters() if p.grad is not None)

"""Pruning masks and Wanda's calibration statistics, independent of any technique class.

- `unstructured_mask`: zero the lowest-scoring fraction of a weight, per matrix or per output row.
- `nm_mask`: keep the N highest-scoring of every M consecutive weights along the input dimension
  (N:M, e.g. 2:4 for sparse tensor cores).
- `input_norms`: for each Linear, the L2 norm of each input feature over all calibration tokens,
  ||X_j||_2, which Wanda multiplies with |W_ij| (Sun et al. 2023, "A Simple and Effective Pruning
  Approach for Large Language Models").

Here every layer's statistics come from one pass of the unmodified model (Wanda's reference code
instead feeds each block the previous pruned blocks' outputs): one forward pass instead of one per
block, at the price of ignoring how earlier pruning shifts later inputs.
"""

from __future__ import annotations

import torch

from effbench.techniques.base import TechniqueError


def unstructured_mask(score: torch.Tensor, sparsity: float, per_row: bool) -> torch.Tensor:
    """Boolean keep-mask zeroing round(sparsity * count) lowest scores per matrix or per row."""
    flat = score.reshape(score.shape[0], -1) if per_row else score.reshape(1, -1)
    k = int(round(sparsity * flat.shape[1]))  # weights pruned per row (or per matrix)
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k > 0:
        idx = torch.argsort(flat, dim=1, stable=True)[:, :k]
        keep.scatter_(1, idx, False)
    return keep.reshape(score.shape)


def nm_mask(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Boolean keep-mask with exactly `n` kept of every `m` consecutive input weights per row."""
    rows, cols = score.shape
    if cols % m:
        raise TechniqueError(f"{n}:{m} sparsity needs in_features divisible by {m}, got {cols}")
    groups = score.reshape(rows, cols // m, m)
    idx = torch.topk(groups, n, dim=-1).indices
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, idx, True)
    return keep.reshape(rows, cols)


@torch.no_grad()
def input_norms(model, layers, ids: torch.Tensor, batch: int = 8) -> dict[str, torch.Tensor]:
    """||X_j||_2 over every calibration token for each named Linear's input feature j (float32)."""
    sumsq: dict[str, torch.Tensor] = {}
    hooks = []

    def hook_for(name):
        def pre_hook(mod, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            sumsq[name] = sumsq.get(name, 0) + (x * x).sum(0, dtype=torch.float64)  # float64 sums over batches

        return pre_hook

    for name, mod in layers:
        hooks.append(mod.register_forward_pre_hook(hook_for(name)))
    was_training = model.training
    model.eval()
    try:
        for i in range(0, ids.shape[0], batch):
            model(input_ids=ids[i : i + batch], use_cache=False)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    missing = [n for n, _ in layers if n not in sumsq]
    if missing:
        raise TechniqueError(f"wanda: calibration never reached layers {missing[:3]}...")
    return {n: s.sqrt().float() for n, s in sumsq.items()}


def wanda_score(weight: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """|W_ij| * ||X_j||_2: weight magnitude scaled by its input feature's activation norm."""
    return weight.abs().float() * norm.to(weight.device)[None, :]

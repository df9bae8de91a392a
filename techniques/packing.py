"""`packing`: padding-free fine-tuning batches, each step's examples concatenated into one row.

What it saves: a right-padded batch is `batch_size x longest example` tokens, and every pad
position costs a full forward and backward; a packed batch is exactly the examples' tokens, one
row of sum(lengths). The step sees the same examples, tokens and loss (the mean over answer
tokens), so only the time and memory spent on padding go away: it pays where lengths vary within
a batch, and does nothing for equal lengths.

How: transformers' flattening layout (as `DataCollatorWithFlattening`): one row of input ids,
`position_ids` restarting at 0 for each example, no `attention_mask`, no cache. transformers'
mask builder (`masking_utils.find_packed_sequence_indices`) reads the restarts and gives sdpa and
eager attention a block-diagonal causal mask (flash-attention takes them as variable-length
sequences), so no token attends across an example's boundary. The first label of each example
is -100, so no position learns to predict the next example's first token. The fine-tuning
workload asks each technique for its batch builder (`Technique.batching`); this is the one.

Records `pad_fraction_padded`: pad tokens / all tokens of the padded batches the same steps would
have built (the fraction packing removes; packed batches hold none), with the tokens and batches
counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Context, Technique, register


def pack(pairs, device: str) -> dict:
    """One row: every (prompt ids, answer ids) pair back to back, positions restarting per pair,
    labels -100 on prompts and on each pair's first token."""
    import torch

    ids, pos, labels = [], [], []
    for p, a in pairs:
        seq = list(p) + list(a)
        ids += seq
        pos += range(len(seq))
        lab = [-100] * len(p) + list(a)
        lab[0] = -100
        labels += lab
    row = {"input_ids": ids, "position_ids": pos, "labels": labels}
    out = {k: torch.tensor([v], dtype=torch.long, device=device) for k, v in row.items()}
    out["use_cache"] = False  # a cache would turn off transformers' packed-sequence masking
    return out


@register
class Packing(Technique):
    name = "packing"
    family = "batching"
    description = "padding-free fine-tuning batches: examples packed in one row, attention kept within each"
    scenarios = ("train",)

    @dataclass(frozen=True)
    class Config:
        pass

    def batching(self, ctx: Context):
        counts = {"tokens": 0, "padded_tokens": 0, "batches": 0}

        def collate(pairs, pad_id: int, device: str) -> dict:
            lengths = [len(p) + len(a) for p, a in pairs]
            counts["tokens"] += sum(lengths)
            counts["padded_tokens"] += len(lengths) * max(lengths)
            counts["batches"] += 1
            pad = counts["padded_tokens"] - counts["tokens"]
            ctx.record(self.name, "pad_fraction_padded", pad / counts["padded_tokens"])
            ctx.record(self.name, "tokens", counts["tokens"])
            ctx.record(self.name, "padded_tokens", counts["padded_tokens"])
            ctx.record(self.name, "batches", counts["batches"])
            return pack(pairs, device)

        return collate

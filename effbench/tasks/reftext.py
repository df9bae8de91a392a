"""The fixed reference text for perplexity, KL divergence and calibration.

By default: the prose of the Python standard library's `pydoc_data.topics` (topics sorted by
name, joined by blank lines), so every machine with the same Python minor version has the same
text with no download. `--text FILE` names any other text. The token ids are hashed into the
result, so two result sets can tell whether they scored the same tokens.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def default_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def load_text(path: str | None = None) -> tuple[str, str]:
    """(text, source description)."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"reference text {path!r} does not exist")
        return p.read_text(encoding="utf-8"), str(p.resolve())
    return default_text(), "pydoc_data.topics (sorted)"


def token_ids(tokenizer, n_tokens: int, path: str | None = None):
    """The first `n_tokens` token ids of the reference text, as a 1-D LongTensor, and its hash."""
    import torch

    text, source = load_text(path)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < n_tokens:
        raise ValueError(f"reference text {source} has {len(ids)} tokens, fewer than the {n_tokens} asked for")
    t = torch.tensor(ids[:n_tokens], dtype=torch.long)
    sha = hashlib.sha256(t.numpy().tobytes()).hexdigest()
    return t, {"source": source, "n_tokens": n_tokens, "sha256": sha}


def calibration_ids(tokenizer, n_samples: int, seq_len: int, path: str | None = None):
    """[n_samples, seq_len] consecutive windows from the END of the reference text, so that
    calibration never sees the tokens perplexity and KL divergence are measured on (the start)."""
    import torch

    text, source = load_text(path)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    n = n_samples * seq_len
    if len(ids) < 2 * n:
        raise ValueError(f"reference text {source} has {len(ids)} tokens; calibration needs {2 * n}")
    t = torch.tensor(ids[-n:], dtype=torch.long)
    meta = {"source": source, "n_tokens": n, "from": "end", "sha256": hashlib.sha256(t.numpy().tobytes()).hexdigest()}
    return t.view(n_samples, seq_len), meta

"""Shared fixtures. Tests run on CPU; the `tiny` model stands in for the default one except in
the few tests marked `slow`, which load the real weights (cached after the first load)."""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def tiny():
    """(model factory, tokenizer): a fresh seeded `tiny` model per call, shared tokenizer."""
    from effbench import models

    _, tok, _ = models.load("tiny", device="cpu", dtype=torch.float32, seed=0)

    def make(seed: int = 0):
        return models.load("tiny", device="cpu", dtype=torch.float32, seed=seed, with_tokenizer=False)[0]

    return make, tok


@pytest.fixture
def ctx_factory(tiny):
    """A Context like the harness builds, on the tiny model."""
    from effbench.tasks import reftext
    from effbench.techniques import Context

    make, tok = tiny

    def build(scenario: str = "infer", names: tuple = ()):
        return Context(
            scenario=scenario,
            device="cpu",
            dtype=torch.float32,
            seed=0,
            tokenizer=tok,
            load_reference_model=lambda: make(0),
            calibration_ids=lambda n, length: reftext.calibration_ids(tok, n, length)[0],
            hparams={"lr": 1e-3, "batch_size": 4},
            techniques=names,
        )

    return build


@pytest.fixture(scope="session")
def smoke_serial(tmp_path_factory):
    """(exit code, result set, folder) of the smoke suite run serially on CPU, once per session:
    the end-to-end tests check it, the scale-out tests reproduce it through Ray and shards."""
    from effbench import cli
    from effbench.read import results

    out = tmp_path_factory.mktemp("smoke")
    code = cli.main(["run", "--suite", "smoke", "--device", "cpu", "--out", str(out)])
    folder = next((out / "smoke").iterdir())
    return code, results.load(folder), folder

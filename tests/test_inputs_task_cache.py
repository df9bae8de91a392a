"""The lm-eval task files effbench caches are checked against their data on every use: a tampered
data file, a changed YAML or an extra YAML in the folder (lm-eval reads them all) is rebuilt."""

from __future__ import annotations

from effbench.tasks import generate, lmeval
from effbench.tasks.arith import ArithConfig


def _examples():
    return generate(ArithConfig(n_train=4, n_eval=16, seed=0)).eval


def test_task_folder_reused_when_intact(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EFFBENCH_CACHE", str(tmp_path))
    d1, sha1 = lmeval.write_arith(_examples())
    mtime = (d1 / "data.jsonl").stat().st_mtime_ns
    d2, sha2 = lmeval.write_arith(_examples())
    assert (d1, sha1) == (d2, sha2) and d1.name.endswith(sha1[:12])
    assert (d2 / "data.jsonl").stat().st_mtime_ns == mtime, "an intact cache is not rewritten"
    assert "fails verification" not in capsys.readouterr().err


def test_tampered_task_files_are_rebuilt(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EFFBENCH_CACHE", str(tmp_path))
    d, _ = lmeval.write_arith(_examples())
    good = {p.name: p.read_bytes() for p in d.iterdir()}
    tampered = bytearray(good["data.jsonl"])
    tampered[tampered.index(b'"answer": "') + 11] ^= 1  # one answer digit changed
    for change in (
        lambda: (d / "data.jsonl").write_bytes(bytes(tampered)),
        lambda: (d / f"{lmeval.ARITH_TASK}.yaml").write_text("task: effbench_arith\ndataset_path: /elsewhere\n"),
        lambda: (d / "evil.yaml").write_text("task: effbench_arith\nprocess_docs: !function evil.run\n"),
    ):
        change()
        d2, _ = lmeval.write_arith(_examples())
        assert d2 == d
        assert {p.name: p.read_bytes() for p in d.iterdir()} == good
        err = capsys.readouterr().err
        assert "fails verification" in err and str(d) in err

#!/usr/bin/env bash
# make gpu-check: one prepared command for one NVIDIA GPU, under 8 minutes.
#
# Runs the `gpu` suite's speed and memory runs on the default model's architecture with seeded
# random weights (arch:smollm2-135m: no 93 MB model wheel, no lm-eval, no network needed), with
# budgets cut to what speed and memory need, and the kernel micro-benchmark (quick sweep) into
# the same result set.
# Writes the result sets under OUT (first argument, default results/).
#
# Works with an existing Python that has torch, transformers, peft, accelerate, matplotlib,
# tabulate: packages it lacks (bitsandbytes, torchao, liger-kernel, gguf) are installed from a
# folder of wheels (WHEELS, default .whl/) into a private folder, never into the system.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$REPO/results}" && cd "${1:-$REPO/results}" && pwd)
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-$REPO/.whl}
SITE=${EFFBENCH_SITE:-/tmp/effbench-site}
export EFFBENCH_CACHE=${EFFBENCH_CACHE:-/tmp/effbench-cache}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

if compgen -G "$WHEELS/*.whl" >/dev/null; then
  echo "gpu-check: installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into $SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
# effbench from this checkout without installing it: a tree of links that maps techniques/ and
# kernels/ to effbench.techniques and effbench.kernels, as pyproject's package-dir does.
if ! "$PY" -c "import effbench.techniques, effbench.kernels" 2>/dev/null; then
  SRC=/tmp/effbench-src
  rm -rf "$SRC" && mkdir -p "$SRC/effbench"
  for f in "$REPO"/effbench/*; do ln -s "$f" "$SRC/effbench/"; done
  ln -s "$REPO/techniques" "$SRC/effbench/techniques"
  ln -s "$REPO/kernels" "$SRC/effbench/kernels"
  export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check needs an NVIDIA GPU visible to torch')"
"$PY" - <<'PY'
import importlib.util as u
for m in ("torch", "transformers", "peft", "bitsandbytes", "torchao", "triton", "liger_kernel", "lm_eval"):
    print(f"gpu-check: {m:13s} {'present' if u.find_spec(m) else 'MISSING (runs needing it are skipped with the reason)'}")
PY
# Run from outside the checkout: with the repository root first on sys.path, its effbench/ (without
# techniques/ and kernels/ mapped in) and kernels/ (shadowing the real `kernels` package) would win.
cd "$(mktemp -d)"
start=$(date +%s)
# Speed and memory only: no quality (random weights); short training; fewer repeats.
# The speed and memory runs: every finetune-* and infer-* run (pruning runs measure accuracy,
# which random weights cannot give).
ONLY=$("$PY" -c "import tomllib,sys; print(' '.join(r['id'] for r in tomllib.load(open(sys.argv[1],'rb'))['run'] if not r['id'].startswith('prune-')))" "$REPO/benchmarks/gpu.toml")
# shellcheck disable=SC2086
"$PY" -m effbench.cli run --suite gpu --only $ONLY --model arch:smollm2-135m --device cuda --out "$OUT" --replicates 1 --seeds 0 \
  --budget max_steps=40 eval_every=1000 timing_warmup_steps=5 train_tokens=null epochs=null \
           batch_sizes=[1,32] prompt_len=512 decode_tokens=64 repeats=3 quality=false \
  --kernel-bench quick || true
echo "gpu-check: done in $(( $(date +%s) - start )) s; result set under $OUT/gpu"

#!/usr/bin/env bash
# make gpu-check: does every CUDA path of effbench run on this NVIDIA GPU? Under 8 minutes by design.
#
# Stages, each under a hard limit (`timeout`), in this order; the limits add up to 475 s:
#   wheels   40 s  install missing packages from a folder of wheels (WHEELS, default .whl/; made
#                  by `make gpu-check-wheels`) into a private folder, never into the system
#   imports  20 s  torch sees the GPU; every package the runs need imports (versions printed)
#   kernels 105 s  the kernel micro-benchmark (quick sweep): effbench's Triton kernels against
#                  eager PyTorch, torch.compile and liger-kernel
#   suite   295 s  benchmarks/gpu-check.toml: one run per technique family on the default
#                  architecture with random weights (arch:smollm2-135m), each run killed at its own
#                  timeout_s (their sum: 284 s), after a quick roofline ceiling
#   report   15 s  the kernel records join the suite's result set; per-run status, start-up time
#                  and the reason of every failure printed
# A stage that fails or runs out of time is reported and the next one still runs (the suite needs
# the imports only); the exit status is non-zero when any stage or any run failed.
# The result set lands in OUT/gpu-check/<time>_<sha>/ (OUT: first argument, default results/).
#
# Needs: Python with torch (CUDA), transformers, peft, accelerate, safetensors, tabulate,
# matplotlib, numpy, psutil, scipy; bitsandbytes, torchao, liger-kernel and gguf may come as wheels.
# No network and no lm-eval needed.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$REPO/results}" && cd "${1:-$REPO/results}" && pwd)
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-$REPO/.whl}
SITE=${EFFBENCH_SITE:-/tmp/effbench-site}
STAGE_DIR=$(mktemp -d)
export EFFBENCH_CACHE=${EFFBENCH_CACHE:-/tmp/effbench-cache}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
START=$(date +%s)
FAILED=()

stage() {  # stage NAME LIMIT_S COMMAND...: run with a hard time limit, record a failure
  local name=$1 limit=$2 t0 rc
  shift 2
  t0=$(date +%s)
  echo "== gpu-check: $name (limit ${limit}s)"
  timeout --kill-after=5 "$limit" "$@"
  rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "== gpu-check: $name TIMED OUT after ${limit}s"
    FAILED+=("$name (timed out after ${limit}s)")
  elif [ $rc -ne 0 ]; then
    echo "== gpu-check: $name FAILED (exit $rc)"
    FAILED+=("$name (exit $rc)")
  else
    echo "== gpu-check: $name ok in $(( $(date +%s) - t0 ))s"
  fi
  return $rc
}

if compgen -G "$WHEELS/*.whl" >/dev/null; then
  stage wheels 40 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "== gpu-check: no wheels in $WHEELS; using the installed packages"
fi
# effbench from this checkout without installing it: a tree of links that maps techniques/ and
# kernels/ to effbench.techniques and effbench.kernels, as pyproject's package-dir does.
if ! (cd / && "$PY" -c "import effbench.techniques, effbench.kernels" 2>/dev/null); then
  SRC=$STAGE_DIR/src
  mkdir -p "$SRC/effbench"
  for f in "$REPO"/effbench/*; do ln -s "$f" "$SRC/effbench/"; done
  ln -s "$REPO/techniques" "$SRC/effbench/techniques"
  ln -s "$REPO/kernels" "$SRC/effbench/kernels"
  export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
fi
# Run from outside the checkout: with the repository root first on sys.path, its kernels/ would
# shadow the real `kernels` package that transformers and bitsandbytes probe for.
cd "$STAGE_DIR" || exit 1

if ! stage imports 20 "$PY" - <<'PY'
import importlib, sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU: nothing to check")
p = torch.cuda.get_device_properties(0)
print(f"gpu-check: {torch.cuda.get_device_name()} (sm_{p.major}{p.minor}), torch {torch.__version__}, CUDA {torch.version.cuda}")
missing = []
for m in ("transformers", "peft", "accelerate", "safetensors", "scipy", "tabulate", "matplotlib", "psutil",
          "triton", "bitsandbytes", "torchao", "liger_kernel", "gguf", "effbench.cli", "effbench.kernels"):
    try:
        mod = importlib.import_module(m)
        print(f"gpu-check: {m:14s} {getattr(mod, '__version__', '')}")
    except Exception as e:  # every missing or broken package is named, then the stage fails
        missing.append(m)
        print(f"gpu-check: {m:14s} FAILED: {type(e).__name__}: {e}")
sys.exit(f"cannot import: {', '.join(missing)}" if missing else 0)
PY
then
  echo "gpu-check: FAILED: ${FAILED[*]}; the runs cannot start"
  exit 1
fi

stage kernels 105 "$PY" -c "
import json, sys
from effbench.kernelbench.bench import run_kernel_bench
json.dump(run_kernel_bench('cuda', quick=True), open(sys.argv[1], 'w'))
" "$STAGE_DIR/kernels.json"

stage suite 295 "$PY" -m effbench.cli run --suite gpu-check --device cuda --replicates 1 --seeds 0 --out "$OUT"

stage report 15 "$PY" - "$OUT/gpu-check" "$STAGE_DIR/kernels.json" "$START" <<'PY'
import json, shutil, sys, time
from pathlib import Path
from effbench.read import results
from effbench.render import report
root, kernels, start = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
sets = [d for d in root.glob("*/results.json") if d.stat().st_mtime >= start]
if not sets:
    sys.exit(f"no result set written under {root} by this check")
path = max(sets, key=lambda p: p.stat().st_mtime)
rs = results.load(path)
if kernels.exists():
    rs["kernels"] = json.loads(kernels.read_text())
    shutil.copy(kernels, path.parent / "kernels.json")
else:
    rs["kernels_missing"] = "the kernel stage of gpu-check failed or ran out of time (see its output)"
results.write_json_atomic(path, rs)
(path.parent / "summary.md").write_text(report.summary_markdown(rs))
bad = 0
print(f"{'run':36s} {'status':8s} {'start-up s':>10s} {'setup s':>8s} {'total s':>8s}  reason")
for r in rs["runs"]:
    s = r.get("setup") or {}
    f = lambda x: "-" if x is None else f"{x:.1f}"
    why = (r.get("reason") or r.get("error") or "").replace("\n", " ")[:160]
    print(f"{r['id']:36s} {r['status']:8s} {f(s.get('startup_s')):>10s} {f(s.get('wall_s')):>8s} {f(r.get('wall_s')):>8s}  {why}")
    bad += r["status"] not in ("ok", "skipped")
print(f"result set: {path.parent}")
sys.exit(f"{bad} run(s) failed" if bad else 0)
PY

echo "gpu-check: $(( $(date +%s) - START )) s in all"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf 'gpu-check: FAILED: %s\n' "${FAILED[@]}"
  exit 1
fi
echo "gpu-check: every stage passed"

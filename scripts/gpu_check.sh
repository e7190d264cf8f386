#!/usr/bin/env bash
# GPU check (at most 8 minutes on one GPU of 80 GB or more): a randomly initialised model of
# Qwen2.5-VL-3B's shape, built in code (no download), one self-evolution iteration with vLLM rollouts,
# vLLM votes and bf16, then per-phase times and vote throughput (vLLM vs HF on the same requests).
#
#   bash scripts/gpu_check.sh [--out DIR] [--keep]        (needs: pip install -e ".[gpu]")
#
# Fails fast, before any work, without a CUDA GPU or without vLLM.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi finds none); run it on a GPU machine" >&2
    exit 2
fi
exec "$PYTHON" scripts/gpu_check.py "$@"

#!/usr/bin/env bash
# The GPU check (tools/gpu_check.py): stops at once without a CUDA device, else builds the environment and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: no CUDA device is present (nvidia-smi finds no GPU): run it on a machine with an NVIDIA GPU" >&2
  exit 1
fi
make setup
exec .venv/bin/python tools/gpu_check.py "$@"

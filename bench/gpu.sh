#!/usr/bin/env bash
# The step-cost table on one GPU (H100/H200), offline, in a few minutes: TRL's DPOTrainer against
# InSPOTrainer on random-initialised Llama-3.2-1B and Llama-3-8B shapes, bf16, gradient checkpointing
# off and on (bench/step_cost.py).
#
#   bench/gpu.sh [OUT_DIR]                    # OUT_DIR default: $OUT, else outputs/bench-gpu
#
# Writes OUT_DIR/step_cost_gpu.log and OUT_DIR/step_cost_gpu.json (rewritten after each case).
# PYTHON selects the interpreter (default: .venv/bin/python, else python3). Where that interpreter
# lacks trl or datasets (a node with only torch/transformers/accelerate), the wheelhouse in
# WHEELHOUSE (default .whl, built by scripts/build-wheelhouse.sh) is installed into SITE (default
# /tmp/inspo-site) with --no-index --no-deps first. The checkout's inspo_plugin is used either way.
# BENCH_TIMEOUT (seconds, default 330) bounds the measurement.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${OUT:-${root}/outputs/bench-gpu}}"
mkdir -p "${out}"
out="$(cd "${out}" && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "${root}/.venv/bin/python" ]]; then PYTHON="${root}/.venv/bin/python"; else PYTHON=python3; fi
fi

# Offline, no telemetry (the same variables as inspo_plugin/offline.py).
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled \
  AXOLOTL_DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export HF_DATASETS_CACHE="${HF_DATASETS_CACHE:-${TMPDIR:-/tmp}/inspo-bench-datasets}"

site_path=""
if ! "${PYTHON}" -c "import trl, datasets" >/dev/null 2>&1; then
  site="${SITE:-/tmp/inspo-site}"
  bash "${root}/scripts/install-wheelhouse.sh" "${WHEELHOUSE:-${root}/.whl}" "${site}"
  site_path=":${site}"
fi
# The checkout first: the code measured is the code in this tree, whatever wheel is installed.
export PYTHONPATH="${root}${site_path}${PYTHONPATH:+:${PYTHONPATH}}"

cd "${root}"
{
  echo "bench/gpu.sh: $(date -u +%FT%TZ) on $(hostname)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  timeout "${BENCH_TIMEOUT:-330}" "${PYTHON}" bench/step_cost.py --device cuda --dtype bf16 \
    --case 1b:4x128x256 --case 1b:2x256x512 --case 1b:1x512x1536 --case 8b:1x256x512 \
    --json "${out}/step_cost_gpu.json"
} 2>&1 | tee "${out}/step_cost_gpu.log"

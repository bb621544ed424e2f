#!/usr/bin/env bash
# GPU smoke test: a few optimizer steps of each GPU setting of the recipes (bf16, DeepSpeed ZeRO-3,
# FSDP2, FlashAttention where installed, LoRA, QLoRA) on one GPU with tiny random Llama-3-family models,
# through `axolotl train` (or, without Axolotl, the plain-TRL InSPOTrainer under `accelerate launch`).
# Checks finite inspo/* metrics, a rising conditional margin and a checkpoint that loads and generates.
# Nothing is downloaded. Details: scripts/gpu_smoke.py.
#
#   scripts/gpu-smoke.sh [--out DIR] [--cpu] [--engine auto|axolotl|trl] [--cases bf16,zero3,...]
#                        [--steps N] [--budget SECONDS] [--timeout SECONDS] [--jobs N]
#
# Writes DIR/gpu-smoke.log and DIR/summary.json (DIR: --out, else $OUT, else outputs/gpu-smoke).
# PYTHON selects the interpreter (default: .venv/bin/python, else python3).
#
# For an offline GPU node without Axolotl, build its wheelhouse on a networked machine first:
#   scripts/gpu-smoke.sh --wheelhouse DIR [--qlora] [MORE_REQUIREMENTS_FILE...]
# = scripts/build-wheelhouse.sh DIR requirements/gpu-smoke.txt [requirements/gpu-smoke-qlora.txt] [...],
# so one wheelhouse can also serve other jobs on the node (their requirements files), plus
# DeepSpeed, which PyPI has only as a source distribution: built here into a pure-Python wheel (no torch,
# no compiler: its CUDA ops compile on first use, and ZeRO-3 with torch's AdamW uses none). On the node:
#   scripts/gpu-smoke.sh        (installs DIR=.whl/smoke itself when trl/datasets are missing; WHEELHOUSE=DIR)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deepspeed_version=0.19.8

if [[ "${1:-}" == "--wheelhouse" ]]; then
  dir="${2:?usage: scripts/gpu-smoke.sh --wheelhouse DIR [--qlora] [MORE_REQUIREMENTS_FILE...]}"
  reqs=("${root}/requirements/gpu-smoke.txt")
  for extra in "${@:3}"; do
    if [[ "${extra}" == --qlora ]]; then reqs+=("${root}/requirements/gpu-smoke-qlora.txt"); else reqs+=("${extra}"); fi
  done
  "${root}/scripts/build-wheelhouse.sh" "${dir}" "${reqs[@]}"
  pip_py="${PYTHON:-python3}"
  DS_BUILD_OPS=0 "${pip_py}" -m pip wheel --quiet --no-deps --wheel-dir "${dir}" "deepspeed==${deepspeed_version}"
  total=$(du -cb "${dir}"/*.whl | tail -1 | cut -f1)
  echo "gpu-smoke: wheelhouse ${dir} with deepspeed ${deepspeed_version}: $((total / 1024 / 1024)) MiB (${total} bytes)"
  exit 0
fi
out="${OUT:-${root}/outputs/gpu-smoke}"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --out) out="${args[i + 1]:?--out needs a directory}" ;;
    --out=*) out="${args[i]#--out=}" ;;
  esac
done
mkdir -p "${out}"
out="$(cd "${out}" && pwd)"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "${root}/.venv/bin/python" ]]; then PYTHON="${root}/.venv/bin/python"; else PYTHON=python3; fi
fi
# Neither Axolotl nor TRL + datasets installed (an offline node): install the wheelhouse WHEELHOUSE
# (default .whl/smoke, see --wheelhouse above) into SITE (default /tmp/inspo-site) first, without
# touching the interpreter's own packages.
if ! "${PYTHON}" -c "import axolotl" >/dev/null 2>&1 && ! "${PYTHON}" -c "import trl, datasets" >/dev/null 2>&1; then
  site="${SITE:-/tmp/inspo-site}"
  PYTHON="${PYTHON}" bash "${root}/scripts/install-wheelhouse.sh" "${WHEELHOUSE:-${root}/.whl/smoke}" "${site}"
  export PYTHONPATH="${site}${PYTHONPATH:+:${PYTHONPATH}}"
fi
if [[ -f "${root}/inspo_plugin/__init__.py" ]]; then
  # The checkout first: the code under test is this tree's, whatever wheel is installed.
  export PYTHONPATH="${root}:${PYTHONPATH:-}"
fi
# The interpreter's scripts folder first on PATH: axolotl re-executes itself as `accelerate launch`.
PATH="$(dirname "$(command -v "${PYTHON}")"):${PATH}"

# Offline, no telemetry (the same variables as inspo_plugin/offline.py).
export PATH AXOLOTL_DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled \
  TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 OUT="${out}"

cd "${root}"
"${PYTHON}" scripts/gpu_smoke.py "$@" --out "${out}" 2>&1 | tee "${out}/gpu-smoke.log"

#!/usr/bin/env bash
# Build a wheelhouse for an offline GPU node: the wheels the node lacks, plus this project's wheel.
#
#   scripts/build-wheelhouse.sh DIR [REQUIREMENTS_FILE...]
#
# Run on a machine with network access. The node's pinned stack is requirements/gpu-node-preinstalled.txt
# (override with NODE_REQUIREMENTS=FILE) and every distribution installed on it is named in
# requirements/gpu-node-packages.txt (override with NODE_PACKAGES=FILE: the node's
# `python3 -m pip list --format=freeze`). The wanted packages come from the REQUIREMENTS_FILEs
# (default: requirements/wheelhouse-trl.txt, the plain-TRL path); pass several to extend the list.
# The pinned stack and the wanted packages are resolved together for CPython 3.12 on manylinux x86_64
# (uv pip compile), and exactly the resolved packages the node does not have are downloaded, as
# binary wheels, at the resolved versions (never the node's GPU stack: torch, triton, nvidia-*). The
# installed list, not a resolution of the node's pins, decides what is there: a resolver may assume
# an optional dependency (pydantic through typer) that the node never installed. The project's wheel is built from this
# checkout. Prints the list and the total size. Install on the node: scripts/install-wheelhouse.sh DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:?usage: scripts/build-wheelhouse.sh DIR [REQUIREMENTS_FILE...]}"
shift
wanted=("$@")
[[ ${#wanted[@]} -gt 0 ]] || wanted=("${root}/requirements/wheelhouse-trl.txt")
node="${NODE_REQUIREMENTS:-${root}/requirements/gpu-node-preinstalled.txt}"
installed="${NODE_PACKAGES:-${root}/requirements/gpu-node-packages.txt}"
for f in "${node}" "${installed}" "${wanted[@]}"; do
  [[ -f "${f}" ]] || { echo "build-wheelhouse: no such requirements file: ${f}" >&2; exit 2; }
done

uv="$(command -v uv || echo "${HOME}/.local/bin/uv")"
[[ -x "${uv}" ]] || { echo "build-wheelhouse: needs uv (https://docs.astral.sh/uv/)" >&2; exit 2; }
if python3 -m pip --version >/dev/null 2>&1; then pip=(python3 -m pip); else pip=("${uv%/uv}/uvx" pip); fi

platform=(--python-version 3.12 --python-platform x86_64-manylinux_2_28)
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# 1. Resolve the node's pinned stack plus the wanted packages.
"${uv}" pip compile -q --no-header --no-annotate "${platform[@]}" "${node}" "${wanted[@]}" -o "${work}/all.txt"

# 2. The resolved packages the node does not have, by name, at the versions of that resolution.
names() { grep -vE '^[[:space:]]*(#|$)' "$1" | sed -E 's/[[:space:]]*;.*//; s/[[:space:]=<>!~].*//' \
  | tr '[:upper:]_.' '[:lower:]--' | sort -u; }
comm -13 <(names "${installed}") <(names "${work}/all.txt") \
  | grep -vE '^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*)$' >"${work}/missing-names.txt" || true
while read -r name; do
  grep -iE "^${name//-/[-_.]}==" "${work}/all.txt" | sed -E 's/[[:space:]]*;.*//'
done <"${work}/missing-names.txt" >"${work}/missing.txt"
echo "build-wheelhouse: packages the node lacks:"
sed 's/^/  /' "${work}/missing.txt"

# 3. Download them as cp312 manylinux x86_64 wheels, no dependencies (they are all listed).
mkdir -p "${dir}"
rm -f "${dir}"/*.whl
"${pip[@]}" download -q --no-deps --only-binary=:all: --dest "${dir}" \
  --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -r "${work}/missing.txt"

# 4. This project's wheel (installed on the node with --no-deps: its pins are for the full stack).
"${uv}" build -q --wheel --out-dir "${dir}" "${root}"
cp "${work}/missing.txt" "${dir}/wheelhouse-requirements.txt"

echo "build-wheelhouse: ${dir}"
ls -1 "${dir}"/*.whl | sed 's|.*/|  |'
total=$(du -cb "${dir}"/*.whl | tail -1 | cut -f1)
echo "build-wheelhouse: $(ls "${dir}"/*.whl | wc -l) wheels, total $((total / 1024 / 1024)) MiB (${total} bytes)"

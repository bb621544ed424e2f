#!/usr/bin/env bash
# Create (or update) the project's virtual environment with Python 3.12 and install the package
# with the extras given as arguments (default: axolotl,dev,demo).
# Usage: scripts/setup-env.sh [EXTRAS]      VENV=path overrides the location (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
EXTRAS="${1:-axolotl,dev,demo}"

find_python312() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return 0; fi
  local candidate
  for candidate in python3.12 "$HOME/.pyenv/versions/3.12"*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do
    if PYENV_VERSION="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | tail -1 || true)" \
        "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
      PYENV_VERSION="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | tail -1 || true)" \
        "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

if ! PY312="$(find_python312)"; then
  echo "error: inspo-plugin needs Python 3.12 (axolotl 0.21 requires it) and none was found." >&2
  echo "       Install one (pyenv install 3.12, apt install python3.12, uv python install 3.12)" >&2
  echo "       or point PYTHON=/path/to/python3.12 at it." >&2
  exit 1
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "[setup] installing uv (fast installer) with pip"
  python3 -m pip install --quiet uv || "$PY312" -m pip install --quiet uv
fi
UV="$(command -v uv || echo "$PY312 -m uv")"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[setup] creating $VENV with $PY312"
  $UV venv --quiet -p "$PY312" "$VENV"
fi
echo "[setup] installing inspo-plugin[$EXTRAS] into $VENV (first run downloads ~7 GB: torch, axolotl)"
$UV pip install --quiet -p "$VENV/bin/python" -e ".[$EXTRAS]"
echo "[setup] done: $("$VENV/bin/python" --version) in $VENV"

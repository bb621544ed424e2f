#!/usr/bin/env bash
# Install a wheelhouse (scripts/build-wheelhouse.sh) on an offline node, without touching its packages.
#
#   scripts/install-wheelhouse.sh DIR [TARGET]        # TARGET default: /tmp/inspo-site
#   export PYTHONPATH="TARGET${PYTHONPATH:+:$PYTHONPATH}"
#
# Every wheel in DIR goes into TARGET with `pip install --no-index --no-deps --target`: nothing is
# fetched, nothing already installed (torch, transformers, ...) is upgraded or replaced (without pip,
# the wheels are unpacked into TARGET). PYTHON selects the interpreter (default python3). Prints the
# PYTHONPATH line to use.
set -euo pipefail

dir="${1:?usage: scripts/install-wheelhouse.sh DIR [TARGET]}"
target="${2:-/tmp/inspo-site}"
python="${PYTHON:-python3}"
shopt -s nullglob
wheels=("${dir}"/*.whl)
[[ ${#wheels[@]} -gt 0 ]] || { echo "install-wheelhouse: no wheels in ${dir}" >&2; exit 2; }

mkdir -p "${target}"
if "${python}" -m pip --version >/dev/null 2>&1; then
  "${python}" -m pip install --quiet --no-index --no-deps --no-compile --disable-pip-version-check \
    --upgrade --target "${target}" "${wheels[@]}"
else  # no pip on the node: a wheel is a zip of its site-packages files
  "${python}" -c 'import sys, zipfile
for wheel in sys.argv[2:]:
    zipfile.ZipFile(wheel).extractall(sys.argv[1])' "${target}" "${wheels[@]}"
fi
echo "install-wheelhouse: ${#wheels[@]} wheels into ${target}"
echo "export PYTHONPATH=\"${target}\${PYTHONPATH:+:\$PYTHONPATH}\""

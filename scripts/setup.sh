#!/usr/bin/env bash
# Make a virtual environment (.venv, or $VENV) and install dcopilot into it with its test and quant extras.
#
# torch is installed first and pinned: pip then keeps that build when it installs dcopilot. On the project's
# CPU machines `torch==2.13.0` is the CPU wheel that pip finds on local disk; an unpinned torch would pull a
# CUDA build of several GB. Elsewhere, set TORCH_INDEX_URL to the PyTorch wheel index you want (README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup.sh: dcopilot needs Python >= 3.11; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
    exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${pip[@]}" --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"
else
    "${pip[@]}" "torch==$TORCH_VERSION"
fi
"${pip[@]}" -e '.[dev,quant]'
echo "setup.sh: installed into $VENV: $("$VENV/bin/dcopilot" --version), torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"

#!/usr/bin/env bash
# The GPU recipe: train a larger embedded model on one GPU in a few minutes, from data carried to the machine.
#
#   bash scripts/gpu_train.sh --prepare [--corpus PATH] [--tokenizer PATH] [--mib 45]   # here: .carry/train/
#   bash scripts/gpu_train.sh --out DIR [--size 20m] [--deadline 300] [...]             # on the GPU machine
#
# --prepare builds pre-tokenized FIM examples (engine/training/pretok.py) into .carry/train/ (git ignores it):
# --corpus is a corpus manifest .json (default: engine/embedded/corpus_manifest.json, today's stdlib corpus) or a
# corpus v2 root (a folder with manifest.jsonl); --tokenizer the tokenizer.json the ids are for (default: the
# shipped one). The machine needs only torch, safetensors and tokenizers; the repository runs from source.
# Training options after --out go to engine/training/gpu_train.py (--help there). $PYTHON picks the interpreter
# (else .venv/bin/python, else python3). docs/gpu.md has the exact device-tool call.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${PYTHON:-}" ]; then py=$PYTHON; elif [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
# `dcopilot` is this folder (a namespace package over engine/, lsp/, copilot/) for machines without an install.
shim="$(mktemp -d)"
trap 'rm -rf "$shim"' EXIT
ln -s "$PWD" "$shim/dcopilot"
export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

case "${1:-}" in
    --prepare)
        shift
        args=(--out .carry/train)
        while [ $# -gt 0 ]; do
            case "$1" in
                --corpus|--tokenizer|--mib|--seed|--workers|--val|--out) args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
                *) echo "gpu_train.sh: unknown --prepare option $1 (see --help)" >&2; exit 2 ;;
            esac
        done
        exec "$py" -m dcopilot.engine.training.pretok "${args[@]}" ;;
    --out)
        out="${2:?--out needs a folder}"; shift 2
        mkdir -p "$out"
        data=.carry/train
        rest=()
        while [ $# -gt 0 ]; do
            case "$1" in
                --data) data="${2:?--data needs a folder}"; shift 2 ;;
                *) rest+=("$1"); shift ;;
            esac
        done
        [ -f "$data/meta.json" ] || { echo "gpu_train.sh: no training data in $data (run --prepare first)" >&2; exit 2; }
        "$py" -m dcopilot.engine.training.gpu_train --data "$data" --out "$out" "${rest[@]}" 2>&1 | tee "$out/run.log"
        exit "${PIPESTATUS[0]}" ;;
    -h|--help|"") sed -n '2,11p' "$0"; [ -n "${1:-}" ]; exit $? ;;
    *) echo "gpu_train.sh: the first argument is --prepare or --out DIR, not $1 (see --help)" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The GPU recipe: train a larger embedded model on one GPU in a few minutes, from data carried to the machine.
#
#   bash scripts/gpu_train.sh --prepare [--corpus PATH] [--tokenizer PATH] [--mib 45] [--language-alpha 1]  # here
#   bash scripts/gpu_train.sh --out DIR [--pack PACKDIR] [--size 20m] [--deadline 300] [...]  # on the GPU machine
#   bash scripts/gpu_train.sh --unpack PACKDIR DIR                                      # here: DIR/checkpoint/...
#
# --pack copies what a run wrote into at most 8 files of at most 15 MiB each (what the device tool brings back
# from $OUT): scores.json, summary.md, logs.tgz, pack.json (part names and the archive's sha256) and the
# checkpoint as checkpoint.tar.part-NN pieces; --unpack checks and reassembles them.
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
. scripts/dcopilot_path.sh  # `dcopilot` importable from this checkout, without an install

case "${1:-}" in
    --prepare)
        shift
        args=(--out .carry/train)
        while [ $# -gt 0 ]; do
            case "$1" in
                --corpus|--tokenizer|--mib|--seed|--workers|--val|--out|--language-alpha) args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
                *) echo "gpu_train.sh: unknown --prepare option $1 (see --help)" >&2; exit 2 ;;
            esac
        done
        exec "$py" -m dcopilot.engine.training.pretok "${args[@]}" ;;
    --out)
        out="${2:?--out needs a folder}"; shift 2
        mkdir -p "$out"
        data=.carry/train pack=""
        rest=()
        while [ $# -gt 0 ]; do
            case "$1" in
                --data) data="${2:?--data needs a folder}"; shift 2 ;;
                --pack) pack="${2:?--pack needs a folder}"; shift 2 ;;
                *) rest+=("$1"); shift ;;
            esac
        done
        [ -f "$data/meta.json" ] || { echo "gpu_train.sh: no training data in $data (run --prepare first)" >&2; exit 2; }
        set +e
        "$py" -m dcopilot.engine.training.gpu_train --data "$data" --out "$out" "${rest[@]}" 2>&1 | tee "$out/run.log"
        rc=${PIPESTATUS[0]}
        set -e
        if [ -n "$pack" ]; then
            mkdir -p "$pack"
            for f in scores.json summary.md; do [ -f "$out/$f" ] && cp "$out/$f" "$pack/"; done
            tar czf "$pack/logs.tgz" -C "$out" $(cd "$out" && ls train_log.jsonl run.log 2>/dev/null)
            if [ -d "$out/checkpoint" ]; then
                tar cf "$out/checkpoint.tar" -C "$out" checkpoint
                split -b 15M -d -a 2 "$out/checkpoint.tar" "$pack/checkpoint.tar.part-"
                parts=$(cd "$pack" && ls checkpoint.tar.part-* | tr '\n' ' ')
                [ "$(echo $parts | wc -w)" -le 4 ] || { echo "gpu_train.sh: checkpoint needs more than 4 parts" >&2; rc=1; }
                sum=$(sha256sum "$out/checkpoint.tar" | cut -d' ' -f1)
                printf '{"archive": "checkpoint.tar", "sha256": "%s", "parts": "%s"}\n' "$sum" "$parts" >"$pack/pack.json"
                rm -f "$out/checkpoint.tar"
            fi
            echo "gpu_train.sh: packed $(ls "$pack" | wc -l) files into $pack"
        fi
        exit "$rc" ;;
    --unpack)
        pack="${2:?--unpack needs the pack folder}" dest="${3:?--unpack needs a destination folder}"
        [ -f "$pack/pack.json" ] || { echo "gpu_train.sh: no pack.json in $pack" >&2; exit 2; }
        want=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$pack/pack.json")
        mkdir -p "$dest"
        cat "$pack"/checkpoint.tar.part-* >"$dest/checkpoint.tar"
        got=$(sha256sum "$dest/checkpoint.tar" | cut -d' ' -f1)
        [ "$got" = "$want" ] || { echo "gpu_train.sh: checkpoint archive sha256 $got, expected $want" >&2; exit 1; }
        tar xf "$dest/checkpoint.tar" -C "$dest" && rm "$dest/checkpoint.tar"
        for f in scores.json summary.md; do [ -f "$pack/$f" ] && cp "$pack/$f" "$dest/"; done
        [ -f "$pack/logs.tgz" ] && tar xzf "$pack/logs.tgz" -C "$dest"
        echo "gpu_train.sh: unpacked into $dest (checkpoint: $dest/checkpoint)" ;;
    -h|--help|"") awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; [ -n "${1:-}" ]; exit $? ;;
    *) echo "gpu_train.sh: the first argument is --prepare or --out DIR, not $1 (see --help)" >&2; exit 2 ;;
esac

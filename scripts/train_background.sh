#!/usr/bin/env bash
# Keep training the embedded model in the background at the lowest priority, resumable across stops and reboots.
#
#   bash scripts/train_background.sh start   [RUN_DIR]   # resume RUN_DIR/state, or start from engine/embedded
#   bash scripts/train_background.sh stop    [RUN_DIR]   # SIGTERM: the trainer saves its state, then exits
#   bash scripts/train_background.sh status  [RUN_DIR]   # running or not, last logged step, saved state
#   bash scripts/train_background.sh promote [RUN_DIR]   # ship RUN_DIR/checkpoint if it scores and suggests better
#
# RUN_DIR defaults to runs/background. $CORPUS picks the data at the first start: a corpus v2 root (e.g.
# ~/.cache/dcopilot-corpus/v2, built by scripts/build_corpus_v2.sh) or, by default, the shipped model's manifest.
# The tokenizer stays the shipped one, so the result can replace the shipped model. The trainer runs under
# `nice -n 19` on one thread (OMP_NUM_THREADS=1, passive OpenMP waits), continues the shipped model with
# absorbing-state diffusion (STEPS optimiser steps in all, default 200000: days on one core; the cosine schedule
# spans them), saves its state every 10 minutes and on stop, and writes RUN_DIR/checkpoint each time. `promote` runs
# dcopilot.engine.training.promote (judged on the held-out split of the run's corpus: v2's validation packages, or
# the shipped manifest's; the model card gets a row per promotion) once bench/quality_gate.py has found its
# suggestions better (the calibration split's edit similarity, model alone). $PYTHON picks the interpreter
# (else .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-status}
run=${2:-runs/background}
py=${PYTHON:-.venv/bin/python}
pidfile="$run/trainer.pid"

alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "$cmd" in
    start)
        if alive; then echo "already running (pid $(cat "$pidfile")) in $run"; exit 0; fi
        mkdir -p "$run"
        if [ -f "$run/state/state.json" ]; then
            args=(--resume "$run")
        else
            args=(--out "$run/out" --run-dir "$run" --steps "${STEPS:-200000}" --init-from engine/embedded
                  --corpus "${CORPUS:-engine/embedded/corpus_manifest.json}" --tokenizer engine/embedded/tokenizer.json
                  --ar-fraction 0 --lr 1e-3 --warmup-steps 50 --seed "${SEED:-4}" --noise mask --threads 1
                  --ckpt-minutes 10)
        fi
        OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE nohup nice -n 19 "$py" -m dcopilot.engine.training.train "${args[@]}" \
            >>"$run/trainer.out" 2>&1 </dev/null &
        echo $! >"$pidfile"
        echo "started pid $! (${args[0]} ...); log: $run/trainer.out" ;;
    stop)
        if ! alive; then echo "not running"; exit 0; fi
        pid=$(cat "$pidfile")
        kill -TERM "$pid"
        for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then echo "pid $pid did not stop within 5 minutes" >&2; exit 1; fi
        rm -f "$pidfile"
        echo "stopped"
        exec "$0" status "$run" ;;
    status)
        if alive; then echo "running (pid $(cat "$pidfile")) in $run"; else echo "not running ($run)"; fi
        [ -f "$run/train_log.jsonl" ] && echo "last step: $(tail -n 1 "$run/train_log.jsonl")"
        [ -f "$run/state/state.json" ] && "$py" -c 'import json,sys; p=json.load(open(sys.argv[1]))["progress"]; print("saved state: step {step}, {tokens:,} tokens, {sessions} session(s), {m:.1f} min".format(m=p["seconds"]/60, **p))' "$run/state/state.json"
        exit 0 ;;
    promote)
        [ -f "$run/checkpoint/model.safetensors" ] || { echo "no checkpoint in $run yet" >&2; exit 1; }
        # Two judges, each run once: what users are shown (bench/quality_gate.py: the calibration split's edit
        # similarity, model alone), then held-out loss (promote, which ships only if that improves too). Loss and
        # suggestions have disagreed before.
        rc=0
        "$py" bench/quality_gate.py --candidate "$run/checkpoint" --out "$run/quality_gate.json" || rc=$?
        case $rc in 0) ;; 1) echo "kept the shipped model: its suggestions are no better"; exit 0 ;; *) exit 1 ;; esac
        exec "$py" -m dcopilot.engine.training.promote --candidate "$run/checkpoint" --run-dir "$run" ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
esac

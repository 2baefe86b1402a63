#!/usr/bin/env bash
# Rebuild the shipped embedded model (engine/embedded) from this repository, in the three stages it was trained
# in (see engine/embedded/MODEL_CARD.md). Step counts are fixed, so the schedules are exact; the shipped run used
# wall-time schedules of the same length, so a rebuild matches it closely, not bit for bit.
# Wall time: about 3.5 hours on 2 CPU cores (the shipped run took 195 min, stage 1 on one contended core).
# Usage: bash scripts/train_embedded.sh [run-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/rebuild}
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE  # passive: threads sleep instead of spinning
# The shipped model trained in float32; PRECISION= (empty) uses the trainer's faster bf16 default instead.
P=${PRECISION---fp32}

# 1. corpus manifest + BPE tokenizer + AR warm start + uniform-state diffusion (the first shipped model)
"$PY" -m dcopilot.engine.training.train --out "$RUN/stage1" --run-dir "$RUN/stage1-run" --steps 1387 --noise uniform \
    --canvas-length 48 --ckpt-minutes 8 $P
# 2. more uniform-state diffusion at a lower learning rate
"$PY" -m dcopilot.engine.training.train --out "$RUN/stage2" --run-dir "$RUN/stage2-run" --steps 230 --noise uniform \
    --manifest "$RUN/stage1/corpus_manifest.json" --tokenizer "$RUN/stage1/tokenizer.json" --init-from "$RUN/stage1" \
    --ar-fraction 0 --lr 1e-3 --warmup-steps 50 --seed 2 --canvas-length 48 $P
# 3. absorbing-state (<mask>) diffusion: what the shipped model's sampler runs
"$PY" -m dcopilot.engine.training.train --out "$RUN/embedded" --run-dir "$RUN/stage3-run" --steps "${STAGE3_STEPS:-2493}" --noise mask \
    --manifest "$RUN/stage1/corpus_manifest.json" --tokenizer "$RUN/stage1/tokenizer.json" --init-from "$RUN/stage2" \
    --ar-fraction 0 --lr 1e-3 --warmup-steps 50 --seed 3 $P
echo "rebuilt: $RUN/embedded (compare with engine/embedded: python bench/embedded_eval.py --model $RUN/embedded)"

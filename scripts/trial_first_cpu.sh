#!/usr/bin/env bash
# One trial run for the FIRST class model, to choose settings by measurement: fine-tune INIT
# (default: the bundled first-class weights; preset first-cpu) for STEPS (default 800) steps on
# one CPU thread with the given settings changed, then score its EMA weights by classifier accuracy and radio Fréchet distance
# (against the FIRST test split) of 50 images per class at ω = 0.75 and 2, the same seeds for
# every trial. Two trials run side by side on the 2-core CPU. Resumable: re-run the same command.
# Usage: scripts/trial_first_cpu.sh RUN_DIR [--set KEY=VALUE ...]
#        scripts/trial_first_cpu.sh --score-bundled OUT.json   (the same score for first-class)
# e.g.   scripts/trial_first_cpu.sh runs/trials/A --set training.p_mean=-2.5 --set training.p_std=1.8
set -euo pipefail
export OMP_NUM_THREADS=1
steps=${STEPS:-800}
init=${INIT:-first-class}
score() {  # score MODEL_OPTION OUT.json
    radiogen classifier sweep $1 -w 0.75 2 -n 50 --precision bf16 \
        --reference first:test --device cpu --out "$2" --no-progress
}
if [ "${1:-}" = "--score-bundled" ]; then
    score "--model first-class" "$2"
    exit 0
fi
run=$1
shift
if [ -f "$run/checkpoints/latest.json" ]; then resume=--resume; else resume=; fi
radiogen train --preset first-cpu --init-from "$init" --out "$run" $resume --no-progress \
    --set training.threads=1 --set training.iterations="$steps" --set training.lr_warmup=50 \
    --set training.val_every=200 --set training.checkpoint_every=200 "$@"
score "--checkpoint $run" "$run/score.json"

#!/usr/bin/env bash
# One trial run for the FIRST flux model, to choose settings by measurement: fine-tune INIT
# (default: the bundled first-flux weights; preset first-flux-cpu) for STEPS (default 700) steps
# on one CPU thread with the given settings changed, then score its EMA weights against the real
# store: 300 images at the default sampler and ω = 0.1, peak fluxes drawn from the training
# histogram with the same seed for every trial; distances of the pixel / per-image mean / std
# distributions, PyBDSF A50% and model flux (150 images per set), Δ+ against peak flux and the
# radio Fréchet distance. Two trials run side by side on the 2-core CPU. Resumable.
# Usage: scripts/trial_first_flux_cpu.sh RUN_DIR [--set KEY=VALUE ...]
#        scripts/trial_first_flux_cpu.sh --score-bundled OUT_DIR   (the same score for first-flux)
# e.g.   scripts/trial_first_flux_cpu.sh runs/flux-trials/A --set training.p_mean=-0.6
set -euo pipefail
export OMP_NUM_THREADS=1
steps=${STEPS:-700}
init=${INIT:-first-flux}
store=runs/mirabest-flux.h5
score() {  # score MODEL_OPTION OUT_DIR
    radiogen sample $1 -n 300 --seed 0 --precision bf16 --device cpu \
        --out "$2/samples" --h5 --no-progress
    radiogen evaluate --real "$store" --generated "$2/samples/samples.h5" --pybdsf-limit 150 \
        --workers 1 --no-memorisation --device cpu \
        --out "$2/report" --no-progress
}
if [ "${1:-}" = "--score-bundled" ]; then
    score "--model first-flux" "$2"
    exit 0
fi
run=$1
shift
if [ -f "$run/checkpoints/latest.json" ]; then resume=--resume; else resume=; fi
radiogen train --preset first-flux-cpu --data "$store" --init-from "$init" --out "$run" $resume \
    --no-progress --set training.threads=1 --set training.iterations="$steps" \
    --set training.lr_warmup=50 --set training.val_every=100 --set training.checkpoint_every=100 "$@"
score "--checkpoint $run" "$run/score"

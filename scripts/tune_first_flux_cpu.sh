#!/usr/bin/env bash
# Fine-tune the first-flux-cpu run into the shipped `first-flux` model: 700 more steps (one CPU
# thread, ~43 min beside another job) with ln σ ~ N(−0.6, 1.2²), the setting chosen by trial
# runs (scripts/trial_first_flux_cpu.sh; first-flux model card). Resumable: re-run the same
# command. Then scripts/ship_first_flux_cpu.sh exports and evaluates it.
# Usage: scripts/tune_first_flux_cpu.sh [BASE_RUN] [RUN_DIR]
# The shipped weights were tuned (as trial A) from BASE = the bf16 export of runs/first-flux-cpu
# (the first-flux file of git commit 49ec544), which differs from the run's float32 EMA weights
# by rounding.
set -euo pipefail
base=${1:-runs/first-flux-cpu}
run=${2:-runs/first-flux-tuned}
store=runs/mirabest-flux.h5
export OMP_NUM_THREADS=1
if [ -f "$run/checkpoints/latest.json" ]; then resume=--resume; else resume=; fi
radiogen train --preset first-flux-cpu --data "$store" --init-from "$base" --out "$run" $resume \
    --set training.threads=1 --set training.iterations=700 --set training.lr_warmup=50 \
    --set training.p_mean=-0.6 --set training.p_std=1.2 \
    --set training.val_every=100 --set training.checkpoint_every=100

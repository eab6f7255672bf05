#!/usr/bin/env bash
# The long run of the first-patch-cpu preset (issue 13), carried over several sittings: each
# call trains for at most MINUTES of wall-clock time and stops cleanly with a checkpoint; the
# next call resumes exactly where it stopped. If the run folder is lost, INIT (a model file,
# e.g. the bundled weights of this architecture) starts a new run from its EMA weights with a
# fresh optimiser instead.
# Usage: scripts/train_first_patch_cpu.sh [RUN_DIR] [MINUTES] [THREADS] [INIT]
# The run of 2026-11-27 lives in ~/runs/first-patch (one thread; both when the CPU is free).
set -euo pipefail
run=${1:-runs/first-patch}
minutes=${2:-150}
threads=${3:-1}
init=${4:-}
export OMP_NUM_THREADS=$threads
if [ -f "$run/checkpoints/latest.json" ]; then
    radiogen train --resume --out "$run" --max-minutes "$minutes" \
        --set training.threads="$threads" --no-progress
elif [ -n "$init" ]; then
    radiogen train --preset first-patch-cpu --init-from "$init" --out "$run" \
        --max-minutes "$minutes" --set training.threads="$threads" --set training.lr_warmup=50 \
        --no-progress
else
    radiogen train --preset first-patch-cpu --out "$run" --max-minutes "$minutes" \
        --set training.threads="$threads" --no-progress
fi

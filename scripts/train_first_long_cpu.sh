#!/usr/bin/env bash
# The long run of the first-class architecture (issue 13), carried over several sittings: the
# bundled first-class weights (preset first-cpu, 0.5 M parameters) trained on with the settings
# of their fine-tuning (ln σ ~ N(−0.6, 1.2²), lr 4e-4), keeping two post-hoc
# EMA profiles (σ_rel 0.05 and 0.10, snapshots every 500 steps) so that the EMA length is chosen
# afterwards (`radiogen models ema RUN --sigma-rel …`). Each call trains for at most MINUTES of
# wall-clock time and stops cleanly with a checkpoint; the next call resumes where it stopped;
# if the run folder is lost, INIT (default: the bundled first-class) starts it again. The shipped
# weights came from two such runs (first-class.md): (3) from the fine-tuned weights of
# scripts/tune_first_cpu.sh (112 k images seen) to step 5000, then (4) from (3)'s step 5000
# (272 k) to step 5000 again (432 k), on to step 14 500 (736 k) and step 22 048 (978 k), each
# shipped with scripts/ship_first_long_cpu.sh.
# Why this architecture and not first-patch-cpu: at equal images seen it scores higher (0.469 at
# 90 k images against 0.398 at 80 k on the selection protocol, first-class.md), trains about as
# many images per second on one thread (5–6 on an AMD EPYC, fp32; the patch input offsets the
# larger network), and starts from weights that have seen more (112 k against 87 k).
# Usage: scripts/train_first_long_cpu.sh [RUN_DIR] [MINUTES] [THREADS] [INIT]
set -euo pipefail
run=${1:-runs/first-long}
minutes=${2:-150}
threads=${3:-1}
init=${4:-first-class}
export OMP_NUM_THREADS=$threads
if [ -f "$run/checkpoints/latest.json" ]; then
    radiogen train --resume --out "$run" --max-minutes "$minutes" \
        --set training.threads="$threads" --no-progress
else
    radiogen train --preset first-cpu --init-from "$init" --out "$run" \
        --max-minutes "$minutes" --set training.threads="$threads" \
        --set training.iterations=40000 --set training.lr_warmup=50 \
        --set training.p_mean=-0.6 --set training.p_std=1.2 \
        --set 'training.ema_profiles=[0.05,0.1]' --set training.ema_snapshot_every=500 \
        --set training.val_every=200 --set training.checkpoint_every=100 --no-progress
fi

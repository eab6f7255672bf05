#!/usr/bin/env bash
# Trial runs of consistency tuning for `first-class` (issue: few-step sampling), two side by
# side on one CPU thread each (~45 min): both start from the shipped weights.
#   ect: teacher-free easy consistency tuning (Geng et al. 2025), context dropout kept so that
#        guidance still works at sampling time (two passes per step);
#   cd:  consistency distillation from the shipped model guided at ω = 0.75 (one pass per step).
# Resumable: re-run the same command. Then each run is scored by benchmarks/sampler_quality.py
# against first-class with DPM-Solver++(2M), 15 evaluations guided everywhere (the default when
# the trials ran; 50 images per class, the same seeds; classifier
# accuracy and radio Fréchet distance to the FIRST test split) at N = 1, 2, 4 evaluations and
# three last noise levels σ_min (~10 min each on one thread).
# Usage: scripts/trial_first_consistency_cpu.sh [OUT_DIR]
set -euo pipefail
out=${1:-runs}
export OMP_NUM_THREADS=1
common=(--preset first-cpu --init-from first-class --no-progress
        --set training.threads=1 --set training.lr=2e-4 --set training.lr_warmup=50
        --set training.objective=consistency --set training.consistency_stages=4
        --set training.p_mean=-0.6 --set training.p_std=1.6
        --set training.val_every=100 --set training.checkpoint_every=100
        --set training.keep_checkpoints=10)
trial() {  # trial NAME ITERATIONS SETTINGS...
    local run="$out/trial-consistency-$1" iterations=$2
    shift 2
    local resume=
    [ -f "$run/checkpoints/latest.json" ] && resume=--resume
    radiogen train "${common[@]}" --out "$run" $resume \
        --set training.iterations="$iterations" "$@" > "$run.log" 2>&1
}
mkdir -p "$out"
score() {  # score NAME [OPTIONS...]
    local run="$out/trial-consistency-$1"
    shift
    python benchmarks/sampler_quality.py --model first-class --samplers --reference dpmpp-2m 15 \
        --real first:test --n 50 --precision fp32 --batch-size 8 --consistency "$run" \
        --consistency-steps 1 2 4 --consistency-sigma-min 0.4 0.8 1.6 "$@" \
        --out "$run/quality" > "$run/quality.log" 2>&1
}
trial ect 560 && score ect --consistency-guidance 0 0.75 &
trial cd 400 --set training.context_dropout=0 \
    --set training.consistency_teacher=first-class --set training.consistency_guidance=0.75 \
    && score cd &
wait

#!/usr/bin/env bash
# Ship a point of the long run (scripts/train_first_long_cpu.sh) as the bundled `first-class`
# model, after the issue-13 protocol: rebuild the post-hoc EMA of length SIGMA_REL as of STEP,
# score it beside the weights bundled now (500 images per class, seed sets 0 and 1 000 000,
# default sampler, both evaluation classifiers, against the FIRST test split, with the SSIM
# memorisation check against the training split); with SHIP=1, once
# those figures show it ahead, write it over the bundled file (bfloat16, its config inside).
# Usage: [SHIP=1] [SHIPPED_FROM=DIR] scripts/ship_first_long_cpu.sh RUN_DIR STEP [SIGMA_REL] [WORK_DIR]
# SHIPPED_FROM: a class_realism.py folder of the same protocol that already holds the bundled
# model's images (shipped-seed0.npy, shipped-seed1000000.npy), which are then scored, not drawn
# again; a run that was cut off continues where it stopped (--reuse).
set -euo pipefail
run=$1
step=$2
sigma_rel=${3:-0.05}
work=${4:-runs/ship-first-long-$step}
# The candidate guides Bent with ω = 0.3 as the bundled weights do since 2026-12-06 (first-class.md,
# "Weaker guidance"), so that both are drawn with the same default sampler.
candidate=$("$(dirname "$0")"/posthoc_candidate.sh "$run" "$step" "$sigma_rel" "$work" first-class \
    --class-guidance Bent=0.3)
# The protocol, both models side by side (about 1 hour per model on one CPU thread); the images
# stay in $work as .npy for rescoring.
mkdir -p "$work/protocol"
if [ -n "${SHIPPED_FROM:-}" ]; then
    cp -n "$SHIPPED_FROM"/shipped-seed0.npy "$SHIPPED_FROM"/shipped-seed1000000.npy "$work/protocol/"
fi
python "$(dirname "$0")/../benchmarks/class_realism.py" --n 500 --seed-sets 0 1000000 --reuse \
    --setting shipped:model=first-class --setting "long$step:model=$candidate" \
    --classifier first-morphology --classifier first-morphology-2 \
    --reference first:test --memorisation first:train --out "$work/protocol"
if [ "${SHIP:-0}" = 1 ]; then
    cp "$candidate" "$(dirname "$0")/../src/radiogen/weights/first-class.safetensors"
    echo "copied $candidate to src/radiogen/weights/first-class.safetensors; update first-class.md"
fi

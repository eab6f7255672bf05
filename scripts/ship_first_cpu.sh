#!/usr/bin/env bash
# Export, sample and evaluate the first-cpu run as the bundled `first-class` model.
# Usage: scripts/ship_first_cpu.sh RUN_DIR WORK_DIR
set -euo pipefail
run=${1:-runs/first-cpu}
work=${2:-runs/first-cpu-eval}
mkdir -p "$work"
# EMA weights in bfloat16 (read back as float32), with config and data description inside
radiogen models export "$run" --out src/radiogen/weights/first-class.safetensors --dtype bf16
# 100 images per class at the paper's sampler settings (Heun, 25 steps, ω = 0.75)
radiogen sample --model first-class --class FRI FRII Compact Bent -n 100 --precision bf16 \
    --out "$work/samples" --h5 --no-progress
# Distributions against the held-out, class-balanced FIRST test split (no classifier yet)
radiogen evaluate --real first:test --generated "$work/samples/samples.h5" --no-pybdsf \
    --no-memorisation --out "$work/report-test" --no-progress
# Memorisation: best-match SSIM to the training images, against the test split as baseline
radiogen evaluate --real first:train --generated "$work/samples/samples.h5" --held-out first:test \
    --no-pybdsf --out "$work/report-train" --no-progress

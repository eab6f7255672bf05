#!/usr/bin/env bash
# Export, sample and evaluate a first-cpu run as the bundled `first-class` model: by default the
# fine-tuned run of scripts/tune_first_cpu.sh (scripts/train_first_cpu.sh, then that).
# Usage: scripts/ship_first_cpu.sh [RUN_DIR] [WORK_DIR]
# Uses the bundled classifier (scripts/train_classifier.sh) and radiogen sample's default
# sampler; set SAMPLE_OPTIONS (e.g. "--sampler heun --steps 25") to evaluate another.
set -euo pipefail
run=${1:-runs/first-cpu-tuned}
work=${2:-runs/first-cpu-eval}
opts=${SAMPLE_OPTIONS:-}
mkdir -p "$work"
# EMA weights in bfloat16 (read back as float32), with config and data description inside
if [ -d "$run" ]; then
    radiogen models export "$run" --out src/radiogen/weights/first-class.safetensors --dtype bf16
else
    echo "no run folder $run: evaluating the bundled first-class weights as they are"
fi
# 500 images per class at ω = 0.75
radiogen sample --model first-class --class FRI FRII Compact Bent -n 500 --precision bf16 $opts \
    --out "$work/samples" --h5 --no-progress
# Classifier accuracy, confusion, radio Fréchet distance and distributions against the
# held-out, class-balanced FIRST test split
radiogen evaluate --real first:test --generated "$work/samples/samples.h5" --no-pybdsf \
    --no-memorisation --out "$work/report-test" --no-progress
# Memorisation: best-match SSIM to the training images, against the test split as baseline
radiogen evaluate --real first:train --generated "$work/samples/samples.h5" --held-out first:test \
    --no-pybdsf --no-classifier --out "$work/report-train" --no-progress
# Table 7: accuracy against ω, 25 images per class (the same seeds at every ω)
radiogen classifier sweep --model first-class -w 0 0.1 0.2 0.5 0.75 1 2 -n 25 --precision bf16 \
    $opts --out "$work/sweep.json" --no-progress

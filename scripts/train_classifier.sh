#!/usr/bin/env bash
# Train the bundled FIRST morphology classifier (ResNet-18 layout at half width, Table 6
# schedule: Adam 1e-3, batch 128, 200 epochs, reduce-on-plateau, weighted cross-entropy, the
# paper's augmentations) and ship it in float16 with its training record.
# Usage: scripts/train_classifier.sh [WORK_DIR]
set -euo pipefail
work=${1:-runs/classifier}
mkdir -p "$work"
radiogen classifier train --out "$work/classifier-w32.safetensors" --width 32 --epochs 200 --no-progress
radiogen classifier export "$work/classifier-w32.safetensors" \
    --out src/radiogen/weights/classifiers/first-morphology.safetensors --dtype fp16
radiogen classifier test --data first:test --out "$work/test"

#!/usr/bin/env bash
# Export a first-flux-size-cpu run as the bundled `first-flux-size` model and measure how well it obeys
# its conditions (benchmarks/condition_obedience.py; add --baseline first-flux to run check 3
# for the peak-flux-only model beside it).
# Usage: scripts/ship_first_flux_size_cpu.sh [RUN_DIR] [WORK_DIR] [N]
set -euo pipefail
run=${1:-runs/first-flux-size-cpu}
work=${2:-runs/first-flux-size-eval}
n=${3:-100}
mkdir -p "$work"
radiogen models export "$run" --out src/radiogen/weights/first-flux-size.safetensors --dtype bf16
python benchmarks/condition_obedience.py --model first-flux-size --store runs/mirabest-flux-size.h5 \
    --n "$n" --out "$work/obedience"

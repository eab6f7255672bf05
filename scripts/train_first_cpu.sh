#!/usr/bin/env bash
# Train the FIRST class-conditioned CPU model (preset first-cpu) as shipped; resumable.
# Usage: scripts/train_first_cpu.sh [RUN_DIR]   (re-run the same command to resume)
set -euo pipefail
run=${1:-runs/first-cpu}
if [ -f "$run/checkpoints/latest.json" ]; then resume=--resume; else resume=; fi
radiogen train --preset first-cpu --out "$run" $resume

#!/usr/bin/env bash
# Train the FIRST flux-conditioned CPU model (preset first-flux-cpu) as shipped; resumable.
# Usage: scripts/train_first_flux_cpu.sh [FITS_DIR] [RUN_DIR]   (re-run the same command to resume)
# FITS_DIR: the MiraBest FIRST cut-outs in Jy/beam (github.com/fmporter/MiraBest, folder FITS/).
set -euo pipefail
fits=${1:-../shared/data/mirabest-fits}
run=${2:-runs/first-flux-cpu}
store=runs/mirabest-flux.h5
# 80x80 central cut-outs, Table 1 selection cuts, min-max scaling, Box-Cox of the peak flux;
# FIRST headers carry no beam or frequency, so they are given here (5" beam, 1.4 GHz)
if [ ! -f "$store" ]; then
    radiogen data cutouts --fits-dir "$fits" --beam 5 --frequency 1.4e9 --out "$store" --no-progress
fi
if [ -f "$run/checkpoints/latest.json" ]; then resume=--resume; else resume=; fi
radiogen train --preset first-flux-cpu --data "$store" --out "$run" $resume

#!/usr/bin/env bash
# Train the FIRST model conditioned on peak flux and major axis (preset first-flux-size-cpu) as
# shipped: the MiraBest store with sizes measured from the images, then the model, started
# from the bundled first-flux weights; resumable (re-run the same command). The shipped model
# started from the first-flux of 2026-11-27, trained on the linear pixel range; the bundled
# first-flux since 2026-12-07 evening was trained last on the asinh-stretched range (a = 0.2), so
# a run started from it now begins on another range (`radiogen train` warns; add
# `--set data.stretch=0.2` below to train on its range).
# Usage: scripts/train_first_flux_size_cpu.sh [FITS_DIR] [RUN_DIR] [MINUTES]
set -euo pipefail
fits=${1:-../shared/data/mirabest-fits}
run=${2:-runs/first-flux-size-cpu}
minutes=${3:-100}
mkdir -p runs
flux_store=runs/mirabest-flux.h5
store=runs/mirabest-flux-size.h5
# 80x80 central cut-outs, Table 1 selection cuts, min-max scaling (FIRST: 5" beam, 1.4 GHz)
if [ ! -f "$flux_store" ]; then
    radiogen data cutouts --fits-dir "$fits" --beam 5 --frequency 1.4e9 --out "$flux_store" --no-progress
fi
# observed major axis (FWHM) from second moments over the islands of emission; the
# conditions: Box-Cox peak flux (Eq. 12) and log major axis, both standardised
if [ ! -f "$store" ]; then
    radiogen data conditions "$flux_store" --measure moments --conditions peak_flux major_axis \
        --out "$store" --no-progress
fi
if [ -f "$run/checkpoints/latest.json" ]; then resume=--resume; else resume=; fi
radiogen train --preset first-flux-size-cpu --data "$store" --out "$run" $resume \
    --max-minutes "$minutes" --no-progress

#!/usr/bin/env bash
# Export, sample and evaluate a first-flux-cpu run as the bundled `first-flux` model: by default
# the fine-tuned run of scripts/tune_first_flux_cpu.sh (scripts/train_first_flux_cpu.sh, then that).
# Usage: scripts/ship_first_flux_cpu.sh [RUN_DIR] [WORK_DIR]
set -euo pipefail
run=${1:-runs/first-flux-tuned}
work=${2:-runs/first-flux-tuned-eval}
store=runs/mirabest-flux.h5
mkdir -p "$work"
# EMA weights in bfloat16 (read back as float32), with config, Box-Cox and beam inside
if [ -d "$run" ]; then
    radiogen models export "$run" --out src/radiogen/weights/first-flux.safetensors --dtype bf16
else
    echo "no run folder $run: evaluating the bundled first-flux weights as they are"
fi
# as many images as the real set, peak fluxes drawn from the training histogram (Section 6.1)
n_real=$(python -c "import h5py, sys; print(len(h5py.File(sys.argv[1])['images']))" "$store")
radiogen sample --model first-flux -n "$n_real" \
    --precision bf16 --out "$work/samples" --h5 --no-progress
# pixel / mean / std / PyBDSF distributions and Δ+ against the real cut-outs, memorisation
radiogen evaluate --real "$store" --generated "$work/samples/samples.h5" --no-classifier \
    --pybdsf-limit 300 --out "$work/report" --no-progress
# radio Fréchet distance (the bundled classifier's features) to the real cut-outs
radiogen evaluate --real "$store" --generated "$work/samples/samples.h5" --no-pybdsf \
    --no-memorisation --out "$work/report-rfd" --no-progress

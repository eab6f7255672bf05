#!/usr/bin/env bash
# Ship a point of the first-flux long run (scripts/train_first_flux_long_cpu.sh) as the bundled
# `first-flux` model, after the issue-13 flux protocol: rebuild the post-hoc EMA of length
# SIGMA_REL as of STEP, score it beside the weights bundled now (N images per seed set, seed
# sets 0 and 1 000 000, default sampler, PyBDSF on the first 100 of each set, against the 74
# cut-outs the run held out; benchmarks/flux_realism.py); with SHIP=1, once those figures show it
# ahead, write it over the bundled file (bfloat16; config, Box-Cox and beam inside).
# Usage: [SHIP=1] [SHIPPED_FROM=DIR] [SAMPLING="--sampler S --steps N"] [PYBDSF=M] scripts/ship_first_flux_long_cpu.sh RUN_DIR STEP [SIGMA_REL] [WORK_DIR] [N]
# PYBDSF: images per set that PyBDSF fits (default 100, the protocol; 0 gives the quick score of
# a training point, the four W1 ratios and the zero fraction in ~6 min on 2 cores, not a result to
# ship on: the model-flux and A50% ratios are part of the ship criterion).
# SAMPLING: `radiogen models export` options recorded in the candidate's file as its default
# sampler (the keep-noise run: "--sampler dpmpp-2m --steps 15"), so that the protocol draws it,
# and a shipped file samples, as `radiogen sample` does by default.
# SHIPPED_FROM: a flux_realism.py folder of the same protocol (same N) that already holds the
# bundled model's images (shipped-seed0.npz, shipped-seed1000000.npz), which are then scored,
# not drawn again; a run that was cut off continues where it stopped (--reuse).
# Run it from the folder the training script ran in: the store is runs/mirabest-flux.h5 there.
set -euo pipefail
run=$1
step=$2
sigma_rel=${3:-0.05}
work=${4:-runs/ship-first-flux-long-$step}
n=${5:-150}
store=runs/mirabest-flux.h5
[ -f "$store" ] || { echo "no $store here: run from the folder of the training run" >&2; exit 1; }
if [ "${SHIP:-0}" = 1 ] && [ "${PYBDSF:-100}" -le 0 ]; then
    echo "SHIP=1 needs the PyBDSF figures: leave PYBDSF unset (100) or above 0" >&2; exit 1
fi
read -ra sampling <<< "${SAMPLING:-}"
candidate=$("$(dirname "$0")"/posthoc_candidate.sh "$run" "$step" "$sigma_rel" "$work" first-flux \
    "${sampling[@]}")
mkdir -p "$work/protocol"
if [ -n "${SHIPPED_FROM:-}" ]; then
    cp -n "$SHIPPED_FROM"/shipped-seed0.npz "$SHIPPED_FROM"/shipped-seed1000000.npz "$work/protocol/" || true
fi
python "$(dirname "$0")/../benchmarks/flux_realism.py" --store "$store" --n "$n" \
    --seed-sets 0 1000000 --pybdsf "${PYBDSF:-100}" --reuse \
    --setting shipped:model=first-flux --setting "long$step:model=$candidate" \
    --out "$work/protocol"
if [ "${SHIP:-0}" = 1 ]; then
    cp "$candidate" "$(dirname "$0")/../src/radiogen/weights/first-flux.safetensors"
    echo "copied $candidate to src/radiogen/weights/first-flux.safetensors; update first-flux.md"
fi

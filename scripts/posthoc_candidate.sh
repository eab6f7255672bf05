#!/usr/bin/env bash
# The shipping candidate of a long run: the post-hoc EMA of length SIGMA_REL rebuilt as of STEP
# (`radiogen models ema`), exported as it would ship (bfloat16, config inside) to
# WORK_DIR/NAME-STEP-SIGMA_REL.safetensors, whose path is printed on stdout. Shared by
# scripts/ship_first_long_cpu.sh and scripts/ship_first_flux_long_cpu.sh; further arguments go
# to `radiogen models export` (e.g. --class-guidance Bent=0.3).
# Usage: scripts/posthoc_candidate.sh RUN_DIR STEP SIGMA_REL WORK_DIR NAME [EXPORT_OPTION ...]
set -euo pipefail
run=$1
step=$2
sigma_rel=$3
work=$4
name=$5
shift 5
mkdir -p "$work"
radiogen models ema "$run" --sigma-rel "$sigma_rel" --step "$step" --out "$work/ema" >&2
ema=$work/ema/ema-$(printf '%.3f' "$sigma_rel").safetensors
candidate=$work/$name-$step-$(printf '%.3f' "$sigma_rel").safetensors
[ -f "$candidate" ] || radiogen models export "$ema" --out "$candidate" --dtype bf16 "$@" >&2
echo "$candidate"

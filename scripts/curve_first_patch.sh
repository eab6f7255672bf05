#!/usr/bin/env bash
# The training curve of the long first-patch-cpu run: at every power-EMA snapshot step, the
# EMA of length SIGMA_REL rebuilt post hoc (radiogen models ema), sampled with the default
# sampler (N per class, one seed set) and scored by benchmarks/class_realism.py against the
# run's held-out validation images, with CLASSIFIER (not the bundled one, which reports the
# final result). Rows already scored are kept; prints the curve.
# Usage: scripts/curve_first_patch.sh RUN CLASSIFIER [OUT] [N] [SIGMA_REL]
set -euo pipefail
run=$1
classifier=$2
out=${3:-$run/curve}
n=${4:-50}
sigma=${5:-0.1}
mkdir -p "$out"
steps=$(ls "$run/ema-snapshots" | sed -n 's/power-[0-9.]*-step-0*\([0-9]*\)\.safetensors/\1/p' | sort -n | uniq)
for step in $steps; do
    [ -f "$out/$step/results.json" ] && continue
    radiogen models ema "$run" --sigma-rel "$sigma" --step "$step" --out "$out/$step"
    python benchmarks/class_realism.py --n "$n" --seed-sets 0 --classifier "$classifier" \
        --reference "run-valid:$run" --out "$out/$step" \
        --setting "step$step:model=$out/$step/ema-$(printf %.3f "$sigma").safetensors"
done
python - "$out" "$run" <<'PY'
import json, sys
from pathlib import Path
batch = json.loads((Path(sys.argv[2]) / "config.json").read_text())["training"]["batch_size"]
rows = []
for f in sorted(Path(sys.argv[1]).glob("*/results.json"), key=lambda p: int(p.parent.name)):
    r = json.loads(f.read_text())["results"][0]
    s = next(iter(r["scores"].values()))
    rows.append((int(f.parent.name), s["accuracy"], *s["recall"], s["rfd"], s["w1_mean"], s["w1_std"]))
print("step   images   acc    FRI   FRII  Comp  Bent    RFD   W1mean  W1std")
for step, acc, a, b, c, d, rfd, wm, ws in rows:
    print(f"{step:5d} {batch * step:8d}  {acc:.3f}  {a:.2f}  {b:.2f}  {c:.2f}  {d:.2f}  {rfd:6.1f}  {wm:.4f}  {ws:.4f}")
PY

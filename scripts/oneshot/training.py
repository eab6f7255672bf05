"""Steps 4 and 5: train a FIRST class model through ``radiogen.api.train`` until a wall-clock
deadline, sized by arithmetic from the measured throughput, then export its weights in bf16.

The sizing rule (:func:`plan`), with T the seconds left for the training loop:

1. candidates, narrowest first: first-patch-cpu (issue 13: 2×2 patches, four levels, 7.5 M
   parameters) and a version of it widened at the two high-resolution levels (40 and 80 instead
   of 32 and 64 channels; 120 instead of 128 at the two lowest, to stay under the file limit);
   a candidate must have at most MAX_PARAMS parameters, so that its bf16 file fits in 16 MiB;
2. each candidate's training rate r (images/s) is measured by the throughput step: a short
   ``api.train`` run at batch 512, EMA, data, logging and all (:func:`probe`); it will see
   r · T images;
3. the widest candidate that still sees the paper's 40 000 × 128 = 5.12 M images (Table 4) is
   trained; if none does, the narrowest (it sees the most);
4. batch 512 if that gives at least MIN_STEPS optimiser steps, else 256; lr 1e-3 · √(B / 512)
   (EDM's CIFAR-10 setting, batch 512 and lr 1e-3; first-patch-cpu's own 3e-4 at batch 32,
   scaled by √16 as Adam's gradient noise suggests, gives about the same), warm-up over 5% of
   the expected steps (EDM ramps over 5% of its images);
5. the deadline, not ``iterations``, ends the run (iterations = 3× the expected steps).
"""

from __future__ import annotations

import csv
import math
import shutil
import time

from oneshot.common import Step

#: Architectures as overrides of BASE, narrowest first.
BASE, CANDIDATES = "first-patch-cpu", {
    "patch-32": [],
    "patch-40": ["model.channels=40", "model.channel_mult=[1, 2, 3, 3]"],
}
SMOKE_BASE, SMOKE_CANDIDATES = "tiny", {"tiny-8": [], "tiny-12": ["model.channels=12"]}
#: 16 MiB per file, 2 bytes per bf16 parameter, 64 KiB left for the safetensors header.
MAX_PARAMS = (16 * 2**20 - 64 * 2**10) // 2
TARGET_IMAGES = 40_000 * 128
BATCH, SMALL_BATCH, MIN_STEPS, BASE_LR = 512, 256, 2000, 1e-3
SMOKE_BATCH = 8
EMA_PROFILES = (0.05, 0.10)
#: Images/s assumed when the throughput step measured nothing (a guess, said so in the report).
FALLBACK_RATE = 3000.0
#: Seconds for api.train's setup (data, model) and its final checkpoint when no probe measured them.
FALLBACK_OVERHEAD_S = 20.0
#: --smoke trains the tiny model for this many seconds at most (plumbing, not a model).
SMOKE_LOOP_S = 4.0


def candidates(smoke: bool) -> dict:
    return SMOKE_CANDIDATES if smoke else CANDIDATES


def precision(smoke: bool) -> str:
    """bf16 autocast; fp32 for --smoke (on a CPU, bf16 runs the tiny model 7x slower)."""
    return "fp32" if smoke else "bf16"


def config(name: str, batch: int, smoke: bool, extra=()):
    """The training config of candidate ``name`` at batch ``batch``, bf16, power-EMA profiles on."""
    from radiogen.config import load_preset
    profiles = ", ".join(str(s) for s in EMA_PROFILES)
    return load_preset(SMOKE_BASE if smoke else BASE).override(
        candidates(smoke)[name] + [f"training.batch_size={batch}", f"training.precision={precision(smoke)}",
                                   f"training.ema_profiles=[{profiles}]", *extra])


def parameters(cfg) -> int:
    from radiogen.models import Denoiser, count_parameters
    return count_parameters(Denoiser(cfg.model))


def last_metrics(run_dir) -> dict:
    """The last row of a run's metrics.csv (numbers as floats), {} if there is none."""
    try:
        with open(run_dir / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return {}
    return {k: float(v) for k, v in rows[-1].items() if v not in ("", None)} if rows else {}


def probe(name: str, run_dir, device: str, smoke: bool, seconds: float) -> dict:
    """Training rate of candidate ``name`` in ``api.train`` itself: a short run (at most
    ``seconds`` of steps) whose last logging window (after cuDNN's autotuning) gives images/s;
    its wall time less its loop time is the setup and final checkpoint overhead."""
    from radiogen import api
    batch = SMOKE_BATCH if smoke else BATCH
    steps, every = (3, 1) if smoke else (40, 10)
    cfg = config(name, batch, smoke, [f"training.iterations={steps}", f"training.log_every={every}",
                                      "training.val_every=1000000", "training.checkpoint_every=1000000"])
    start = time.perf_counter()
    api.train(cfg, run_dir, device=device, progress=False, max_minutes=seconds / 60)
    wall, last = time.perf_counter() - start, last_metrics(run_dir)
    return {"batch": batch, "steps": int(last["step"]), "img_s": last["images_per_s"],
            "overhead_s": wall - last["elapsed_s"], "params": parameters(cfg)}


def plan(probes: dict, seconds: float, smoke: bool) -> dict:
    """The sizing rule of this module's docstring, from the probes' images/s and the loop's
    ``seconds``; returns the choice with the arithmetic behind it."""
    rows = []
    for name in candidates(smoke):
        params = probes.get(name, {}).get("params") or parameters(config(name, BATCH, smoke))
        rate = probes.get(name, {}).get("img_s")
        rows.append({"name": name, "params": params, "img_s": rate, "fits_file": params <= MAX_PARAMS,
                     "images": None if rate is None else rate * seconds})
    allowed = [r for r in rows if r["fits_file"]] or rows[:1]
    chosen = allowed[0]
    for row in allowed:
        if row["images"] is not None and row["images"] >= TARGET_IMAGES:
            chosen = row
    rate = chosen["img_s"] or FALLBACK_RATE
    images = rate * seconds
    batch = SMOKE_BATCH if smoke else (BATCH if images / BATCH >= MIN_STEPS else SMALL_BATCH)
    steps = max(1, int(images // batch))
    lr = BASE_LR * math.sqrt(batch / BATCH)
    return {"rule": __doc__.split("The sizing rule")[1].strip(), "loop_seconds": seconds,
            "candidates": rows, "chosen": chosen["name"], "measured_rate": chosen["img_s"] is not None,
            "img_s": rate, "expected_images": images, "batch": batch, "expected_steps": steps,
            "lr": lr, "lr_warmup": max(10, round(0.05 * steps)), "iterations": 3 * steps,
            "target_images": TARGET_IMAGES}


def _schedule(p: dict) -> list[str]:
    """Overrides for the planned run: logging, validation, checkpoints and EMA snapshots spread
    over the expected steps (a checkpoint every sixth of the run, so a kill loses little)."""
    n = p["expected_steps"]
    return [f"training.lr={p['lr']}", f"training.lr_warmup={p['lr_warmup']}",
            f"training.iterations={p['iterations']}", f"training.log_every={max(5, n // 200)}",
            f"training.val_every={max(20, n // 10)}", f"training.checkpoint_every={max(20, n // 6)}",
            f"training.ema_snapshot_every={max(10, n // 16)}", "training.keep_checkpoints=1"]


def run_train(step: Step) -> None:
    import torch

    from radiogen import api
    torch.backends.cudnn.benchmark = True            # fixed shapes: let cuDNN pick its kernels
    device = "cuda" if torch.cuda.is_available() else "cpu"
    probes = {name: p for name, p in step.previous("throughput").get("probes", {}).items()
              if "img_s" in p}                      # failed probes hold only their traceback
    overhead = max([p["overhead_s"] for p in probes.values()], default=FALLBACK_OVERHEAD_S)
    # the loop's deadline starts after api.train's setup and is followed by its last checkpoint
    loop_seconds = step.left() - 1.5 * overhead - 2
    if step.smoke:
        loop_seconds = min(loop_seconds, SMOKE_LOOP_S)
    if loop_seconds <= 0:
        raise RuntimeError(f"no time left to train ({step.left():.0f} s, overhead {overhead:.0f} s)")
    p = plan(probes, loop_seconds, step.smoke)
    step.result.update(plan=p, device=device)
    step.save()
    cfg = config(p["chosen"], p["batch"], step.smoke, _schedule(p))
    start = time.perf_counter()
    api.train(cfg, step.work / "run", device=device, progress=False, max_minutes=loop_seconds / 60)
    last = last_metrics(step.work / "run")
    step.result.update(seconds=time.perf_counter() - start, final=last, config=cfg.to_dict(),
                       images_seen=last.get("images"), images_expected=p["expected_images"])


def run_export(step: Step) -> None:
    """metrics.csv, the EMA weights and the post-hoc EMA reconstructions, each one bf16 file;
    a failed reconstruction does not stop the next; fails if a file would not come back."""
    import torch

    from radiogen import api
    from radiogen.atomic import atomic_path
    from radiogen.training.checkpoint import latest_checkpoint, save_model_file
    from radiogen.training.posthoc_ema import reconstruct
    run, r = step.work / "run", step.result
    if latest_checkpoint(run) is None:
        raise FileNotFoundError(f"{run}: no checkpoint, so no weights to export")
    with atomic_path(step.out / "metrics.csv") as tmp:
        shutil.copyfile(run / "metrics.csv", tmp)
    files, errors = [api.export_model(run, step.out / "model.safetensors", dtype="bf16")], {}
    for sigma_rel in sorted(EMA_PROFILES, reverse=True):
        try:
            state, cfg, meta = reconstruct(run, sigma_rel)
            files.append(save_model_file(
                step.out / f"ema-{sigma_rel:.3f}.safetensors", state, cfg,
                {**meta, "weights": f"post-hoc EMA, sigma_rel {sigma_rel}", "stored_dtype": "bf16"},
                dtype=torch.bfloat16))
        except Exception as err:
            errors[sigma_rel] = f"{type(err).__name__}: {err}"
        r.update(files={f.name: f.stat().st_size for f in files}, errors=errors)
        step.save()
    too_big = [name for name, size in r["files"].items() if size > 16 * 2**20]
    if too_big or errors:
        raise RuntimeError(f"over 16 MiB (will not come back): {too_big}; failed: {errors}")

"""Step 3, throughput: first the training rate of each candidate architecture inside
``api.train`` itself (what the training step's sizing rule needs), then, for the presets
first-patch-cpu, first-paper and first-cpu in bf16 autocast and channels-last, training
images/s and sampling network passes/s at growing batch sizes until the rate stops growing (or
memory runs out), with GFLOP/s and the fraction of the card's bf16 dense peak, and the paper's
sampling figure (1000 images, 25 Heun steps with guidance: 98 passes each, 197 s on one A100)
converted to this card.

FLOPs are torch's FlopCounterMode counts (convolutions, matrix products): per image, the
forward pass for sampling, forward and backward of the Eq. (22) loss for training."""

from __future__ import annotations

import gc
import sys
import time
import traceback
from pathlib import Path

from oneshot.common import Step, bf16_peak
from oneshot.training import candidates, precision, probe

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

#: The training architecture first, then the paper's (its sampling figure), first-cpu last.
PRESETS, SMOKE_PRESETS = ("first-patch-cpu", "first-paper", "first-cpu"), ("tiny",)
#: Batch sizes tried, in images (a guided sampling batch runs twice as many through the network).
BATCHES = {("first-paper", "train"): (64, 128, 256), ("first-paper", "sample"): (64, 128, 256, 512)}
SMALL_MODEL_BATCHES, SMOKE_BATCHES = (256, 512, 1024, 2048), (2, 4)
#: A larger batch must be this much faster per image to count as filling the GPU better.
GAIN = 1.05
#: Heun with N = 3 (5 evaluations, 10 passes per image with guidance at every σ, as the paper).
HEUN_STEPS, GUIDANCE = 3, 0.75
PAPER = {"images": 1000, "passes_per_image": 98, "seconds": 197.0, "gpu": "one A100"}
#: Probes may use this share of the step; a measurement starts only with MIN_LEFT_S left.
PROBE_SHARE, MIN_LEFT_S = 0.35, 6.0


def train_flops_per_image(net, device) -> float:
    """FLOPs of forward and backward of the loss for one image (counted at batch 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from radiogen.diffusion.loss import EDMLoss
    cfg = net.cfg
    x = torch.rand(2, cfg.in_channels, cfg.image_size, cfg.image_size, device=device)
    ctx = torch.eye(cfg.context_dim, device=device)[:2] if cfg.context_dim else None
    with FlopCounterMode(display=False) as counter:
        EDMLoss()(net, x, ctx).mean().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2


def seconds_per_call(fn, device, min_seconds: float) -> float:
    """Time of one call after two warm-up calls (cuDNN autotuning), over at least 3 calls or
    ``min_seconds``; ``min_seconds`` 0 (--smoke): one call after one warm-up."""
    from _bench import timed
    if min_seconds == 0:
        return timed(fn, device, repeats=1, warmup=1)
    once = timed(fn, device, repeats=1, warmup=2)
    return timed(fn, device, repeats=max(3, min(30, int(min_seconds / max(once, 1e-6)))), warmup=0)


def train_rate(net, batch: int, device, layout, min_seconds: float, amp: str = "bf16") -> float:
    """Training images/s: Eq. (22) loss, backward and an Adam step, in autocast ``amp``."""
    import torch

    from _bench import autocast
    from radiogen.diffusion.loss import EDMLoss
    cfg, loss_fn = net.cfg, EDMLoss()
    net.train().to(memory_format=layout)
    opt = torch.optim.Adam(net.parameters(), lr=1e-6)
    x = (torch.rand(batch, cfg.in_channels, cfg.image_size, cfg.image_size, device=device) * 2 - 1
         ).contiguous(memory_format=layout)
    ctx = torch.eye(cfg.context_dim, device=device)[torch.arange(batch) % cfg.context_dim]

    def step():
        with autocast(device, amp):
            loss = loss_fn(net, x, ctx).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batch / seconds_per_call(step, device, min_seconds)


def sample_rate(net, batch: int, device, layout, min_seconds: float, amp: str = "bf16") -> float:
    """Sampling network passes per second (image-passes): Heun with guidance at every σ."""
    import torch

    from _bench import autocast
    from radiogen.diffusion import SAMPLERS, GuidedDenoiser, evaluations, karras_sigmas
    cfg = net.cfg
    net.eval().to(memory_format=layout)
    x0 = torch.randn(batch, cfg.in_channels, cfg.image_size, cfg.image_size, device=device) * 80
    ctx = torch.eye(cfg.context_dim, device=device)[torch.arange(batch) % cfg.context_dim]
    sigmas = karras_sigmas(HEUN_STEPS).to(device)

    def run():
        with torch.inference_mode(), autocast(device, amp):
            SAMPLERS["heun"](GuidedDenoiser(net, ctx, GUIDANCE), x0.contiguous(memory_format=layout), sigmas)
    passes = 2 * evaluations("heun", HEUN_STEPS)
    return batch * passes / seconds_per_call(run, device, min_seconds)


def _free(device) -> None:
    import torch
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def ladder(measure, batches, device, step: Step, rows: list) -> None:
    """``measure(batch)`` at growing batches until the rate grows by less than GAIN, memory
    runs out or time does; one row per batch appended to ``rows`` (rate, or why it stopped)."""
    import torch
    for batch in batches:
        if step.left() < MIN_LEFT_S:
            rows.append({"batch": batch, "stopped": "out of time"})
            break
        _free(device)
        try:
            rate = measure(batch)
        except torch.cuda.OutOfMemoryError:
            rows.append({"batch": batch, "stopped": "out of memory"})
            _free(device)
            break
        except RuntimeError as err:          # e.g. a kernel that refuses so large a tensor
            rows.append({"batch": batch, "stopped": f"{type(err).__name__}: {str(err)[:300]}"})
            _free(device)
            break
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
        rows.append({"batch": batch, "rate": rate, "memory_gib": peak})
        step.save()
        rates = [r["rate"] for r in rows if "rate" in r]
        if len(rates) > 1 and rates[-1] < GAIN * max(rates[:-1]):
            break


def _best(rows):
    measured = [r for r in rows if "rate" in r]
    return max(measured, key=lambda r: r["rate"]) if measured else None


def preset_row(row: dict, device, step: Step, peak_tflops, min_seconds: float) -> None:
    """Into ``row`` (saved as it fills): parameters, FLOPs, the training and sampling ladders
    (channels-last) and the best of each in TFLOP/s and fraction of peak; the training rate in
    NCHW (the training loop's layout) at the best batch."""
    import torch

    from _bench import build, flops_per_image
    from radiogen.models import count_parameters
    preset = row["preset"]
    net = build(preset, device)
    row.update(params=count_parameters(net), gflop_forward=flops_per_image(net) / 1e9,
               gflop_train=train_flops_per_image(net, device) / 1e9)
    last = torch.channels_last
    for kind, measure, gflop in (("train", train_rate, row["gflop_train"]),
                                 ("sample", sample_rate, row["gflop_forward"])):
        batches = SMOKE_BATCHES if step.smoke else BATCHES.get((preset, kind), SMALL_MODEL_BATCHES)
        rows = []
        row[kind] = {"ladder": rows}
        ladder(lambda b: measure(net, b, device, last, min_seconds, precision(step.smoke)),
               batches, device, step, rows)
        best = row[kind]["best"] = _best(rows)
        if best:
            tflops = best["rate"] * gflop / 1e3
            row[kind].update(tflops=tflops, fraction_of_peak=tflops / peak_tflops if peak_tflops else None)
        step.save()
    if row["train"]["best"] and step.left() > MIN_LEFT_S:
        row["train"]["nchw_rate_at_best_batch"] = train_rate(
            net, row["train"]["best"]["batch"], device, torch.contiguous_format, min_seconds,
            precision(step.smoke))
    if row["sample"]["best"]:
        seconds = PAPER["images"] * PAPER["passes_per_image"] / row["sample"]["best"]["rate"]
        row["sample"]["paper_figure_seconds"] = seconds
        row["sample"]["speedup_over_paper_a100"] = PAPER["seconds"] / seconds
    del net
    _free(device)


def _recorded(fn, *args) -> dict:
    """``fn(*args)``, or its traceback: one failed measurement does not stop the others."""
    try:
        return fn(*args)
    except Exception:
        return {"error": traceback.format_exc()[-3000:]}


def run(step: Step) -> None:
    import torch
    torch.backends.cudnn.benchmark = True            # fixed shapes: let cuDNN pick its kernels
    device = "cuda" if torch.cuda.is_available() else "cpu"
    peak, source = bf16_peak(torch.cuda.get_device_name() if device == "cuda" else None)
    min_seconds = 0.0 if step.smoke else 0.5
    r = step.result
    r.update(device=device, precision=precision(step.smoke), layout="channels_last", peak_tflops=peak,
             peak_source=source, paper=PAPER, heun_steps=HEUN_STEPS, guidance=GUIDANCE,
             probes={}, presets=[])
    probe_until = time.time() + PROBE_SHARE * step.left()
    for name in candidates(step.smoke):
        seconds = probe_until - time.time()
        if seconds < MIN_LEFT_S / 2:
            r["probes_skipped"] = f"{name} and after: out of the probes' time"
            break
        r["probes"][name] = _recorded(probe, name, step.work / f"probe-{name}", device,
                                      step.smoke, seconds)
        print(f"probe {name}: {r['probes'][name].get('img_s', 'failed')} images/s in api.train",
              flush=True)
        step.save()
        _free(device)
    for preset in SMOKE_PRESETS if step.smoke else PRESETS:
        if step.left() < MIN_LEFT_S:
            r.setdefault("presets_skipped", []).append(preset)
            continue
        row = {"preset": preset}
        r["presets"].append(row)
        row.update(_recorded(preset_row, row, device, step, peak, min_seconds) or {})
        print(f"{preset}: train {row.get('train', {}).get('best')}, "
              f"sample {row.get('sample', {}).get('best')}", flush=True)
        step.save()
    failed = [n for n, p in r["probes"].items() if "error" in p] + [
        p["preset"] for p in r["presets"] if "error" in p]
    if failed:
        raise RuntimeError(f"measurements failed: {', '.join(failed)} (tracebacks in the result)")

"""Shared pieces of the benchmark scripts: model construction, FLOP counting, table printing."""

from __future__ import annotations

import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from radiogen.config import ModelConfig, load_preset
from radiogen.models import Denoiser, count_parameters


#: Memory layouts of weights and activations, by name.
LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def model_config(preset: str) -> ModelConfig:
    return load_preset(preset).model


def build(preset: str, device) -> Denoiser:
    torch.set_flush_denormal(True)  # as radiogen's sampling and training do
    torch.manual_seed(0)
    return Denoiser(model_config(preset)).to(device)


def flops_per_image(denoiser: Denoiser) -> float:
    """Forward FLOPs of one network evaluation on one image (torch's flop counter)."""
    cfg = denoiser.cfg
    x = torch.randn(1, cfg.in_channels, cfg.image_size, cfg.image_size, device=next(denoiser.parameters()).device)
    ctx = torch.zeros(1, cfg.context_dim, device=x.device) if cfg.context_dim else None
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        denoiser(x, torch.ones(1, device=x.device), ctx)
    return float(counter.get_total_flops())


def autocast(device, precision):
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int, warmup: int = 1) -> float:
    """Seconds per call of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - t) / repeats


def machine(device) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name()
    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {torch.get_num_threads()} threads"


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r[c]).rjust(widths[c]) for c in columns))


def describe(denoiser) -> str:
    return f"{count_parameters(denoiser) / 1e6:.2f} M params"


#: Keys of a ``--setting`` of the realism protocols, by type; the rest are strings or ints.
FLOATS = ("guidance", "autoguidance", "classifier_scale", "background_clip", "churn")


def parse_setting(text: str) -> tuple[str, dict]:
    """``label:key=value,key=value`` → (label, api.sample keywords and ``model``)."""
    label, _, rest = text.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key in FLOATS:
            options[key] = float(value)
        elif key == "steps":
            options[key] = int(value)
        elif key == "interval":
            lo, hi = value.split("/")
            options["guidance_interval"] = (float(lo), float(hi))
        elif key in ("model", "sampler", "guide_model", "guide_classifier"):
            options[key] = value
        else:
            raise SystemExit(f"--setting {text!r}: unknown key {key!r}")
    if "model" not in options:
        raise SystemExit(f"--setting {text!r}: needs model=...")
    return label, options

"""Mixed precision: which autocast dtype a precision setting means on a device (training and
sampling share it; kept apart from the training loop so that sampling imports little)."""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["cpu_samples_faster_in_bf16", "cpu_supports_bf16", "resolve_precision"]


def _cpu_flags() -> set[str]:
    """The x86 feature flags of this CPU (empty where /proc/cpuinfo is missing)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags")
            for flag in line.partition(":")[2].split()}


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX on x86)."""
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_samples_faster_in_bf16() -> bool:
    """Whether bf16 autocast samples radiogen's models faster than fp32 on this CPU: where it has
    native bf16. Measured on the two 2-core machines of the project (README, "Performance"): an
    AMD Zen 4 (AVX512-BF16) 1.55–1.95× the fp32 image-evaluations/s at batch 8, an Intel Xeon
    with AMX 1.6–1.7× at batches 8 and 16 with torch 2.13 (an older measurement on a Xeon had
    fp32 ahead, 0.8–0.95×); other CPUs sample in fp32. Today the same CPUs as
    :func:`cpu_supports_bf16` (training's rule), kept apart because sampling speed is measured
    apart and the tests pin this one to fp32."""
    return cpu_supports_bf16()


def resolve_precision(precision: str, device: torch.device,
                      job: str = "train") -> torch.dtype | None:
    """The autocast dtype for ``precision`` ("auto", "fp32", "bf16", "fp16"); None for fp32.
    ``auto`` is bf16 (fp16 on GPUs without bf16) on a GPU; on a CPU, for ``job="train"`` bf16
    where the CPU has native bf16, for ``job="sample"`` bf16 where it samples faster
    (:func:`cpu_samples_faster_in_bf16`; at present the same CPUs)."""
    if job not in ("train", "sample"):
        raise ValueError(f"job must be train or sample, not {job!r}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("fp16 autocast needs a GPU; use bf16 or fp32 on the CPU")
        return torch.float16
    if precision != "auto":
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, not {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    faster = cpu_samples_faster_in_bf16() if job == "sample" else cpu_supports_bf16()
    return torch.bfloat16 if faster else None

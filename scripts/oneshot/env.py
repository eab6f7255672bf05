"""Step 1, the environment: the card, its memory and peak, torch, CUDA and cuDNN versions, bf16
support, the packages there are, and proof that astropy and bdsf cannot be imported."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
from importlib import metadata

from oneshot.common import Step, bf16_peak

PACKAGES = ("torch", "numpy", "scipy", "h5py", "safetensors", "pillow", "matplotlib", "tqdm",
            "tensorboard", "pytest", "astropy", "bdsf")
BLOCKED = ("astropy", "bdsf")


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False


def _nvidia_smi() -> str | None:
    query = "name,driver_version,power.limit,clocks.max.sm,memory.total"
    try:
        done = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv"],
                              capture_output=True, text=True, timeout=15)
        return done.stdout.strip() or done.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"nvidia-smi: {err}"


def run(step: Step) -> None:
    import torch

    from radiogen.precision import cpu_supports_bf16

    r = step.result
    r.update(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
             cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
             cuda_available=torch.cuda.is_available(), gpus=torch.cuda.device_count(),
             cpu_count=os.cpu_count(), platform=platform.platform())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        r.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 2),
                 compute_capability=f"{props.major}.{props.minor}",
                 multiprocessors=props.multi_processor_count,
                 bf16=torch.cuda.is_bf16_supported())
        r["nvidia_smi"] = _nvidia_smi()
    else:
        r.update(gpu=None, bf16=cpu_supports_bf16())
    r["bf16_peak_tflops"], r["bf16_peak_source"] = bf16_peak(r["gpu"])
    r["packages"] = {name: _version(name) for name in PACKAGES}
    # gpu_oneshot.py puts None into sys.modules for these: importing them must fail here
    r["importable_despite_block"] = {name: _importable(name) for name in BLOCKED}
    step.save()

"""What every step of scripts/gpu_oneshot.py shares: its context (deadline, folders, result),
JSON writing, and the card's bf16 peak."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from radiogen.atomic import atomic_path

#: Dense bf16 tensor-core peaks in TFLOP/s from NVIDIA's data sheets, matched against the
#: device name in this order (the H100 PCIe and NVL run lower clocks than the SXM part; the
#: H200 has the H100 SXM's compute). The paper's A100 for comparison.
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0),
                    ("H200", 989.0), ("GH200", 989.0), ("A100", 312.0))


def bf16_peak(device_name: str | None) -> tuple[float | None, str]:
    """(peak bf16 dense TFLOP/s, how it was found) for a CUDA device name."""
    for key, tflops in BF16_PEAK_TFLOPS:
        if device_name and key.lower() in device_name.lower():
            return tflops, f"NVIDIA data sheet, dense bf16, matched {key!r} in {device_name!r}"
    return None, f"unknown card {device_name!r}: no peak, no fraction of peak"


def plain(value):
    """``value`` with numpy scalars and arrays as lists and numbers, non-finite floats as None
    (strict JSON), anything else unknown as its string (paths, dtypes)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def write_json(path: Path, data) -> None:
    """``data`` as JSON at ``path``, written atomically (a kill leaves the previous version)."""
    text = json.dumps(plain(data), indent=1, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


@dataclass
class Step:
    """One step running in its own process: ``out`` holds what comes back (8 files at most),
    ``work`` the scratch space (runs, checkpoints, test folders), ``deadline`` the time.time()
    by which the step must be done (the parent kills it then). ``result`` goes into the report;
    :meth:`save` writes it at once, so that a kill keeps what was measured so far."""

    name: str
    out: Path
    work: Path
    deadline: float
    smoke: bool = False
    result: dict = field(default_factory=dict)

    def left(self) -> float:
        return self.deadline - time.time()

    @property
    def result_path(self) -> Path:
        return self.work / f"step-{self.name}.json"

    def save(self, status: str = "running", error: str | None = None) -> None:
        write_json(self.result_path, {"status": status, "result": self.result, "error": error})

    def previous(self, name: str) -> dict:
        """The result of an earlier step ({} where it failed before writing one)."""
        return read_json(self.work / f"step-{name}.json").get("result") or {}

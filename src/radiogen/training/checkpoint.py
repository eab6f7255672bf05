"""Checkpoints and model files, never pickled.

A *model file* is one safetensors file whose metadata holds the network config and what the
context means (``config`` and ``meta``, JSON): everything needed to sample. A *checkpoint* is a
folder ``checkpoints/step-NNNNNNN/`` in a run folder with ``model.safetensors`` and
``ema.safetensors`` (model files) and ``training_state.pt`` (optimizer and step, read back with
``torch.load(weights_only=True)``); ``checkpoints/latest.json`` names the newest one. Every file
and folder is written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from radiogen.atomic import atomic_dir, atomic_path
from radiogen.config import ModelConfig

__all__ = ["save_model_file", "read_model_file", "load_denoiser", "save_checkpoint", "latest_checkpoint",
           "load_training_state", "resolve_model_path"]


def save_model_file(path, state_dict: dict, model_cfg: ModelConfig, meta: dict,
                    dtype: torch.dtype | None = None) -> Path:
    """Write weights (optionally cast to ``dtype``, e.g. bfloat16) with config and meta."""
    tensors = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v)
               .detach().cpu().contiguous() for k, v in state_dict.items()}
    metadata = {"format": "radiogen-model-1",
                "config": json.dumps(dataclasses.asdict(model_cfg)),
                "meta": json.dumps(meta)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def read_model_file(path) -> tuple[dict, ModelConfig, dict]:
    """(state dict in float32, model config, meta) from a model file."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    if metadata.get("format") != "radiogen-model-1":
        raise ValueError(f"{path}: safetensors file without radiogen model metadata")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return state, ModelConfig(**json.loads(metadata["config"])), json.loads(metadata["meta"])


def load_denoiser(path, device="cpu"):
    """(frozen denoiser in eval mode on ``device``, model config, meta) from a model file."""
    from radiogen.models import Denoiser
    state, cfg, meta = read_model_file(path)
    denoiser = Denoiser(cfg)
    denoiser.load_state_dict(state)
    return denoiser.eval().requires_grad_(False).to(device), cfg, meta


def save_checkpoint(run_dir, step: int, model, ema_model, optimizer, model_cfg: ModelConfig,
                    meta: dict, extra_state: dict | None = None, keep: int = 2,
                    extra_models: dict | None = None) -> Path:
    """Write ``checkpoints/step-NNNNNNN`` and point ``latest.json`` at it; keep the newest
    ``keep`` checkpoints. ``extra_models`` maps further file names (e.g. power-EMA profiles)
    to modules saved beside the model."""
    ckpt_root = Path(run_dir) / "checkpoints"
    name = f"step-{step:07d}"
    meta = {**meta, "step": step}
    with atomic_dir(ckpt_root / name) as tmp:
        save_model_file(tmp / "model.safetensors", model.state_dict(), model_cfg, meta)
        save_model_file(tmp / "ema.safetensors", ema_model.state_dict(), model_cfg, meta)
        for file_name, module in (extra_models or {}).items():
            save_model_file(tmp / file_name, module.state_dict(), model_cfg, meta)
        torch.save({"optimizer": optimizer.state_dict(), "step": step, **(extra_state or {})},
                   tmp / "training_state.pt")
    with atomic_path(ckpt_root / "latest.json") as tmp:
        tmp.write_text(json.dumps({"step": step, "checkpoint": name}))
    old = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir() and p.name != name)
    for p in old[:max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return ckpt_root / name


def latest_checkpoint(run_dir) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    pointer = Path(run_dir) / "checkpoints" / "latest.json"
    if not pointer.is_file():
        return None
    path = pointer.parent / json.loads(pointer.read_text())["checkpoint"]
    return path if path.is_dir() else None


def load_training_state(ckpt_dir) -> dict:
    return torch.load(Path(ckpt_dir) / "training_state.pt", map_location="cpu", weights_only=True)


def resolve_model_path(path, prefer_ema: bool = True) -> Path:
    """A model file from a model file, a checkpoint folder or a run folder (its newest
    checkpoint); EMA weights unless ``prefer_ema`` is False."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint, run folder or model file")
    if (path / "checkpoints").is_dir():
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise FileNotFoundError(f"{path}: run folder without a complete checkpoint yet")
        path = ckpt
    name = "ema.safetensors" if prefer_ema else "model.safetensors"
    if not (path / name).is_file():
        raise FileNotFoundError(f"{path}: no {name} (not a radiogen checkpoint folder)")
    return path / name

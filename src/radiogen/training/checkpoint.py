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
import os
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from radiogen.atomic import atomic_dir, atomic_path, remove_temporaries
from radiogen.config import ModelConfig

__all__ = ["save_model_file", "read_model_file", "read_model_config", "load_weights",
           "load_denoiser", "save_checkpoint", "latest_checkpoint", "load_training_state",
           "resolve_model_path", "CHECKPOINT_FILES"]


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


def _model_config(path: Path, metadata: dict) -> tuple[ModelConfig, dict]:
    if metadata.get("format") != "radiogen-model-1":
        raise ValueError(f"{path}: safetensors file without radiogen model metadata "
                         "(not a radiogen model or checkpoint)")
    try:
        return ModelConfig(**json.loads(metadata["config"])), json.loads(metadata["meta"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: unreadable model config in its metadata ({err})") from None


def read_model_file(path) -> tuple[dict, ModelConfig, dict]:
    """(state dict in float32, model config, meta) from a model file."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    cfg, meta = _model_config(path, metadata)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return state, cfg, meta


def read_model_config(path) -> ModelConfig:
    """The model config of a model file, read from its metadata alone (no weights)."""
    return read_model_header(path)[0]


def read_model_header(path) -> tuple[ModelConfig, dict]:
    """(model config, meta) of a model file, read from its metadata alone (no weights)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    return _model_config(path, metadata)


def load_weights(module: torch.nn.Module, state: dict, path) -> None:
    """``module.load_state_dict(state)``, with a one-line error naming ``path`` when the
    weights belong to another architecture."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise ValueError(f"{path}: weights of another architecture than the network they "
                         f"are loaded into ({detail[:200]})") from None


def load_denoiser(path, device="cpu"):
    """(frozen denoiser in eval mode on ``device``, model config, meta) from a model file."""
    from radiogen.models import Denoiser
    state, cfg, meta = read_model_file(path)
    try:
        denoiser = Denoiser(cfg)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: its model config does not describe a network ({err})") from None
    load_weights(denoiser, state, path)
    return denoiser.eval().requires_grad_(False).to(device), cfg, meta


#: The files of a complete checkpoint folder (power-EMA profiles are optional).
CHECKPOINT_FILES = ("model.safetensors", "ema.safetensors", "training_state.pt")


def _write_checkpoint(folder: Path, step: int, model, ema_model, optimizer, model_cfg, meta,
                      extra_state, extra_models) -> None:
    folder.mkdir(exist_ok=True)
    save_model_file(folder / "model.safetensors", model.state_dict(), model_cfg, meta)
    save_model_file(folder / "ema.safetensors", ema_model.state_dict(), model_cfg, meta)
    for file_name, module in (extra_models or {}).items():
        save_model_file(folder / file_name, module.state_dict(), model_cfg, meta)
    torch.save({"optimizer": optimizer.state_dict(), "step": step, **(extra_state or {})},
               folder / "training_state.pt")


def _write_pointer(root: Path, step: int, name: str) -> None:
    with atomic_path(root / "latest.json", fsync=True) as tmp:
        tmp.write_text(json.dumps({"step": step, "checkpoint": name}))


def _step_of(folder: Path) -> int:
    return int(folder.name.removeprefix("step-"))


def _checkpoint_folders(root: Path) -> list[Path]:
    """The step folders of a run, oldest first."""
    return sorted((p for p in root.glob("step-*") if p.is_dir()
                   and p.name.removeprefix("step-").isdigit()), key=_step_of)


def _remove(folder: Path) -> None:
    """Delete a checkpoint folder: renamed to a hidden name first, so that a kill during the
    deletion never leaves a half-deleted ``step-*`` folder."""
    hidden = folder.with_name(f".{folder.name}.old")
    if hidden.exists():
        shutil.rmtree(hidden, ignore_errors=True)
    os.replace(folder, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def _prune(root: Path, step: int, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints up to ``step``; drop those beyond it (written by
    a run killed before it moved ``latest.json`` on, and superseded by this one)."""
    folders = _checkpoint_folders(root)
    older = [p for p in folders if _step_of(p) < step]
    for p in older[:max(0, len(older) - (keep - 1))] + [p for p in folders if _step_of(p) > step]:
        _remove(p)


def save_checkpoint(run_dir, step: int, model, ema_model, optimizer, model_cfg: ModelConfig,
                    meta: dict, extra_state: dict | None = None, keep: int = 2,
                    extra_models: dict | None = None) -> Path:
    """Write ``checkpoints/step-NNNNNNN`` and point ``latest.json`` at it; keep the newest
    ``keep`` checkpoints. ``extra_models`` maps further file names (e.g. power-EMA profiles)
    to modules saved beside the model.

    Safe against ``kill -9`` at any moment: the step folder appears by one rename when
    complete (its files flushed to disk first), ``latest.json`` moves on only afterwards, and
    the first checkpoint brings the ``checkpoints`` folder itself into being with its pointer,
    so a run folder either has a complete checkpoint or none. Temporaries of a killed write
    are cleared by the next one.
    """
    run_dir = Path(run_dir)
    root, name = run_dir / "checkpoints", f"step-{step:07d}"
    args = (step, model, ema_model, optimizer, model_cfg, {**meta, "step": step}, extra_state,
            extra_models)
    if not root.is_dir():
        remove_temporaries(run_dir, prefix=".checkpoints.")
        with atomic_dir(root, fsync=True) as tmp_root:
            _write_checkpoint(tmp_root / name, *args)
            _write_pointer(tmp_root, step, name)
        return root / name
    remove_temporaries(root)
    with atomic_dir(root / name, fsync=True) as tmp:
        _write_checkpoint(tmp, *args)
    _write_pointer(root, step, name)
    _prune(root, step, keep)
    return root / name


def _is_complete(folder: Path) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in CHECKPOINT_FILES)


def latest_checkpoint(run_dir) -> Path | None:
    """The newest complete checkpoint folder of a run, or None.

    ``latest.json`` names it; should the pointer be unreadable or name a folder that is gone
    (a run folder repaired by hand, an older radiogen killed mid-write), the newest complete
    step folder stands in."""
    root = Path(run_dir) / "checkpoints"
    try:
        named = root / json.loads((root / "latest.json").read_text())["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError):
        named = None
    if named is not None and _is_complete(named):
        return named
    complete = [p for p in _checkpoint_folders(root) if _is_complete(p)] if root.is_dir() else []
    return complete[-1] if complete else None


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

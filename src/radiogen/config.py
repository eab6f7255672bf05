"""Settings for the network, the training run and the data, as dataclasses.

Presets are JSON files in ``radiogen/presets/`` (``first-paper``, ``first-cpu``, ``tiny``);
any value can be overridden with dotted ``key=value`` strings, e.g. ``model.channels=32``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = ["ModelConfig", "TrainingConfig", "DataConfig", "Config", "load_preset", "list_presets"]


@dataclass
class ModelConfig:
    """The U-Net of Section 4.1 / Table 3 and the EDM preconditioning (Eq. 17–21)."""

    image_size: int = 80                        # Table 3: resolution levels (80, 40, 20)
    in_channels: int = 1
    channels: int = 128                         # Table 3: initial channels
    channel_mult: tuple[int, ...] = (1, 2, 2)   # Table 3: channel multipliers
    num_res_blocks: int | tuple[int, ...] = 2   # encoder blocks per level (decoder: one more);
                                                # one number for every level, or one per level
    patch_size: int = 1                         # 2: the image enters as 2×2 patches (space to
                                                # depth, 80×80×1 → 40×40×4), so the top level
                                                # runs at 40×40; 1: Table 3's pixel input
    attention: tuple[bool, ...] = (False, True, True)  # Table 3: attention per level
    attention_heads: int = 2                    # Table 3
    attention_head_channels: int = 32           # Table 3
    attention_kernel: int = 3                   # Section 4.1: 3×3 convs for Q, K, V and output
    norm_groups: int = 32                       # Table 3
    dropout: float = 0.1                        # Table 4
    emb_mult: int = 4                           # embedding width = emb_mult × channels
    context_dim: int = 4                        # one-hot classes (4), a scalar (1) or one value
                                                # per conditioning column; 0: none
    column_mask: bool = False                   # each context column can be given or left free
                                                # (source-property models): the context
                                                # embedding sees [z·m, m], m = 1 where given
    sigma_data: float = 0.5                     # Eq. (18)–(20)

    def __post_init__(self):
        self.channel_mult = tuple(self.channel_mult)
        self.attention = tuple(bool(a) for a in self.attention)
        if not isinstance(self.num_res_blocks, int):
            self.num_res_blocks = tuple(int(n) for n in self.num_res_blocks)
        if len(self.attention) != len(self.channel_mult):
            raise ValueError("model.attention needs one entry per level of model.channel_mult")
        if len(self.blocks_per_level) != len(self.channel_mult):
            raise ValueError("model.num_res_blocks needs one number, or one per level of "
                             "model.channel_mult")
        if self.patch_size < 1 or self.image_size % self.patch_size:
            raise ValueError(f"model.patch_size {self.patch_size} does not divide image_size "
                             f"{self.image_size}")
        top = self.image_size // self.patch_size
        if top % 2 ** (len(self.channel_mult) - 1):
            raise ValueError(f"image_size {self.image_size} / patch_size {self.patch_size} does "
                             f"not halve {len(self.channel_mult) - 1} times")
        for mult in self.channel_mult:
            if (self.channels * mult) % self.norm_groups:
                raise ValueError(f"{self.channels * mult} channels do not split into "
                                 f"{self.norm_groups} norm groups")

    @property
    def blocks_per_level(self) -> tuple[int, ...]:
        """Encoder blocks at each level (the decoder has one more)."""
        if isinstance(self.num_res_blocks, int):
            return (self.num_res_blocks,) * len(self.channel_mult)
        return self.num_res_blocks


@dataclass
class DataConfig:
    """Which images to train on and how they are balanced (Section 3)."""

    source: str = "first"                       # "first" (bundled zip) or the path of an HDF5 store
    first_splits: tuple[str, ...] = ("train", "valid")   # published FIRST splits to draw from
    balance: str = "undersample"                # "undersample", "weight" (loss weights) or "none"
    valid_fraction: float = 0.1                 # Section 4.2: 90/10 train/validation split
    limit: int = 0                              # keep at most this many images (0: all); for tests
    conditions: tuple[str, ...] = ()            # conditioning columns of a store to train on
                                                # (default: all the store's ``conditions``)
    stretch: float = 0.0                        # asinh stretch a of the denoiser's range (0:
                                                # linear, the paper's; data.transforms)

    def __post_init__(self):
        self.first_splits = tuple(self.first_splits)
        self.conditions = tuple(self.conditions)
        _check_ranges(self, "data", {"valid_fraction": (float, 0, 0.99), "limit": (int, 0, None),
                                     "stretch": (float, 0, 1)})
        if self.balance not in ("undersample", "weight", "none"):
            raise ValueError(f"data.balance must be undersample, weight or none, not {self.balance!r}")


@dataclass
class TrainingConfig:
    """The training run of Section 4.2, Eq. (22) and Table 4."""

    iterations: int = 40_000                    # Table 4 (FIRST)
    batch_size: int = 128                       # Table 4 (FIRST); global, split over ranks
    lr: float = 2e-5                            # Table 4
    lr_warmup: int = 0                          # linear warm-up steps
    ema_rate: float = 0.9999                    # Table 4
    ema_warmup: bool = True                     # rate min(β, (1+k)/(10+k)): useful for short runs
    ema_profiles: tuple[float, ...] = ()        # σ_rel of power-function EMA profiles kept for
                                                # post-hoc EMA (EDM2), e.g. [0.05, 0.10]
    ema_snapshot_every: int = 0                 # steps between profile snapshots (0: at every
                                                # checkpoint)
    p_mean: float = -2.5                        # Table 4: ln σ ~ N(P_mean, P_std²)
    p_std: float = 1.8                          # Table 4
    context_dropout: float = 0.1                # Table 4: null-token rate for guidance
    column_dropout: float = 0.0                 # models with model.column_mask: each column
                                                # also left out independently at this rate
    precision: str = "auto"                     # "auto", "fp32", "bf16" or "fp16"
    grad_clip: float = 0.0                      # 0: no clipping
    augment: bool = True                        # random flips and rotations by multiples of 90°
    seed: int = 0
    log_every: int = 50
    val_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    threads: int = 0                            # CPU threads (0: torch's default)
    init_from: str = ""                         # start from these weights (model file, run folder
                                                # or bundled model name), e.g. to fine-tune
    objective: str = "edm"                      # "edm" (Eq. 22) or "consistency" (consistency
                                                # tuning, radiogen.diffusion.consistency)
    consistency_teacher: str = ""               # teacher weights for consistency distillation;
                                                # "" for teacher-free tuning (ECT)
    consistency_guidance: float = 0.0           # the teacher's guidance strength ω
    consistency_stages: int = 4                 # stages over the run; t − r halves at each

    def __post_init__(self):
        self.ema_profiles = tuple(float(s) for s in self.ema_profiles)
        _check_ranges(self, "training", _TRAINING_RANGES)
        if self.objective not in ("edm", "consistency"):
            raise ValueError(f"training.objective must be edm or consistency, not {self.objective!r}")
        if self.consistency_stages < 1:
            raise ValueError("training.consistency_stages must be at least 1")


#: The allowed range (type, lowest, highest; None: open) of every numeric training setting.
_TRAINING_RANGES = {
    "iterations": (int, 1, None), "batch_size": (int, 1, None), "lr": (float, 0, None),
    "lr_warmup": (int, 0, None), "ema_rate": (float, 0, 1), "ema_snapshot_every": (int, 0, None),
    "p_mean": (float, None, None), "p_std": (float, 0, None), "context_dropout": (float, 0, 1),
    "column_dropout": (float, 0, 1),
    "grad_clip": (float, 0, None), "seed": (int, 0, None), "log_every": (int, 1, None),
    "val_every": (int, 1, None), "checkpoint_every": (int, 1, None),
    "keep_checkpoints": (int, 1, None), "threads": (int, 0, None),
    "consistency_guidance": (float, 0, None)}


def _check_ranges(settings, section: str, ranges: dict) -> None:
    """A ``ValueError`` naming ``section.key`` and its range for the first numeric setting that
    is not a finite number of its type within it (e.g. ``--set training.batch_size=0``)."""
    for name, (kind, lo, hi) in ranges.items():
        value = getattr(settings, name)
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value) and (kind is float or float(value).is_integer())
              and (lo is None or value >= lo) and (hi is None or value <= hi))
        if not ok:
            span = " and ".join(t for t in (lo is not None and f"≥ {lo}",
                                            hi is not None and f"≤ {hi}") if t)
            raise ValueError(f"{section}.{name} must be {'an integer' if kind is int else 'a number'}"
                             f"{' ' + span if span else ''}, not {value!r}")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    name: str = "custom"
    description: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config sections: {sorted(unknown)}")
        return cls(model=_build(ModelConfig, d.get("model", {}), "model"),
                   data=_build(DataConfig, d.get("data", {}), "data"),
                   training=_build(TrainingConfig, d.get("training", {}), "training"),
                   name=d.get("name", "custom"), description=d.get("description", ""))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Config":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None

    def override(self, assignments: list[str]) -> "Config":
        """A copy with ``section.key=value`` assignments applied (values parsed as JSON)."""
        d = self.to_dict()
        for item in assignments:
            key, sep, raw = item.partition("=")
            section, _, name = key.strip().partition(".")
            if not sep or section not in ("model", "data", "training") or not name:
                raise ValueError(f"override {item!r} is not of the form section.key=value")
            if name not in d[section]:
                raise ValueError(f"unknown setting {section}.{name}; known: {sorted(d[section])}")
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw  # a bare string such as data.source=/path/to/data.h5
            d[section][name] = value
        return Config.from_dict(d)


def _build(cls, values: dict, section: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {section} settings: {sorted(unknown)}")
    return cls(**values)


def list_presets() -> list[str]:
    folder = resources.files("radiogen") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_preset(name_or_path: str) -> Config:
    """A preset by name (``first-cpu``) or a JSON config file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.exists():
        return Config.from_json(path)
    folder = resources.files("radiogen") / "presets"
    candidate = folder / f"{name_or_path}.json"
    if not candidate.is_file():
        raise ValueError(f"no preset or config file {name_or_path!r}; presets: {list_presets()}")
    return Config.from_dict(json.loads(candidate.read_text()))

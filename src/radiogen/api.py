"""The Python API: load a model, sample images, train. The ``radiogen`` command wraps these.

>>> from radiogen import api
>>> model = api.load_model("runs/first")                       # doctest: +SKIP
>>> images = api.sample(model, 16, class_label="FRII", seed=1)  # (16, 80, 80) in [0, 1]
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from radiogen.config import Config, ModelConfig
from radiogen.data.transforms import clip_background, from_model_range, recorded_stretch
from radiogen.diffusion import (SAMPLERS, STOCHASTIC_SAMPLERS, GuidedDenoiser, noise_levels,
                                per_image_noise, per_image_step_noise)
from radiogen.models import Denoiser
from radiogen.precision import resolve_precision
from radiogen.training.checkpoint import load_denoiser, read_model_file, resolve_model_path

__all__ = ["Model", "NoModelError", "bundled_models", "load_model", "sample", "train",
           "class_index", "export_model", "posthoc_ema", "flux_context", "peak_flux_of",
           "flux_range", "draw_flux_context", "make_map", "condition_context",
           "draw_free_conditions",
           "default_batch_size", "sampling_defaults", "autoguidance_setting", "class_guidance",
           "default_churn", "check_sampler",
           "DEFAULT_MODEL", "DEFAULT_GUIDANCE", "DEFAULT_SAMPLER", "DEFAULT_STEPS",
           "DEFAULT_CHURN", "DEFAULT_GUIDANCE_INTERVAL", "DEFAULT_BACKGROUND_CLIP",
           "EVERY_SIGMA", "CONSISTENCY_STEPS", "CONSISTENCY_SIGMA_MIN", "CPU_BATCH_SIZE",
           "GPU_BATCH_SIZE"]

DEFAULT_MODEL = "first-class"
#: Guidance strength ω by kind of context: the paper's choices (Sections 6.1 and 6.3); for
#: models conditioned on several source properties, the ω that made first-flux-size follow
#: its size condition best (its model card). A class model's file may record another ω for some
#: of its classes (``meta["class_guidance"]``, :func:`class_guidance`).
DEFAULT_GUIDANCE = {"class": 0.75, "flux": 0.1, "properties": 1.0}
#: Default sampler, noise levels N and S_churn by kind of context (as DEFAULT_GUIDANCE), and the
#: σ interval where class models are guided (Kynkäänniemi et al. 2024; EDM2's interval), the
#: conditional model alone elsewhere. Class models: DPM-Solver++(2M), N = 10, chosen by
#: benchmarks/sampler_quality.py, 13 network passes per image instead of the paper's Heun-49
#: (README, "Quality against cost"). Peak-flux models: EDM's stochastic sampler (Algorithm 2),
#: S_churn 4 at N = 13 (25 evaluations), whose churn removes the faint haze the ODE leaves on
#: the noise background (benchmarks/flux_realism.py; first-flux's model card, "EDM's stochastic
#: sampler"). Models of several source properties: DPM-Solver++(2M), N = 15, with which their
#: obedience was measured (first-flux-size's card).
DEFAULT_SAMPLER = {"class": "dpmpp-2m", "flux": "heun-sde", "properties": "dpmpp-2m"}
DEFAULT_STEPS = {"class": 10, "flux": 13, "properties": 15}
DEFAULT_CHURN = {"flux": 4.0}
DEFAULT_GUIDANCE_INTERVAL = {"class": (0.28, 5.42)}
#: Background clip of generated images by kind (:func:`radiogen.data.transforms.clip_background`):
#: class models learn the FIRST images, whose backgrounds their authors clipped to exactly 0, and
#: leave a faint haze there; the threshold that brings the pixel-value distribution closest to
#: held-out real images (first-class's model card). Flux models keep their noise background.
DEFAULT_BACKGROUND_CLIP = {"class": 0.01}
#: The guidance interval that guides at every noise level (as the paper does).
EVERY_SIGMA = (0.0, math.inf)
#: Consistency-tuned models (radiogen.diffusion.consistency) sample with the consistency
#: sampler: evaluations N and the last re-noising level σ_min (chosen by
#: benchmarks/sampler_quality.py --consistency).
CONSISTENCY_STEPS, CONSISTENCY_SIGMA_MIN = 2, 0.8
#: Images per network batch when none is given: small batches keep a CPU's caches warm (on a
#: 2-core CPU, 8 images run ~1.8x faster per image than 64: benchmarks/sampling_throughput.py
#: --batch-sizes); a GPU wants large ones.
CPU_BATCH_SIZE, GPU_BATCH_SIZE = 8, 64


def default_batch_size(device) -> int:
    return CPU_BATCH_SIZE if torch.device(device).type == "cpu" else GPU_BATCH_SIZE


class NoModelError(FileNotFoundError):
    """No weights are installed (or found) for the model asked for."""


@dataclass
class Model:
    """A trained denoiser with what its context means (``meta``: kind, class names or Box-Cox
    parameters, pixel scale, beam, training data)."""

    denoiser: Denoiser
    config: ModelConfig
    meta: dict
    name: str
    path: Path

    @property
    def kind(self) -> str:
        return self.meta.get("kind", "class")

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("class_names", []))

    @property
    def conditions(self) -> list:
        """The source properties the model is conditioned on
        (:class:`radiogen.data.conditions.Condition`, in context order); [] for class models and
        peak-flux models of the single-value kind."""
        from radiogen.data.conditions import Condition
        return [Condition.from_dict(c) for c in self.meta.get("conditions", [])]

    @property
    def stretch(self) -> float:
        """The asinh stretch a of the pixel range the model was trained on (``data.stretch``;
        0: linear, the paper's), which :func:`sample` inverts."""
        return recorded_stretch(self.meta)

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    @property
    def is_consistency(self) -> bool:
        """Whether the model was consistency-tuned (it then samples with the consistency
        sampler only)."""
        return self.meta.get("training", {}).get("objective") == "consistency"

    @property
    def distilled_guidance(self) -> float:
        """The guidance strength ω of the teacher distilled into a consistency model (0 if none):
        its images are guided already, with one network pass per step."""
        training = self.meta.get("training", {})
        if not self.is_consistency or not training.get("consistency_teacher"):
            return 0.0
        return float(training.get("consistency_guidance", 0.0))


def sampling_defaults(model: Model) -> dict:
    """Sampler, N, S_churn, ω, guidance interval, σ_min and background clip that
    :func:`sample` uses for ``model`` when none are given; ``class_guidance``: the classes of a
    class model that its model file guides with another ω (class name → ω, ``meta``'s
    ``class_guidance``; :func:`class_guidance`). Sampler, N and S_churn are those of the model's
    kind unless its file records its own (``meta["sampling"]``, :func:`export_model`); S_churn
    is the kind's only with heun-sde, else 0. ``guide_model`` and ``autoguidance``: the
    autoguidance the file records (the guide's model file, stored by its path from the model
    file's folder, and ω_a), else None and 0."""
    background_clip = DEFAULT_BACKGROUND_CLIP.get(model.kind, 0.0)
    if model.is_consistency:
        omega = 0.0 if model.distilled_guidance else DEFAULT_GUIDANCE.get(model.kind, 0.0)
        return {"sampler": "consistency", "steps": CONSISTENCY_STEPS, "churn": 0.0,
                "guidance": omega, "class_guidance": {}, "guidance_interval": EVERY_SIGMA,
                "sigma_min": CONSISTENCY_SIGMA_MIN, "background_clip": background_clip,
                "guide_model": None, "autoguidance": 0.0}
    kind = "properties" if model.conditions else model.kind
    per_class = model.meta.get("class_guidance", {}) if model.kind == "class" else {}
    recorded = model.meta.get("sampling", {})
    sampler = recorded.get("sampler", DEFAULT_SAMPLER.get(kind, DEFAULT_SAMPLER["class"]))
    churn = DEFAULT_CHURN.get(kind, 0.0) if sampler == "heun-sde" else 0.0
    guide = recorded.get("guide_model")
    return {"sampler": sampler, "steps": int(recorded.get("steps", DEFAULT_STEPS.get(kind, 15))),
            "churn": float(recorded.get("churn", churn)),
            "guidance": DEFAULT_GUIDANCE.get(kind, 0.0),
            "class_guidance": {str(k): float(v) for k, v in per_class.items()},
            "guidance_interval": DEFAULT_GUIDANCE_INTERVAL.get(model.kind, EVERY_SIGMA),
            "sigma_min": 0.002, "background_clip": background_clip,
            "guide_model": Path(model.path).parent / guide if guide else None,
            "autoguidance": float(recorded.get("autoguidance", 0.0)) if guide else 0.0}


def autoguidance_setting(model: Model, guide_model=None,
                         autoguidance: float | None = None) -> tuple:
    """(guide model, ω_a) that :func:`sample` guides ``model`` with: those given; where neither
    is given, the guide and ω_a its model file records (:func:`export_model`; none: (None, 0));
    a guide given without ω_a is guided with ω_a = 1; ω_a given without a guide, the recorded
    guide; ω_a = 0 turns autoguidance off."""
    defaults = sampling_defaults(model)
    recorded = guide_model is None and defaults["guide_model"] is not None
    if guide_model is None:
        guide_model = defaults["guide_model"]
        if autoguidance is None:
            autoguidance = defaults["autoguidance"]
    elif autoguidance is None:
        autoguidance = 1.0
    autoguidance = float(autoguidance)
    if not math.isfinite(autoguidance) or autoguidance < 0:
        raise ValueError(f"autoguidance ω_a must be a finite number ≥ 0, got {autoguidance}")
    if recorded and autoguidance and not Path(guide_model).is_file():
        raise FileNotFoundError(f"{guide_model}: the guide model that {model.name} records is "
                                "missing (keep it where it was beside the model file, or give "
                                "another guide or autoguidance 0)")
    return (guide_model if autoguidance else None), autoguidance


def class_guidance(model: Model, guidance: "float | dict | None" = None) -> dict[str, float]:
    """The guidance strength ω of every class of a class model, class name → ω.

    ``guidance`` None: the model's defaults, ω of :func:`sampling_defaults` for every class but
    those its model file guides with another ω (the bundled ``first-class`` guides Bent with
    0.3, whose sources stronger guidance draws brighter than real ones; its model card, "Weaker
    guidance"); a number: that ω for every class; a mapping class name → ω: those classes so,
    the rest as by default."""
    defaults = sampling_defaults(model)
    if guidance is not None and not isinstance(guidance, dict):
        return {name: float(guidance) for name in model.class_names}
    omegas = {name: defaults["class_guidance"].get(name, defaults["guidance"])
              for name in model.class_names}
    return {**omegas, **_named_strengths(model, guidance or {})}


def _named_strengths(model: Model, strengths: dict) -> dict[str, float]:
    """``strengths`` (class name or index → ω) checked against ``model``'s classes, keyed by
    the class names as the model spells them."""
    if model.kind != "class":
        raise ValueError(f"model {model.name!r} has no classes to guide one by one")
    named = {}
    for label, omega in strengths.items():
        omega = float(omega)
        if not math.isfinite(omega) or omega < 0:
            raise ValueError(f"guidance for class {label!r}: ω must be a finite number ≥ 0, "
                             f"got {omega}")
        named[model.class_names[class_index(model, label)]] = omega
    return named


def default_churn(model: Model, sampler: str) -> float:
    """S_churn when none is given: the model's default with its default sampler (a peak-flux
    model's heun-sde), 0 with any other (``heun-sde`` chosen for a class model is Heun)."""
    defaults = sampling_defaults(model)
    return defaults["churn"] if sampler == defaults["sampler"] else 0.0


def check_sampler(model: Model, sampler: str) -> None:
    """A clear error for an unknown sampler or one that does not fit the model."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    if model.is_consistency != (sampler == "consistency"):
        raise ValueError(
            f"model {model.name!r} is consistency-tuned: sample it with the consistency sampler"
            if model.is_consistency else
            f"the consistency sampler needs a consistency-tuned model; {model.name!r} is a "
            f"diffusion model (samplers: {', '.join(s for s in SAMPLERS if s != 'consistency')})")


def bundled_models() -> dict[str, Path]:
    """Models shipped inside the package: name → model file."""
    folder = resources.files("radiogen") / "weights"
    if not folder.is_dir():
        return {}
    return {p.name[:-len(".safetensors")]: Path(str(p)) for p in folder.iterdir()
            if p.name.endswith(".safetensors")}


def model_path(name_or_path: str) -> Path:
    """The model file of a bundled model's name, or of a model file / checkpoint folder / run
    folder (EMA weights preferred)."""
    bundled = bundled_models()
    if name_or_path in bundled:
        path = bundled[name_or_path]
    elif Path(name_or_path).exists():
        path = resolve_model_path(name_or_path)
    elif "/" not in str(name_or_path) and not str(name_or_path).endswith(".safetensors"):
        installed = ", ".join(sorted(bundled)) or "none"
        raise NoModelError(
            f"no trained weights are installed for model {name_or_path!r} (installed: {installed}). "
            "Train one with `radiogen train --preset first-cpu --out runs/first` and sample from it "
            "with `--checkpoint runs/first`.")
    else:
        raise FileNotFoundError(f"{name_or_path}: no such model file, checkpoint or run folder")
    return Path(path)


def load_model(name_or_path: str = DEFAULT_MODEL, device: str | torch.device = "cpu") -> Model:
    """A bundled model by name, or a model file / checkpoint folder / run folder by path."""
    path = model_path(name_or_path)
    denoiser, cfg, meta = load_denoiser(path, device)
    if torch.device(device).type == "cpu":
        # NHWC lets oneDNN skip a reorder around every convolution: 1.3-1.4x faster sampling
        # on the CPU (benchmarks/sampling_throughput.py --layouts)
        denoiser.to(memory_format=torch.channels_last)
    return Model(denoiser, cfg, meta, str(name_or_path), path)


def class_index(model: Model, class_label) -> int:
    """A class index from a name (case-insensitive) or an index."""
    names = model.class_names
    if isinstance(class_label, (int, np.integer)) or str(class_label).isdigit():
        index = int(class_label)
        if not 0 <= index < len(names):
            raise ValueError(f"class index {index} out of range for classes {names}")
        return index
    lowered = [n.lower() for n in names]
    if str(class_label).lower() not in lowered:
        raise ValueError(f"unknown class {class_label!r}; this model knows {names}")
    return lowered.index(str(class_label).lower())


def condition_context(model: Model, n: int, conditions: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Context z (n, k) and mask (n, k) of a model conditioned on source properties.

    ``conditions`` maps column names to one or ``n`` values each: numbers in the column's unit
    (``model.conditions``), astropy Quantities or text with a unit (``"30 arcsec"``); columns
    not named, and NaN values, are left free (mask 0). An unknown name is a ``ValueError``
    that lists the model's columns; values outside the training range raise an
    :class:`radiogen.data.conditions.OutOfRangeWarning`."""
    from radiogen.data.conditions import to_column_unit
    columns = model.conditions
    if not columns:
        raise ValueError(f"model {model.name!r} is not conditioned on source properties")
    names = [c.name for c in columns]
    unknown = [name for name in conditions if name not in names]
    if unknown:
        raise ValueError(f"model {model.name!r} has no condition {', '.join(map(repr, unknown))}; "
                         f"its conditions are {', '.join(names)}")
    z = np.zeros((n, len(columns)), np.float32)
    mask = np.zeros((n, len(columns)), np.float32)
    for j, c in enumerate(columns):
        if conditions.get(c.name) is None:
            continue
        raw = conditions[c.name]
        items = raw if isinstance(raw, (list, tuple, np.ndarray)) else [raw]
        values = np.array([to_column_unit(c, v) for v in items], np.float64)
        if values.size not in (1, n):
            raise ValueError(f"{c.name}: {values.size} values for {n} images (give 1 or {n})")
        values = np.broadcast_to(values, (n,))
        known = np.isfinite(values)                    # NaN: this image leaves the column free
        c.warn_outside(values[known])
        z[known, j] = c.forward(values[known])
        mask[:, j] = known
    return torch.from_numpy(z), torch.from_numpy(mask)


def draw_free_conditions(model: Model, given: dict, names, n: int, seed: int = 0) -> dict:
    """Values of the columns ``names`` for ``n`` images, drawn from the training sources: for
    image k, one of the 10 training sources nearest to its ``given`` values (in context units z;
    any training source when nothing is given), picked at random with ``seed``. Used to give a
    flux model a peak flux (for Jy/beam) when only other properties are asked for."""
    table = model.meta.get("condition_table")
    if not table:
        raise ValueError(f"model {model.name!r} carries no table of training conditions")
    columns = {c.name: c for c in model.conditions}
    rng = np.random.default_rng(seed)
    rows = len(next(iter(table.values())))
    if given:
        z, mask = condition_context(model, n, given)
        train = np.stack([columns[c].forward(np.asarray(table[c], np.float64))
                          for c in columns], axis=1)
        train = np.nan_to_num(train, nan=1e6)       # a source without a value is never near
        d = (((train[None] - z.numpy()[:, None]) * mask.numpy()[:, None]) ** 2).sum(-1)
        nearest = np.argsort(d, axis=1, kind="stable")[:, :min(10, rows)]
        pick = nearest[np.arange(n), rng.integers(0, nearest.shape[1], n)]
    else:
        pick = rng.integers(0, rows, n)
    return {name: np.asarray(table[name], np.float64)[pick] for name in names}


def _context(model: Model, n: int, class_label, scaled_flux, conditions=None):
    """(context, mask) for :func:`sample`; mask None except for property models."""
    if model.config.context_dim == 0:
        return None, None
    if model.config.column_mask:
        conditions = dict(conditions or {})
        if scaled_flux is not None:       # the peak-flux API of Section 6.1 on a property model
            peak = next(c for c in model.conditions if c.name == "peak_flux")
            conditions["peak_flux"] = peak.inverse(np.asarray(scaled_flux, np.float64))
        return condition_context(model, n, conditions)
    if conditions:
        raise ValueError(f"model {model.name!r} is not conditioned on source properties; "
                         + ("give a class" if model.kind == "class" else "give the peak flux"))
    return _single_context(model, n, class_label, scaled_flux), None


def _single_context(model: Model, n: int, class_label, scaled_flux) -> torch.Tensor:
    if model.kind == "class":
        if class_label is None:
            raise ValueError(f"a class-conditioned model needs a class: one of {model.class_names}")
        labels = np.broadcast_to(np.asarray(
            [class_index(model, c) for c in np.atleast_1d(np.asarray(class_label, dtype=object))]), (n,))
        return torch.from_numpy(np.eye(model.config.context_dim, dtype=np.float32)[labels])
    if scaled_flux is None:
        raise ValueError("a flux-conditioned model needs scaled peak-flux values")
    return torch.from_numpy(np.broadcast_to(np.asarray(scaled_flux, np.float32), (n,)).copy()[:, None])


def _boxcox(model: Model):
    from radiogen.data.flux import BoxCox
    b = model.meta["boxcox"]
    return BoxCox(b["lambda"], b["mean"], b["std"])


def flux_context(model: Model, peak_flux) -> np.ndarray:
    """Peak flux f̂ in Jy/beam → the model's context, Box-Cox standardised (Eq. 12)."""
    from radiogen.data.flux import boxcox_forward
    return boxcox_forward(peak_flux, _boxcox(model)).astype(np.float32)


def peak_flux_of(model: Model, scaled_flux) -> np.ndarray:
    """The model's context → peak flux f̂ in Jy/beam (inverse of Eq. 12)."""
    from radiogen.data.flux import boxcox_inverse
    return boxcox_inverse(scaled_flux, _boxcox(model))


def flux_range(model: Model) -> tuple[float, float]:
    """The lowest and highest peak flux f̂ (Jy/beam) of a flux model's training images (the
    ends of its scaled-flux histogram)."""
    edges = model.meta["scaled_flux_histogram"]["edges"]
    lo, hi = peak_flux_of(model, [edges[0], edges[-1]])
    return float(lo), float(hi)


def draw_flux_context(model: Model, n: int, seed: int = 0) -> np.ndarray:
    """Context values drawn as the paper does (Section 6.1): a bin of the 100-bin histogram of
    the training scaled flux picked by its count, then a value uniform within it."""
    from radiogen.data.flux import draw_from_histogram
    hist = model.meta["scaled_flux_histogram"]
    return draw_from_histogram(hist["counts"], hist["edges"], n,
                               np.random.default_rng(seed)).astype(np.float32)


def sample(model: Model, n: int, class_label=None, scaled_flux=None,
           guidance: "float | dict | None" = None,
           steps: int | None = None, sampler: str | None = None, seed: int = 0,
           batch_size: int | None = None, precision: str = "fp32", sigma_min: float | None = None,
           sigma_max: float = 80.0, rho: float = 7.0,
           guidance_interval: tuple[float, float] | None = None, progress: bool = True,
           guide_model: "Model | str | None" = None, autoguidance: float | None = None,
           guide_classifier=None, classifier_scale: float = 0.0,
           seeds=None, conditions: dict | None = None,
           background_clip: float | None = None, churn: float | None = None) -> np.ndarray:
    """Draw ``n`` images, float32 (n, H, W) in [0, 1] (clamped to [−1, 1], rescaled).

    Image k starts from the noise of seed ``seed + k``, so the result does not depend on
    ``batch_size``: bit for bit with the same batch size, thread count and machine, to 1e-5
    with another batch size or thread count (the CPU kernels differ by shape and processor;
    README, "Reproducibility"). ``class_label`` (name or index, one or n) or ``scaled_flux``
    (one or n Box-Cox standardised values) sets the context; ``guidance`` is ω (the paper's
    value by default; class models: a number for every class or a mapping class name → ω, by
    default the model's, :func:`class_guidance`), applied only for σ_lo < σ ≤ σ_hi,
    ``guidance_interval`` = (σ_lo, σ_hi) (:data:`EVERY_SIGMA` guides everywhere, as the paper
    does). Noise levels: Eq. (25) with ``steps`` = N; Heun uses 2N − 1 evaluations per image,
    the other samplers N (:func:`radiogen.diffusion.evaluations`). ``sampler="heun-sde"`` is EDM's stochastic
    sampler (Karras et al. 2022, Algorithm 2), Heun with noise added back before each step for
    0.05 ≤ σ ≤ 50 by ``churn`` = S_churn (γ = min(S_churn/N, √2 − 1); 0: Heun), the noise
    seeded per image and step. ``sampler``, ``steps``, ``churn``, ω, the interval and σ_min
    default to :func:`sampling_defaults` (class models: DPM-Solver++(2M), N = 10, guided for
    0.28 < σ ≤ 5.42; peak-flux models: heun-sde with S_churn 4, N = 13, guided everywhere;
    models of several source properties: DPM-Solver++(2M), N = 15; a consistency-tuned model:
    the consistency sampler, N = 2; a model file may record its own sampler and N, as the
    bundled ``first-flux`` does: DPM-Solver++(2M), N = 25); ``churn`` left out is the model's
    default with its default sampler and 0 with another (:func:`default_churn`). ``batch_size``
    defaults to :func:`default_batch_size` (8 on a CPU, 64 on a GPU). ``precision`` is the network's:
    fp32 by default (reproducible to 1e-5 across batch sizes); bf16 changes images by about
    0.0005 RMS; ``auto`` takes bf16 on a GPU and on CPUs where it samples faster
    (:func:`radiogen.precision.cpu_samples_faster_in_bf16`), as ``radiogen sample`` does.

    Further guidance (:class:`radiogen.diffusion.GuidedDenoiser`), inside the same interval:
    ``autoguidance`` ω_a > 0 guides away from ``guide_model`` (a smaller or shorter-trained
    model of the same data and context, by name, path or :class:`Model`; Karras et al. 2024),
    on top of classifier-free guidance ω (set ``guidance=0`` for autoguidance alone); by default
    the guide and ω_a the model file records, if any (:func:`autoguidance_setting`; no bundled
    model records one), ω_a = 1 for a guide given without it; ``autoguidance=0`` turns it off;
    ``classifier_scale`` s > 0 adds classifier guidance by ``guide_classifier`` (a noise-aware
    classifier's model file or module, ``radiogen classifier train-guide``).

    ``seeds`` (n integers) gives every image its own seed instead of ``seed + k`` (survey maps
    draw their sources in any order and batch).

    ``conditions`` (models conditioned on source properties, ``model.conditions``): column name
    → one or n values, e.g. ``{"peak_flux": 0.05, "major_axis": "30 arcsec"}``
    (:func:`condition_context`); columns not given are left free and guidance applies to those
    given. ``scaled_flux`` sets the peak-flux column of such a model too.

    ``background_clip`` t fixes pixels below t to t and stretches [t, 1] back to [0, 1], as
    the FIRST images were clipped (:func:`radiogen.data.transforms.clip_background`; default
    :data:`DEFAULT_BACKGROUND_CLIP`: 0.01 for class models, 0 for flux models; 0 turns it off).
    """
    defaults = sampling_defaults(model)
    background_clip = defaults["background_clip"] if background_clip is None else background_clip
    if not 0 <= background_clip < 1:
        raise ValueError(f"background_clip must be in [0, 1), got {background_clip}")
    sampler = defaults["sampler"] if sampler is None else sampler
    steps = defaults["steps"] if steps is None else steps
    sigma_min = defaults["sigma_min"] if sigma_min is None else sigma_min
    if isinstance(guidance, dict) and model.kind != "class":
        raise ValueError(f"guidance per class needs a class model; {model.name!r} is a "
                         f"{model.kind} model: give one ω")
    if guidance_interval is None:
        guidance_interval = defaults["guidance_interval"]
    check_sampler(model, sampler)
    churn = default_churn(model, sampler) if churn is None else float(churn)
    if churn < 0 or (churn and sampler != "heun-sde"):
        raise ValueError(f"churn {churn}: S_churn ≥ 0, and only for the heun-sde sampler "
                         f"(not {sampler})")
    if seeds is not None:
        seeds = [int(s) for s in seeds]
        if len(seeds) != n:
            raise ValueError(f"seeds: {len(seeds)} values for {n} images")
    device = model.device
    guide_model, autoguidance = autoguidance_setting(model, guide_model, autoguidance)
    guide = _guide_denoiser(model, guide_model, autoguidance)
    classifier = _guide_classifier(model, guide_classifier, classifier_scale)
    batch_size = default_batch_size(device) if batch_size is None else batch_size
    torch.set_flush_denormal(True)  # softmax tails underflow to subnormals, 10-50x slower on CPUs
    amp_dtype = resolve_precision(precision, device, job="sample")
    sigmas = noise_levels(sampler, steps, sigma_min, sigma_max, rho).to(device)
    context, context_mask = _context(model, n, class_label, scaled_flux, conditions)
    omega = _guidance_per_image(model, guidance, context, defaults)
    shape = (model.config.in_channels, model.config.image_size, model.config.image_size)
    out = np.empty((n, *shape[1:]), dtype=np.float32)
    # no_grad rather than inference_mode: classifier guidance takes a gradient inside
    with tqdm(total=n, desc="sampling", unit="img", disable=not progress) as bar, torch.no_grad():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            batch_seeds = seeds[start:stop] if seeds is not None else range(seed + start,
                                                                              seed + stop)
            x = per_image_noise(batch_seeds, shape, device) * sigmas[0]  # x_0 ~ N(0, σ_0² I)
            ctx = context[start:stop].to(device) if context is not None else None
            mask = context_mask[start:stop].to(device) if context_mask is not None else None
            w = omega[start:stop].to(device) if isinstance(omega, torch.Tensor) else omega
            D = GuidedDenoiser(model.denoiser, ctx, w, guidance_interval, guide, autoguidance,
                               classifier, classifier_scale, mask)
            extra = {"churn": churn} if sampler == "heun-sde" else {}
            if sampler in STOCHASTIC_SAMPLERS:    # fresh noise, seeded per image and step
                extra["noise"] = lambda i, s=batch_seeds: per_image_step_noise(s, i, shape, device)
            amp = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
            with amp:
                x = SAMPLERS[sampler](D, x, sigmas, **extra)
            x01 = from_model_range(x.float().cpu().numpy()[:, 0], model.stretch)
            out[start:stop] = clip_background(x01, background_clip)
            bar.update(stop - start)
    return out


def _guidance_per_image(model: Model, guidance, context, defaults) -> "float | torch.Tensor":
    """ω for :func:`sample`: one number, or one per image where a class model guides its
    classes with different strengths (:func:`class_guidance`)."""
    if model.kind != "class" or context is None:
        return defaults["guidance"] if guidance is None else float(guidance)
    omegas = class_guidance(model, guidance)
    if len(set(omegas.values())) == 1:
        return next(iter(omegas.values()))
    per_class = torch.tensor([omegas[name] for name in model.class_names])
    return per_class[context.argmax(dim=1)]


def make_map(out, model: "Model | str" = "first-flux", **options):
    """A synthetic survey map: generated sources (from a catalogue, or drawn) placed on a
    SIN-projected WCS grid over beam-correlated noise or a real mosaic, written as FITS in
    Jy/beam with a truth catalogue and a PNG quick look; returns a
    :class:`radiogen.maps.MapResult`. The options are those of :func:`radiogen.maps.make_map`.

    >>> api.make_map("map.fits", "first-flux", n_sources=300, size=(2048, 2048))  # doctest: +SKIP
    """
    from radiogen.maps import make_map as _make_map
    return _make_map(out, model, **options)


def _guide_denoiser(model: Model, guide_model, autoguidance: float):
    """The guide model's denoiser for autoguidance (None without), checked against ``model``."""
    if not autoguidance:
        return None
    if guide_model is None:
        raise ValueError("autoguidance needs a guide model (guide_model / --guide-model)")
    if isinstance(guide_model, Model):
        guide = guide_model
    else:
        path = model_path(str(guide_model))
        guide = _loaded_guide(str(path), path.stat().st_mtime_ns, str(model.device))
    _check_guide_fits(model, guide)
    return guide.denoiser


@functools.lru_cache(maxsize=4)
def _loaded_guide(path: str, mtime_ns: int, device: str) -> Model:
    """A guide model read once per file version and device (survey maps sample in many calls)."""
    return load_model(path, device)


def _check_guide_fits(model: Model, guide: Model) -> None:
    if (guide.kind, guide.class_names, guide.config.context_dim, guide.config.image_size,
            guide.stretch) != (model.kind, model.class_names, model.config.context_dim,
                               model.config.image_size, model.stretch):
        raise ValueError(f"guide model {guide.name!r} does not fit {model.name!r}: it must be a "
                         f"model of the same kind, context, image size and pixel range "
                         f"(data.stretch)")


def _guide_classifier(model: Model, guide_classifier, scale: float):
    """The noise-aware classifier for classifier guidance (None without), checked against
    ``model``'s classes."""
    if not scale:
        return None
    if guide_classifier is None:
        raise ValueError("classifier guidance needs a noise-aware classifier (guide_classifier / "
                         "--guide-classifier)")
    if isinstance(guide_classifier, torch.nn.Module):
        classifier = guide_classifier
    else:
        from radiogen.training.noise_classifier import load_noise_classifier
        classifier = load_noise_classifier(guide_classifier, model.device)
    names = [c.lower() for c in getattr(classifier, "class_names", model.class_names)]
    if model.kind != "class" or names != [c.lower() for c in model.class_names]:
        raise ValueError(f"classifier guidance needs a class model with the classifier's classes "
                         f"{names}; {model.name!r} has {model.class_names or 'no classes'}")
    if model.stretch:   # radiogen.training.noise_classifier trains on the linear range
        raise ValueError(f"classifier guidance needs a model of the linear pixel range; "
                         f"{model.name!r} was trained with data.stretch={model.stretch}")
    return classifier


def export_model(source, out, dtype: str = "fp32", ema: bool = True,
                 class_guidance: dict | None = None, sampling: dict | None = None) -> Path:
    """Write the (EMA) weights of a run folder, checkpoint folder or model file as one model
    file, stored in ``dtype`` ("fp32", "bf16" or "fp16"); they are read back as float32.
    ``class_guidance`` (class models; class name → ω) records the guidance strengths of those
    classes that :func:`sample` uses instead of the default ω (:func:`class_guidance`);
    ``sampling`` (keys "sampler", "steps", "churn") the sampler, N and S_churn it uses when
    none are given instead of those of the model's kind (:func:`sampling_defaults`), on top of
    any the source records; its keys "guide_model" (a model file in ``out``'s folder or below
    it, recorded by its path from there, so that the two files travel together) and
    "autoguidance" (ω_a, default 1; 0 removes a recorded guide) the autoguidance it uses
    (:func:`autoguidance_setting`)."""
    from radiogen.training.checkpoint import save_model_file
    path = resolve_model_path(source, prefer_ema=ema)
    state, cfg, meta = read_model_file(path)
    model = Model(None, cfg, meta, str(source), Path(path))
    if class_guidance:
        meta = {**meta, "class_guidance": _named_strengths(model, class_guidance)}
    sampling = dict(sampling or {})
    source_guide = sampling_defaults(model)["guide_model"]
    if sampling.get("guide_model") is None and sampling.get("autoguidance") != 0 and source_guide:
        sampling["guide_model"] = source_guide   # recorded again by its path from out's folder
    if sampling:
        if sampling.get("guide_model") is not None:
            sampling = {**sampling, "guide_model": _guide_path_from(model, sampling["guide_model"],
                                                                    Path(out))}
        meta = {**meta, "sampling": _checked_sampling(model, sampling)}
    torch_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    return save_model_file(out, state, cfg, {**meta, "weights": "ema" if ema else "raw",
                                             "stored_dtype": dtype}, dtype=torch_dtype)


def _checked_sampling(model: Model, sampling: dict) -> dict:
    """``model``'s recorded sampling defaults with ``sampling`` (sampler, steps, churn, guide
    model and ω_a) laid over them, checked as :func:`sample` would check them."""
    unknown = set(sampling) - {"sampler", "steps", "churn", "guide_model", "autoguidance"}
    if unknown:
        raise ValueError(f"sampling defaults: unknown keys {sorted(unknown)}; a model file "
                         "records sampler, steps, churn, guide_model and autoguidance")
    if model.is_consistency:
        raise ValueError(f"model {model.name!r} is consistency-tuned: it samples with the "
                         "consistency sampler's defaults and records none of its own")
    recorded = {**model.meta.get("sampling", {}),
                **{key: value for key, value in sampling.items() if value is not None}}
    if "sampler" in recorded:
        check_sampler(model, recorded["sampler"])
        if recorded["sampler"] != "heun-sde" and "churn" not in sampling:
            recorded.pop("churn", None)
    if "steps" in recorded:
        steps = recorded["steps"]
        if isinstance(steps, bool) or int(steps) != steps or steps < 2:
            raise ValueError(f"sampling defaults: steps must be an integer ≥ 2, got {steps!r}")
        recorded["steps"] = int(steps)
    if "churn" in recorded:
        churn = float(recorded["churn"])
        if not math.isfinite(churn) or churn < 0:
            raise ValueError(f"sampling defaults: churn must be a finite number ≥ 0, got {churn}")
        sampler = recorded.get("sampler", sampling_defaults(model)["sampler"])
        if churn and sampler != "heun-sde":
            raise ValueError(f"sampling defaults: churn needs the heun-sde sampler, not {sampler}")
        recorded["churn"] = churn
    if "autoguidance" in recorded:
        omega_a = float(recorded["autoguidance"])
        if not math.isfinite(omega_a) or omega_a < 0:
            raise ValueError(f"sampling defaults: autoguidance must be a finite number ≥ 0, "
                             f"got {omega_a}")
        if "guide_model" not in recorded and omega_a:
            raise ValueError("sampling defaults: autoguidance needs a guide model")
        recorded["autoguidance"] = omega_a
    if "guide_model" in recorded:
        recorded.setdefault("autoguidance", 1.0)
        if not recorded["autoguidance"]:     # ω_a = 0: no autoguidance recorded
            del recorded["guide_model"], recorded["autoguidance"]
    return recorded


def _guide_path_from(model: Model, guide_model, out: Path) -> str:
    """The path of a guide model file from the folder of ``out``, which records it; checked to
    lie there or below and to fit ``model``."""
    guide_path = model_path(str(guide_model)).resolve()
    folder = out.resolve().parent
    if not guide_path.is_relative_to(folder):
        raise ValueError(f"guide model {guide_path}: it must lie in the model file's folder "
                         f"({folder}) or below it, as the file records it by its path from there")
    _check_guide_fits(model, load_model(str(guide_path)))
    return guide_path.relative_to(folder).as_posix()


def train(config: Config | str, run_dir, resume: bool = False, overrides: list[str] | None = None,
          device: str = "auto", progress: bool = True, max_steps: int | None = None,
          max_minutes: float | None = None) -> Path:
    """Train (or resume) a model from a :class:`Config` or preset name; returns the last
    checkpoint folder. ``max_steps`` / ``max_minutes`` end this call early (after that many
    steps, or at the first step past that wall-clock time) with a checkpoint written. Run
    under ``torchrun`` for several processes."""
    from radiogen.config import load_preset
    from radiogen.training.loop import train as _train
    cfg = load_preset(config) if isinstance(config, str) else config
    if overrides:
        cfg = cfg.override(overrides)
    if cfg.training.init_from:                  # a bundled model's name or a path: its file
        try:
            path = model_path(cfg.training.init_from)
        except NoModelError:
            raise NoModelError(
                f"training.init_from: {cfg.training.init_from!r} is neither a bundled model "
                f"({', '.join(sorted(bundled_models())) or 'none installed'}) nor an existing "
                "model file, checkpoint or run folder") from None
        cfg = cfg.override([f"training.init_from={path}"])
    if cfg.training.consistency_teacher:
        teacher = model_path(cfg.training.consistency_teacher)
        cfg = cfg.override([f"training.consistency_teacher={teacher}"])
    if resume:
        _check_same_architecture(cfg.model, run_dir)
    _check_image_size(cfg)
    return _train(cfg, run_dir, resume=resume, device=device, progress=progress,
                  max_steps=max_steps, max_minutes=max_minutes)


def _check_image_size(cfg: Config) -> None:
    """A clear error when a store's images are not of the network's size (e.g. 40×40 cut-outs
    for an 80×80 model); the bundled FIRST images are 80×80."""
    from radiogen.data.store import store_image_shape
    if cfg.data.source == "first":
        return
    shape = store_image_shape(cfg.data.source)
    size = cfg.model.image_size
    if tuple(shape[1:]) != (size, size):
        raise ValueError(f"{cfg.data.source}: images of {shape[-1]}×{shape[-2]} pixels, but the "
                         f"network takes {size}×{size} (model.image_size); build the store with "
                         f"--size {size}")


def _check_same_architecture(model_cfg: ModelConfig, run_dir) -> None:
    """A clear error when the settings of a resumed run describe another network than the one
    its newest checkpoint holds (e.g. ``--preset`` of another size)."""
    from dataclasses import asdict

    from radiogen.training.checkpoint import latest_checkpoint, read_model_config
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        return
    saved = asdict(read_model_config(ckpt / "model.safetensors"))
    differ = [f"model.{k} {saved[k]} ≠ {v}" for k, v in asdict(model_cfg).items()
              if saved.get(k) != v]
    if differ:
        raise ValueError(f"{ckpt}: a checkpoint of another architecture than the settings given "
                         f"({'; '.join(differ)}); resume without --preset to use the run's own "
                         "config.json")


def posthoc_ema(run_dir, sigma_rels, out_dir, step: int | None = None) -> list[Path]:
    """Model files ``out_dir/ema-<σ_rel>.safetensors`` with the EMA lengths ``sigma_rels``
    reconstructed after training from a run's power-EMA snapshots (EDM2's post-hoc EMA; the run
    must have been trained with ``training.ema_profiles``)."""
    from radiogen.training.posthoc_ema import write_reconstructions
    return write_reconstructions(run_dir, sigma_rels, out_dir, step)

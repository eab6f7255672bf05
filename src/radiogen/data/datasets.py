"""Training sets in memory: images in [−1, 1] with their context, the 90/10 split, class
balancing and the flip/rot90 augmentation of Section 4.2."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from radiogen.data.conditions import conditions_of
from radiogen.data.first import CLASSES, inverse_frequency_weights, load_first, undersample_indices
from radiogen.data.store import read_store
from radiogen.data.transforms import to_model_range

__all__ = ["TrainingSet", "load_training_set", "split_train_valid", "augment_dihedral"]


@dataclass
class TrainingSet:
    """Images (N, 1, H, W) in [−1, 1], context (N, k) and per-image loss weights (N,).

    ``meta`` describes what the context means (``kind``: "class" with ``class_names``, or
    "flux" with the Box-Cox parameters) and the pixel scale and beam, for the model card."""

    images: torch.Tensor
    context: torch.Tensor
    weights: torch.Tensor
    meta: dict

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index) -> "TrainingSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return TrainingSet(self.images[index], self.context[index], self.weights[index], self.meta)


def _class_set(images01, labels, class_names, balance, rng, meta, stretch=0.0):
    if balance == "undersample":
        keep = undersample_indices(labels, rng)
        images01, labels = images01[keep], labels[keep]
    weights = (inverse_frequency_weights(labels, len(class_names))[labels] if balance == "weight"
               else np.ones(len(labels), np.float32))
    context = np.eye(len(class_names), dtype=np.float32)[labels]   # one-hot classes
    return TrainingSet(torch.from_numpy(to_model_range(images01[:, None], stretch)),
                       torch.from_numpy(context), torch.from_numpy(weights),
                       {**meta, "kind": "class", "class_names": list(class_names),
                        "n_per_class": np.bincount(labels, minlength=len(class_names)).tolist()})


def _beam(attrs) -> list[float] | None:
    """[BMAJ″, BMIN″, BPA°] from store attributes, or None where the data had no beam."""
    beam = [float(attrs.get(k, np.nan)) for k in ("beam_bmaj_arcsec", "beam_bmin_arcsec", "beam_bpa_deg")]
    if not (np.isfinite(beam[0]) and beam[0] > 0):
        return None
    return [beam[0], beam[1] if np.isfinite(beam[1]) else beam[0], beam[2] if np.isfinite(beam[2]) else 0.0]


def _property_set(store, data_cfg, meta) -> TrainingSet:
    """A store conditioned on named source properties: context column j is condition j's
    transform of its values (NaN where a source has no value: left free in training)."""
    available = {c.name: c for c in conditions_of(store.attrs)}
    names = data_cfg.conditions or tuple(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"{data_cfg.source}: no condition {', '.join(map(repr, unknown))}; the "
                         f"store's conditions are {', '.join(available) or 'none'} (choose them "
                         "with `radiogen data conditions`)")
    conditions = [available[n] for n in names]
    values = {c.name: np.asarray(store.columns[c.name], np.float64) for c in conditions}
    context = np.stack([c.forward(values[c.name]) for c in conditions], axis=1).astype(np.float32)
    meta.update(kind="flux" if "peak_flux" in names else "properties",
                conditions=[c.to_dict() for c in conditions],
                frequency_hz=float(store.attrs.get("frequency_hz", 0) or 0),
                # the training values, from which free columns are drawn at sampling time
                condition_table={n: values[n].tolist() for n in names})
    if "peak_flux" in names:   # what the peak-flux-only API (Section 6.1) reads
        peak = available["peak_flux"]
        z = context[:, names.index("peak_flux")]
        counts, edges = np.histogram(z[np.isfinite(z)], bins=100)
        meta.update(boxcox={"lambda": peak.lam, "mean": peak.mean, "std": peak.std},
                    scaled_flux_histogram={"counts": counts.tolist(), "edges": edges.tolist()})
    images = to_model_range(store.images[:, None].astype(np.float32), data_cfg.stretch)
    return TrainingSet(torch.from_numpy(images), torch.from_numpy(context),
                       torch.ones(len(store)), meta)


def load_training_set(data_cfg, seed: int = 0) -> TrainingSet:
    """The training images that ``data_cfg`` (a :class:`radiogen.config.DataConfig`) names:
    the bundled FIRST archive, or an HDF5 store (class or flux conditioned)."""
    rng = np.random.default_rng(seed)
    if data_cfg.source == "first":
        parts = [load_first(split) for split in data_cfg.first_splits]
        images = np.concatenate([p.images for p in parts])
        labels = np.concatenate([p.labels for p in parts])
        meta = {"source": "FIRST (Griese et al. 2023), splits " + "+".join(data_cfg.first_splits),
                "pixel_scale_arcsec": 1.8, "beam_arcsec": [5.0, 5.0, 0.0]}
        ts = _class_set(images, labels, CLASSES, data_cfg.balance, rng, meta, data_cfg.stretch)
    else:
        store = read_store(data_cfg.source)
        meta = {"source": str(data_cfg.source),
                "pixel_scale_arcsec": float(store.attrs.get("pixel_scale_arcsec", 0) or 0),
                "beam_arcsec": _beam(store.attrs)}
        if store.kind == "class":
            if store.labels is None:
                raise ValueError(f"{data_cfg.source}: a class store without /labels")
            ts = _class_set(store.images, store.labels, store.class_names, data_cfg.balance, rng,
                            meta, data_cfg.stretch)
        elif store.attrs.get("conditions") or data_cfg.conditions:
            ts = _property_set(store, data_cfg, meta)
        else:
            if store.scaled_flux is None:
                raise ValueError(f"{data_cfg.source}: a flux store without /scaled_flux")
            counts, edges = np.histogram(store.scaled_flux, bins=100)   # Section 6.1
            meta.update(kind="flux", boxcox={k: float(store.attrs[f"boxcox_{k}"])
                                             for k in ("lambda", "mean", "std")},
                        frequency_hz=float(store.attrs.get("frequency_hz", 0) or 0),
                        scaled_flux_histogram={"counts": counts.tolist(), "edges": edges.tolist()})
            ts = TrainingSet(torch.from_numpy(to_model_range(store.images[:, None].astype(np.float32),
                                                             data_cfg.stretch)),
                             torch.from_numpy(store.scaled_flux.astype(np.float32)[:, None]),
                             torch.ones(len(store)), meta)
    if data_cfg.stretch:   # how sampling maps the denoiser's range back to [0, 1]
        ts.meta["stretch"] = float(data_cfg.stretch)
    if data_cfg.limit:
        ts = ts.subset(np.sort(rng.permutation(len(ts))[:data_cfg.limit]))
    return ts


def split_train_valid(ts: TrainingSet, valid_fraction: float, seed: int = 0):
    """Seeded random split into training and validation sets (90/10 in the paper)."""
    order = np.random.default_rng(seed + 1).permutation(len(ts))
    n_valid = int(round(valid_fraction * len(ts)))
    return ts.subset(np.sort(order[n_valid:])), ts.subset(np.sort(order[:n_valid]))


def augment_dihedral(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random horizontal and vertical flips, then a rotation by a random multiple of 90°,
    drawn independently for every image of the batch (N, C, H, W) with square images."""
    n = x.shape[0]
    flips = torch.rand(n, 2, generator=generator) < 0.5
    k = torch.randint(0, 4, (n,), generator=generator)
    x = torch.where(flips[:, 0, None, None, None].to(x.device), x.flip(-1), x)
    x = torch.where(flips[:, 1, None, None, None].to(x.device), x.flip(-2), x)
    rotations = torch.stack([torch.rot90(x, r, dims=(-2, -1)) for r in range(4)])
    return rotations[k.to(x.device), torch.arange(n, device=x.device)]

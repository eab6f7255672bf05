"""The HDF5 store: one file per dataset, the common input of training and evaluation.

Layout (every per-image dataset has N rows):

``/images``        float32 (N, H, W), each image min-max scaled to [0, 1] (Eq. 11); a store
                   built with the background noise kept (``settings["keep_noise"]``) has its
                   negative half below 0, scaled alike
``/labels``        int64 (N,), class index, for class-labelled sets (attribute ``class_names``)
``/peak_flux``     float64 (N,), original image maximum in Jy/beam, for flux sets
``/min_flux``      float64 (N,), original image minimum in Jy/beam (after negative clipping)
``/scaled_flux``   float32 (N,), Box-Cox standardised peak flux (Eq. 12), the flux context
``/names``, ``/ra``, ``/dec``, ``/snr_sigma`` and other per-image columns, optional
(the survey pipeline adds ``/source_file`` and, where the catalog gives optical counterparts,
``/optical_centre``)

File attributes: ``kind`` ("class" or "flux"), ``pixel_scale_arcsec``, ``beam_bmaj_arcsec``,
``beam_bmin_arcsec``, ``beam_bpa_deg``, ``boxcox_lambda``, ``boxcox_mean``, ``boxcox_std``
(flux sets), ``conditions`` (JSON list of :class:`radiogen.data.conditions.Condition`: the
columns a model is conditioned on), ``settings`` and ``selection_report`` (JSON text),
``radiogen_version``; optional ``frequency_hz``, ``cutout_size``, ``inputs`` (JSON text).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from radiogen import __version__
from radiogen.atomic import atomic_path

__all__ = ["Store", "write_store", "read_store", "store_image_shape", "describe_store"]


@dataclass
class Store:
    """The content of an HDF5 store, in memory."""

    images: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def kind(self) -> str:
        return self.attrs.get("kind", "class" if "labels" in self.columns else "flux")

    @property
    def labels(self) -> np.ndarray | None:
        return self.columns.get("labels")

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.attrs.get("class_names", ()))

    @property
    def scaled_flux(self) -> np.ndarray | None:
        return self.columns.get("scaled_flux")


def _encode(value):
    if isinstance(value, (dict, list, tuple)) and not (
            isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
        return json.dumps(value)
    return value


def write_store(path: str | os.PathLike, images: np.ndarray, columns: dict | None = None,
                attrs: dict | None = None) -> Path:
    """Write a store atomically (temporary file, then rename); returns ``path``."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
    columns = columns or {}
    for name, values in columns.items():
        if len(values) != len(images):
            raise ValueError(f"column {name!r} has {len(values)} rows for {len(images)} images")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            # track_times=False: the same content gives the same bytes (reproducible re-runs)
            f.create_dataset("images", data=images, chunks=(1, *images.shape[1:]),
                             compression="gzip", compression_opts=4, shuffle=True,
                             track_times=False)
            for name, values in columns.items():
                values = np.asarray(values)
                if values.dtype.kind in "UO":
                    values = values.astype(h5py.string_dtype())
                f.create_dataset(name, data=values, track_times=False)
            f.attrs["radiogen_version"] = __version__
            for key, value in (attrs or {}).items():
                f.attrs[key] = _encode(value)
    return Path(path)


def read_store(path: str | os.PathLike) -> Store:
    """Read a whole store into memory; a clear ``ValueError`` names a file that is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such store file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not an HDF5 file ({err})") from None
    with f:
        if "images" not in f:
            raise ValueError(f"{path}: not a radiogen store (no /images dataset)")
        images = f["images"][()]
        columns = {}
        for name, dset in f.items():
            if name == "images" or not isinstance(dset, h5py.Dataset):
                continue
            values = dset[()]
            if dset.dtype.kind == "O" or h5py.check_string_dtype(dset.dtype):
                values = dset.asstr()[()]
            columns[name] = values
        attrs = {}
        for key, value in f.attrs.items():
            if isinstance(value, str) and value[:1] in "{[":
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    pass
            elif isinstance(value, np.ndarray) and value.dtype.kind in "OU":
                value = [str(v) for v in value]
            attrs[key] = value
    return Store(images, columns, attrs)


def store_image_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """The shape (N, H, W) of a store's images, read without loading them."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such store file")
    try:
        with h5py.File(path, "r") as f:
            if "images" not in f:
                raise ValueError(f"{path}: not a radiogen store (no /images dataset)")
            return tuple(f["images"].shape)
    except OSError as err:
        raise ValueError(f"{path}: not an HDF5 file ({err})") from None


def _histogram_lines(values: np.ndarray, bins: int, log: bool = False, width: int = 40) -> list[str]:
    counts, edges = np.histogram(np.log10(values) if log else values, bins=bins)
    edges = 10 ** edges if log else edges
    scale = width / max(counts.max(), 1)
    return [f"  {lo:>10.4g} … {hi:<10.4g} {n:>7} {'#' * int(round(n * scale))}"
            for lo, hi, n in zip(edges[:-1], edges[1:], counts)]


def describe_store(store: Store, bins: int = 20) -> str:
    """A text summary of a store: size, kind, geometry, the selection report (Table 1) and, for
    flux sets, the Box-Cox parameters and a histogram of the peak flux (Jy/beam) and scaled flux."""
    a = store.attrs
    n, h, w = store.images.shape
    lines = [f"{n} images of {h}×{w} px, kind {store.kind!r}",
             f"pixel scale {float(a.get('pixel_scale_arcsec', np.nan)):.4g}″, beam "
             f"{float(a.get('beam_bmaj_arcsec', np.nan)):.4g}″ × "
             f"{float(a.get('beam_bmin_arcsec', np.nan)):.4g}″, PA "
             f"{float(a.get('beam_bpa_deg', np.nan)):.4g}°"]
    if store.kind == "class" and store.labels is not None:
        counts = np.bincount(store.labels, minlength=len(store.class_names))
        lines += [f"  {name:<10} {c:>6}" for name, c in zip(store.class_names, counts)]
    report = a.get("selection_report")
    report = report if isinstance(report, dict) else {}
    if "table" in report:
        lines.append(f"{'Step':<14}{'Removed':>10}{'Total selected':>16}")
        lines += [f"{s:<14}{r:>10}{t:>16}" for s, r, t in report["table"]]
    lines += [f"Skipped: {name}: {why}" for name, why in report.get("skipped_files", [])]
    lines += [f"Note: {note}" for note in report.get("notes", [])]
    if n and store.images.min() < 0:
        lines.append(f"Background noise kept: {np.mean(store.images < 0):.0%} of the pixels "
                     f"below 0 (down to {store.images.min():.3g} of the peak)")
    if "boxcox_lambda" in a:
        lines.append(f"Box-Cox (Eq. 12): λ = {float(a['boxcox_lambda']):.4g}, mean "
                     f"{float(a['boxcox_mean']):.4g}, std {float(a['boxcox_std']):.4g}")
    for c in a.get("conditions") or []:
        lines.append(f"Condition {c['name']} ({c['unit'] or 'no unit'}): {c['transform']}"
                     + (f" λ = {c['lam']:.4g}," if c["transform"] == "boxcox" else ",")
                     + f" mean {c['mean']:.4g}, std {c['std']:.4g}, training range "
                     f"{c['lo']:.4g}–{c['hi']:.4g}")
    if "peak_flux" in store.columns and n:
        lines.append("Peak flux f̂ (Jy/beam), log-spaced bins:")
        lines += _histogram_lines(store.columns["peak_flux"], bins, log=True)
    if store.scaled_flux is not None and n:
        lines.append("Scaled flux (the model context):")
        lines += _histogram_lines(store.scaled_flux, bins)
    return "\n".join(lines)

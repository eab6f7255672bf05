"""The sources of a map: positions, peak fluxes, position angles, classes and models, given by
a catalogue or drawn (uniform positions; peak fluxes from a flux model's training histogram or
from a power-law source count)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["SourceList", "powerlaw_peaks", "draw_sources", "fill_missing", "SOURCE_TAG"]

#: Tag that keeps the seeds of drawn source properties apart from the images' and the noise's.
SOURCE_TAG = 0x534F55524345


@dataclass
class SourceList:
    """Sources to place, one entry per source (arrays of equal length).

    Attributes
    ----------
    ra, dec : ndarray of float
        Position in degrees (ICRS).
    peak_flux : ndarray of float
        Requested peak flux in Jy/beam.
    pa : ndarray of float
        Position angle in degrees, north through east; NaN where not given (drawn).
    label : ndarray of str
        Class name for a class model; "" where not given (drawn from the training classes).
    model : ndarray of str
        Model (bundled name or file) per source; "" for the map's model.
    major_axis : ndarray of float
        Observed major axis (FWHM) in arcsec for models conditioned on it; NaN where not given
        (left to the model).
    """

    ra: np.ndarray
    dec: np.ndarray
    peak_flux: np.ndarray
    pa: np.ndarray
    label: np.ndarray
    model: np.ndarray
    major_axis: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.ra)
        self.major_axis = np.asarray(np.full(n, np.nan) if self.major_axis is None
                                     else self.major_axis, float)
        self.ra, self.dec = np.asarray(self.ra, float), np.asarray(self.dec, float)
        self.peak_flux, self.pa = np.asarray(self.peak_flux, float), np.asarray(self.pa, float)
        self.label, self.model = np.asarray(self.label, str), np.asarray(self.model, str)
        lengths = {len(getattr(self, k)) for k in ("dec", "peak_flux", "pa", "label", "model",
                                                  "major_axis")}
        if lengths != {n}:
            raise ValueError("SourceList: columns of different lengths")
        bad = ~(np.isfinite(self.peak_flux) & (self.peak_flux > 0))
        if bad.any():
            raise ValueError(f"{int(bad.sum())} source(s) with a peak flux that is not a "
                             f"positive number (first: row {int(np.argmax(bad))})")

    def __len__(self) -> int:
        return len(self.ra)

    @classmethod
    def of(cls, ra, dec, peak_flux, pa=None, label=None, model=None,
           major_axis=None) -> "SourceList":
        n = len(ra)
        return cls(ra, dec, peak_flux, np.full(n, np.nan) if pa is None else pa,
                   np.full(n, "") if label is None else label,
                   np.full(n, "") if model is None else model, major_axis)


def powerlaw_peaks(n: int, alpha: float, smin: float, smax: float,
                   rng: np.random.Generator) -> np.ndarray:
    """``n`` peak fluxes from dN/dS ∝ S^−α on [smin, smax] (inverse-CDF sampling)."""
    if not 0 < smin < smax:
        raise ValueError(f"power-law counts need 0 < smin < smax, got {smin:g} and {smax:g}")
    u = rng.uniform(size=n)
    if abs(alpha - 1) < 1e-12:
        return smin * (smax / smin) ** u
    a = 1 - alpha
    return (smin ** a + u * (smax ** a - smin ** a)) ** (1 / a)


def draw_sources(geometry, n: int, seed: int, peaks=None) -> SourceList:
    """``n`` sources at uniform random pixel positions of ``geometry`` (uniform on the sky
    to the SIN projection's distortion, negligible across a few degrees) with uniform position
    angles; ``peaks`` (n values, Jy/beam) from a flux model's histogram or
    :func:`powerlaw_peaks`. Classes are left to :func:`fill_missing`."""
    rng = np.random.default_rng([int(seed), SOURCE_TAG])
    ny, nx = geometry.shape
    x = rng.uniform(-0.5, nx - 0.5, n)
    y = rng.uniform(-0.5, ny - 0.5, n)
    pa = rng.uniform(0, 360, n)
    ra, dec = geometry.pixel_to_world(x, y)
    return SourceList.of(ra, dec, peaks, pa=pa)


def fill_missing(sources: SourceList, class_names_of, class_weights_of, seed: int) -> SourceList:
    """Position angles (uniform) and, for sources of class models, classes (in the
    proportions of the model's training set where known, else uniform) where not given.
    ``class_names_of(model)`` / ``class_weights_of(model)`` give a source model's classes
    (empty for a flux model) and their weights (None where unknown)."""
    rng = np.random.default_rng([int(seed), SOURCE_TAG, 1])
    pa = sources.pa.copy()
    missing_pa = ~np.isfinite(pa)
    pa[missing_pa] = rng.uniform(0, 360, int(missing_pa.sum()))
    label = sources.label.astype(object)
    for name in np.unique(sources.model):
        names = class_names_of(name)
        todo = (sources.model == name) & (sources.label == "")
        if not names or not todo.any():
            continue
        weights = class_weights_of(name)
        p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
        label[todo] = rng.choice(names, size=int(todo.sum()), p=p)
    return replace(sources, pa=pa, label=label.astype(str))

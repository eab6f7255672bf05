"""Putting generated cut-outs on the map: from [0, 1] to Jy/beam, rotated by position angle,
resampled to the map's pixels at the source's sub-pixel position, added with edge clipping.

Conventions: arrays are indexed [y, x] with y up (FITS order, as the cut-outs are made); the
source position is the cut-out's centre (training cut-outs are centred on their catalogue
position); a position angle rotates the cut-out as generated counterclockwise on the map, from
north (+y) through east (−x), as astronomers measure it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["to_jy_per_beam", "Stamp", "place", "add_stamp", "measure"]


#: Cut-out pixels below the background floor plus this many of its noise σ are set to 0.
FLOOR_SIGMAS = 3.0


def to_jy_per_beam(image01: np.ndarray, peak_flux: float) -> np.ndarray:
    """A generated image in [0, 1] as a source in Jy/beam whose peak is ``peak_flux``.

    The cut-out's own background is removed: its floor is the sigma-clipped median plus
    :data:`FLOOR_SIGMAS` sigma-clipped standard deviations (most of a cut-out is empty sky), the
    floor is subtracted and what falls below it set to 0, as MiraBest's 3σ clipping does, so
    that neither a pedestal nor the cut-out's noise, scaled with a bright source's peak, leaves
    a square on the map (the map has noise of its own); the rest is scaled so that its maximum
    is ``peak_flux``. The same for both kinds of model: a flux model's images are min-max
    scaled sources too (Eq. 11), conditioned on the peak."""
    from astropy.stats import sigma_clipped_stats
    image = np.asarray(image01, dtype=np.float64)
    _, median, std = sigma_clipped_stats(image, sigma=3.0, maxiters=5)
    source = np.clip(image - (median + FLOOR_SIGMAS * std), 0, None)
    top = source.max()
    if not top > 0:                      # a flat image: nothing above its floor
        return np.zeros_like(source)
    return source * (float(peak_flux) / top)


@dataclass
class Stamp:
    """A source resampled onto the map grid: ``data`` covers map pixels
    [y0, y0 + h) × [x0, x0 + w) (0-based, may reach beyond the map)."""

    data: np.ndarray
    y0: int
    x0: int


def stamp_size(cutout_size: int, zoom: float) -> int:
    """Side of a stamp that holds a rotated cut-out of ``cutout_size`` model pixels, ``zoom``
    map pixels per model pixel."""
    return int(math.ceil(cutout_size * math.sqrt(2) * zoom)) + 2


def place(cutout: np.ndarray, x: float, y: float, pa_deg: float = 0.0,
          zoom: float = 1.0) -> Stamp:
    """Resample ``cutout`` (H, W; Jy/beam) centred on map pixel (x, y), rotated by ``pa_deg``
    and enlarged ``zoom`` times (model pixel scale / map pixel scale), by bilinear
    interpolation: flux is conserved exactly by a shift, to ~1% by a rotation of a
    beam-sampled source."""
    cutout = np.asarray(cutout, dtype=np.float64)
    size = stamp_size(max(cutout.shape), zoom)
    y0, x0 = math.floor(y) - size // 2, math.floor(x) - size // 2
    centre_out = np.array([y - y0, x - x0])
    centre_in = (np.array(cutout.shape, dtype=np.float64) - 1) / 2
    theta = math.radians(pa_deg)
    rotation = np.array([[math.cos(theta), -math.sin(theta)],
                         [math.sin(theta), math.cos(theta)]])
    matrix = rotation / zoom                 # map pixel offset → cut-out pixel offset
    offset = centre_in - matrix @ centre_out
    data = ndimage.affine_transform(cutout, matrix, offset, output_shape=(size, size), order=1,
                                    mode="constant", cval=0.0)
    return Stamp(data.astype(np.float32), y0, x0)


def _overlap(stamp: Stamp, y0: int, y1: int, x0: int, x1: int):
    """Slices into the stamp and into the region [y0, y1) × [x0, x1) where both meet, or
    None where they do not."""
    h, w = stamp.data.shape
    oy0, oy1 = max(y0, stamp.y0), min(y1, stamp.y0 + h)
    ox0, ox1 = max(x0, stamp.x0), min(x1, stamp.x0 + w)
    if oy0 >= oy1 or ox0 >= ox1:
        return None
    return ((slice(oy0 - stamp.y0, oy1 - stamp.y0), slice(ox0 - stamp.x0, ox1 - stamp.x0)),
            (slice(oy0 - y0, oy1 - y0), slice(ox0 - x0, ox1 - x0)))


def add_stamp(tile: np.ndarray, bounds: tuple[int, int, int, int], stamp: Stamp) -> bool:
    """Add the part of ``stamp`` inside the tile (``bounds`` = y0, y1, x0, x1 of the map)
    to ``tile`` in place; whether any of it fell there."""
    where = _overlap(stamp, *bounds)
    if where is None:
        return False
    tile[where[1]] += stamp.data[where[0]]
    return True


def measure(stamp: Stamp, shape: tuple[int, int], beam_area_pixels: float) -> dict:
    """Peak (Jy/beam) and integrated flux (Jy) of the placed source inside the map of
    ``shape``, and the fraction of its flux that lies inside (1 unless clipped at an edge)."""
    where = _overlap(stamp, 0, shape[0], 0, shape[1])
    total = float(np.sum(stamp.data, dtype=np.float64))
    inside = stamp.data[where[0]] if where is not None else np.zeros(0, np.float32)
    flux_in = float(np.sum(inside, dtype=np.float64))
    return {"peak_flux": float(inside.max()) if inside.size else 0.0,
            "total_flux": flux_in / beam_area_pixels,
            "in_map_fraction": flux_in / total if total > 0 else 0.0}

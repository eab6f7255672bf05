"""Writing a map larger than memory: the FITS file is laid out on disk first (header, then
float32 pixels) and filled tile by tile through a memory map, inside an atomic write, with a
block-maximum preview for the quick-look PNG gathered on the way."""

from __future__ import annotations

import contextlib
import math

import numpy as np
from astropy.io import fits

from radiogen.atomic import atomic_path

__all__ = ["MapWriter", "open_map"]

#: The longest side of the quick-look preview in pixels.
PREVIEW_MAX = 1024


class MapWriter:
    """Tiles written into a memory-mapped FITS image; see :func:`open_map`."""

    def __init__(self, pixels: np.ndarray, shape: tuple[int, int]):
        self.pixels = pixels
        self.factor = max(1, math.ceil(max(shape) / PREVIEW_MAX))
        f = self.factor
        self.preview = np.full((math.ceil(shape[0] / f), math.ceil(shape[1] / f)), -np.inf,
                               dtype=np.float32)

    def write(self, bounds: tuple[int, int, int, int], tile: np.ndarray) -> None:
        """Store ``tile`` at map pixels ``bounds`` = (y0, y1, x0, x1)."""
        y0, y1, x0, x1 = bounds
        tile = tile.astype(np.float32)
        self.pixels[y0:y1, x0:x1] = tile
        self._preview(y0, x0, tile)

    def _preview(self, y0: int, x0: int, tile: np.ndarray) -> None:
        """The maximum of every preview block (``factor`` pixels on a side, on the global
        grid, so the preview does not depend on the tiling); NaN pixels ignored."""
        f = self.factor
        finite = np.where(np.isfinite(tile), tile, -np.inf)
        rows = np.unique(np.r_[0, np.flatnonzero((y0 + np.arange(tile.shape[0])) % f == 0)])
        cols = np.unique(np.r_[0, np.flatnonzero((x0 + np.arange(tile.shape[1])) % f == 0)])
        blocks = np.maximum.reduceat(np.maximum.reduceat(finite, rows, axis=0), cols, axis=1)
        by, bx = (y0 + rows) // f, (x0 + cols) // f
        region = self.preview[by[0]:by[-1] + 1, bx[0]:bx[-1] + 1]
        np.maximum(region, blocks, out=region)


@contextlib.contextmanager
def open_map(path, shape: tuple[int, int], header: fits.Header):
    """Yield a :class:`MapWriter` for a float32 FITS image of ``shape`` (ny, nx) with
    ``header``; the file appears at ``path`` only when the block ends without error."""
    ny, nx = shape
    primary = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2), ("NAXIS1", nx),
                           ("NAXIS2", ny)])
    structural = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", ""}
    for card in header.cards:
        if card.keyword not in structural:
            primary.append(card)
    head = primary.tostring().encode("ascii")
    size = ny * nx * 4
    padded = math.ceil(size / 2880) * 2880
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(head)
            f.truncate(len(head) + padded)          # zeros; FITS data pad with zeros too
        pixels = np.memmap(tmp, dtype=">f4", mode="r+", offset=len(head), shape=(ny, nx))
        try:
            yield MapWriter(pixels, shape)
            pixels.flush()
        finally:
            del pixels

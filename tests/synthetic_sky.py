"""Synthetic radio mosaics for the data-pipeline tests: Gaussian sources of known peak flux
(Jy/beam) at known pixels, Gaussian noise, optional NaN regions, written as FITS with a SIN WCS,
1.5″ pixels and a 6″ beam like LoTSS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

PIXEL_ARCSEC = 1.5
BEAM_ARCSEC = 6.0
NOISE = 1e-4  # Jy/beam
SIGMA_PX = BEAM_ARCSEC / PIXEL_ARCSEC / (2 * np.sqrt(2 * np.log(2)))


@dataclass
class Source:
    name: str
    x: int          # zero-based pixel column in the mosaic
    y: int          # zero-based pixel row
    peak: float     # Jy/beam


def sky_wcs(shape, ra=150.0, dec=30.0) -> WCS:
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crpix = [nx / 2, ny / 2]
    w.wcs.crval = [ra, dec]
    w.wcs.cdelt = [-PIXEL_ARCSEC / 3600, PIXEL_ARCSEC / 3600]
    w.wcs.cunit = ["deg", "deg"]
    return w


def render(shape, sources, rng, nan_box=None, noise=NOISE) -> np.ndarray:
    """Noise plus a circular Gaussian beam of the given peak at every source."""
    ny, nx = shape
    image = noise * rng.standard_normal(shape)
    yy, xx = np.mgrid[:ny, :nx]
    for s in sources:
        image += s.peak * np.exp(-((xx - s.x) ** 2 + (yy - s.y) ** 2) / (2 * SIGMA_PX ** 2))
    if nan_box is not None:
        (y0, y1), (x0, x1) = nan_box
        image[y0:y1, x0:x1] = np.nan
    return image.astype(np.float32)


def write_mosaic(path, image, wcs, bunit="JY/BEAM"):
    header = wcs.to_header()
    header["BUNIT"] = bunit
    header["BMAJ"] = BEAM_ARCSEC / 3600
    header["BMIN"] = BEAM_ARCSEC / 3600
    header["BPA"] = 0.0
    header["RESTFRQ"] = 1.44e8
    fits.PrimaryHDU(image, header).writeto(path)
    return path


def sky_position(wcs, x, y):
    ra, dec = wcs.pixel_to_world_values(x, y)
    return float(ra), float(dec)


def write_catalog_csv(path, rows, columns=("Source_Name", "RA", "DEC", "Mosaic_ID")):
    """Rows of values in ``columns`` order; None is written as an empty (missing) field."""
    with open(path, "w") as f:
        f.write(",".join(columns) + "\n")
        for row in rows:
            f.write(",".join("" if v is None else (f"{v:.10f}" if isinstance(v, float) else str(v))
                             for v in row) + "\n")
    return path

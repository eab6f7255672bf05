"""The pixel grid of a survey map: size, celestial WCS (SIN projection), beam and frequency,
and its division into tiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from radiogen.data.fits_io import Beam, physical_cards, sky_header

__all__ = ["MapGeometry", "tiles"]


@dataclass(frozen=True)
class MapGeometry:
    """Where a map lies on the sky.

    Attributes
    ----------
    shape : (ny, nx)
        Map size in pixels.
    wcs : astropy.wcs.WCS
        Celestial WCS; pixel (0, 0) is the centre of the first pixel (astropy's convention).
    pixel_scale_arcsec : float
        Pixel side in arcsec.
    beam : Beam
        Restoring beam (FWHM axes in arcsec, position angle in degrees).
    frequency_hz : float
        Observing frequency.
    """

    shape: tuple[int, int]
    wcs: WCS
    pixel_scale_arcsec: float
    beam: Beam
    frequency_hz: float

    @classmethod
    def centred(cls, size: tuple[int, int], pixel_scale_arcsec: float, ra_deg: float,
                dec_deg: float, beam: Beam, frequency_hz: float) -> "MapGeometry":
        """A SIN-projected map of ``size`` (ny, nx) centred on RA/Dec, north up, east left."""
        header = sky_header(size, pixel_scale_arcsec, ra_deg, dec_deg, "SIN")
        return cls(tuple(int(n) for n in size), WCS(header), float(pixel_scale_arcsec), beam,
                   float(frequency_hz))

    def header(self):
        """FITS header: the WCS, ``BUNIT = 'JY/BEAM'``, the beam and the frequency."""
        header = self.wcs.to_header()
        for key, value in physical_cards(self.beam, self.frequency_hz).items():
            header[key] = value
        return header

    def world_to_pixel(self, ra_deg, dec_deg) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel coordinates (x, y) of sky positions in degrees."""
        x, y = self.wcs.all_world2pix(np.asarray(ra_deg, float), np.asarray(dec_deg, float), 0)
        return np.asarray(x, float), np.asarray(y, float)

    def pixel_to_world(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """RA, Dec in degrees of 0-based pixel coordinates."""
        ra, dec = self.wcs.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
        return np.asarray(ra, float), np.asarray(dec, float)

    @property
    def beam_area_pixels(self) -> float:
        return self.beam.area_pixels(self.pixel_scale_arcsec)


def tiles(shape: tuple[int, int], tile: int):
    """Tile rows of the map, each a list of (y0, y1, x0, x1), row-major, ``tile`` pixels on a
    side (smaller at the top and right edges)."""
    ny, nx = shape
    return [[(y0, min(y0 + tile, ny), x0, min(x0 + tile, nx)) for x0 in range(0, nx, tile)]
            for y0 in range(0, ny, tile)]

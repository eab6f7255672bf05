"""Map noise: white noise convolved with the beam, rescaled to a requested rms, made tile by
tile so that any tiling gives the same map.

The white noise is drawn in fixed blocks of :data:`NOISE_BLOCK` pixels on the map's global pixel
grid, each from its own seed (the map seed and the block's indices), including blocks beyond
the map edges that the convolution reaches into. A tile takes the white noise of its pixels and
of a margin of the kernel's half width around them, and convolves: so its pixels are those of
the whole map convolved at once, whatever the tile size, to the rounding of the FFT (~1e-7 of
the rms).
"""

from __future__ import annotations

import math

import numpy as np
from astropy.convolution import Gaussian2DKernel
from scipy.signal import fftconvolve

from radiogen.data.fits_io import Beam

__all__ = ["NOISE_BLOCK", "beam_kernel", "CorrelatedNoise"]

#: Side of the blocks of white noise (pixels), each with its own seed; fixed, so that the noise
#: does not depend on the tile size.
NOISE_BLOCK = 256
#: Offset added to block indices (which are negative left of and below the map) in the seed.
_BLOCK_OFFSET = 2**20
#: Tag that keeps the noise seeds apart from the sources' seeds.
_NOISE_TAG = 0x4E4F495345


def _fwhm_to_sigma(fwhm: float) -> float:
    return fwhm / math.sqrt(8 * math.log(2))


def beam_kernel(beam: Beam, pixel_scale_arcsec: float) -> np.ndarray:
    """The beam as an odd-sized Gaussian kernel in pixels (out to 4σ of the major axis),
    normalised so that Σ k² = 1: convolving unit white noise with it gives unit variance.

    The major axis points at position angle BPA, north (+y) through east (−x)."""
    major = _fwhm_to_sigma(beam.bmaj_arcsec / pixel_scale_arcsec)
    minor = _fwhm_to_sigma(beam.bmin_arcsec / pixel_scale_arcsec)
    half = max(1, math.ceil(4 * major))
    kernel = Gaussian2DKernel(x_stddev=minor, y_stddev=major, theta=math.radians(beam.bpa_deg),
                              x_size=2 * half + 1, y_size=2 * half + 1).array
    return kernel / np.sqrt(np.sum(kernel ** 2))


class CorrelatedNoise:
    """Gaussian noise of standard deviation ``rms`` (Jy/beam) correlated by the beam."""

    def __init__(self, rms: float, beam: Beam, pixel_scale_arcsec: float, seed: int):
        if not rms >= 0:
            raise ValueError(f"noise rms must be ≥ 0 Jy/beam, got {rms}")
        self.rms, self.seed = float(rms), int(seed)
        self.kernel = beam_kernel(beam, pixel_scale_arcsec)
        self.half = self.kernel.shape[0] // 2

    def _block(self, by: int, bx: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, _NOISE_TAG, by + _BLOCK_OFFSET,
                                     bx + _BLOCK_OFFSET])
        return rng.standard_normal((NOISE_BLOCK, NOISE_BLOCK), dtype=np.float64)

    def white(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The unit white noise of global pixels [y0, y1) × [x0, x1) (any integers)."""
        out = np.empty((y1 - y0, x1 - x0), dtype=np.float64)
        for by in range(y0 // NOISE_BLOCK, (y1 - 1) // NOISE_BLOCK + 1):
            for bx in range(x0 // NOISE_BLOCK, (x1 - 1) // NOISE_BLOCK + 1):
                block = self._block(by, bx)
                gy0, gx0 = by * NOISE_BLOCK, bx * NOISE_BLOCK
                sy0, sy1 = max(y0, gy0), min(y1, gy0 + NOISE_BLOCK)
                sx0, sx1 = max(x0, gx0), min(x1, gx0 + NOISE_BLOCK)
                out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = \
                    block[sy0 - gy0:sy1 - gy0, sx0 - gx0:sx1 - gx0]
        return out

    def tile(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The noise of map pixels [y0, y1) × [x0, x1), float64, in Jy/beam."""
        if self.rms == 0:
            return np.zeros((y1 - y0, x1 - x0))
        h = self.half
        white = self.white(y0 - h, y1 + h, x0 - h, x1 + h)
        return self.rms * fftconvolve(white, self.kernel, mode="valid")

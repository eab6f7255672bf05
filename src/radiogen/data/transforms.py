"""Pixel transforms shared by every dataset: crops, negative clipping and min-max scaling
(Eq. 11) with its inverse (Section 3.1), the optional asinh stretch of the denoiser's range, and
the background clip of the FIRST images."""

from __future__ import annotations

import numpy as np

__all__ = ["center_crop", "clip_negative", "minmax_scale", "minmax_unscale", "recorded_stretch",
           "to_model_range", "from_model_range", "clip_background"]


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Central ``size``×``size`` crop of a 2-d image (the last two axes)."""
    h, w = image.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"cannot crop {size}×{size} pixels from a {h}×{w} image")
    top, left = (h - size) // 2, (w - size) // 2
    return image[..., top:top + size, left:left + size]


def clip_negative(image: np.ndarray) -> np.ndarray:
    """Set negative pixels to 0 (Section 3.1: artefacts of the image reconstruction)."""
    return np.maximum(image, 0)


def minmax_scale(image: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Eq. (11): x_scaled = (x − min x) / (max x − min x), per image, as float32.

    ``reference``: take min x and max x from this image instead (e.g. the clipped version of
    ``image``, whose negative noise then scales below 0). A constant reference (max = min) has
    nothing to scale by and gives all zeros.
    """
    image = np.asarray(image, dtype=np.float32)
    ref = image if reference is None else np.asarray(reference, dtype=np.float32)
    lo, hi = ref.min(axis=(-2, -1), keepdims=True), ref.max(axis=(-2, -1), keepdims=True)
    span = hi - lo
    return np.where(span > 0, (image - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def minmax_unscale(x_scaled: np.ndarray, max_x: float, min_x: float = 0.0) -> np.ndarray:
    """Inverse of Eq. (11): x = x_scaled · (max x − min x) + min x.

    Parameters
    ----------
    x_scaled : ndarray
        Image in [0, 1].
    max_x, min_x : float
        The original image maximum and minimum (e.g. peak flux in Jy/beam, and 0 after negative
        clipping).
    """
    return np.asarray(x_scaled, dtype=np.float64) * (max_x - min_x) + min_x


def recorded_stretch(meta: dict) -> float:
    """The asinh stretch a that a model file's or training set's metadata records
    (``data.stretch``; 0: the linear range, the paper's)."""
    return float(meta.get("stretch", 0.0))


def to_model_range(image01, stretch: float = 0.0):
    """[0, 1] → [−1, 1], the range the denoiser is trained on (Section 4.2).

    ``stretch`` a > 0 maps the pixels through astropy's ``AsinhStretch(a)``,
    asinh(x / a) / asinh(1 / a), first (not in the paper; a model option, ``data.stretch``):
    linear below about a, logarithmic above, so that faint emission (a few per cent of the
    peak) spans more of the denoiser's range and weighs more in the loss of Eq. (22). The map
    is odd, so negative noise (``--keep-noise`` stores) stays below −1 as without it; 0 and 1
    are kept. Numpy arrays in, float32 out.
    """
    if stretch:
        image01 = _asinh_stretch(stretch)(np.asarray(image01, np.float32), clip=False)
        image01 = np.asarray(image01, np.float32)
    return image01 * 2 - 1


def from_model_range(image, stretch: float = 0.0):
    """[−1, 1] → [0, 1] after clamping, as after sampling (Section 4.3); with ``stretch`` a > 0
    the inverse of :func:`to_model_range`'s asinh stretch, a·sinh(y·asinh(1 / a))."""
    image01 = (image.clip(-1, 1) + 1) / 2
    if stretch:
        image01 = np.asarray(_asinh_stretch(stretch).inverse(np.asarray(image01), clip=False),
                             np.float32).clip(0, 1)
    return image01


def _asinh_stretch(a: float):
    if not 0 < a <= 1:
        raise ValueError(f"asinh stretch a must be in (0, 1], got {a}")
    from astropy.visualization import AsinhStretch   # imports matplotlib: only where needed
    return AsinhStretch(a)


def clip_background(image01, threshold: float):
    """The FIRST dataset's background clip, applied to images in [0, 1]: pixels below
    ``threshold`` are fixed to it, then the range [threshold, 1] is stretched back to [0, 1].

    Griese et al. (2023) fixed every pixel below three times the local RMS noise to that value
    before min-max scaling (Section 3.2), so real FIRST backgrounds are exactly 0; a denoiser
    leaves a faint positive haze there instead. Applied to generated images, this restores the
    zero background; ``threshold`` 0 leaves the images as they are. Pixels at 1 stay at 1, and
    the map is continuous and monotonic, so it keeps the peak and the source's shape above the
    threshold.
    """
    if not 0 <= threshold < 1:
        raise ValueError(f"background clip threshold must be in [0, 1), got {threshold}")
    if threshold == 0:
        return image01
    return (image01.clip(threshold, 1) - threshold) / (1 - threshold)

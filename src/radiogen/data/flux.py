"""Peak-flux conditioning (Section 3.1, Eq. 12): the Box-Cox power transform of the image
maxima f̂ (Jy/beam), standardised to zero mean and unit variance, its inverse, and the paper's
way of drawing conditioning values from the training distribution (Section 6.1).

Forward, with λ fitted by maximum likelihood on the training peaks::

    f̂_scaled = (f̂^λ − 1) / λ                 # Eq. (12)   (ln f̂ for λ = 0)
    z        = (f̂_scaled − μ) / s             # standardisation; z is the model's context

Inverse: f̂_scaled = z·s + μ, then f̂ = (λ·f̂_scaled + 1)^(1/λ).

scipy is imported inside the functions that use it: importing ``scipy.special`` and
``scipy.stats`` costs 0.8–1 s on a 2-core CPU, and sampling from a class model needs neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BoxCox", "fit_boxcox", "boxcox_forward", "boxcox_inverse", "draw_scaled_flux",
           "draw_from_histogram"]


@dataclass(frozen=True)
class BoxCox:
    """Parameters of the standardised Box-Cox transform (Eq. 12).

    Attributes
    ----------
    lam : float
        The Box-Cox exponent λ (the paper finds −0.23 on LoTSS-DR2).
    mean, std : float
        Mean μ and standard deviation s of f̂_scaled over the training set.
    """

    lam: float
    mean: float
    std: float

    def to_attrs(self) -> dict:
        """The store attributes ``boxcox_lambda``, ``boxcox_mean``, ``boxcox_std``."""
        return {"boxcox_lambda": self.lam, "boxcox_mean": self.mean, "boxcox_std": self.std}

    @classmethod
    def from_attrs(cls, attrs: dict) -> "BoxCox":
        """Read the parameters back from store attributes (see :meth:`to_attrs`)."""
        try:
            return cls(float(attrs["boxcox_lambda"]), float(attrs["boxcox_mean"]),
                       float(attrs["boxcox_std"]))
        except KeyError as err:
            raise ValueError(f"no Box-Cox parameters: attribute {err} missing "
                             "(is this a flux store?)") from None


def _check_peaks(f_hat: np.ndarray) -> np.ndarray:
    f_hat = np.asarray(f_hat, dtype=np.float64)
    if not np.all(np.isfinite(f_hat) & (f_hat > 0)):
        bad = f_hat[~(np.isfinite(f_hat) & (f_hat > 0))]
        raise ValueError(f"Box-Cox needs finite positive peak fluxes; got {bad[:5].tolist()}")
    return f_hat


def fit_boxcox(f_hat: np.ndarray) -> BoxCox:
    """Fit λ by maximum likelihood (scipy) and the standardisation μ, s.

    Parameters
    ----------
    f_hat : array_like
        Peak fluxes f̂ of the training images in Jy/beam, all > 0; at least two distinct values.
    """
    f_hat = _check_peaks(f_hat)
    if np.unique(f_hat).size < 2:
        raise ValueError("Box-Cox needs at least two distinct peak fluxes to fit λ")
    from scipy import special, stats  # here, not at the top: see the module's docstring

    lam = float(stats.boxcox_normmax(f_hat, method="mle"))
    f_scaled = special.boxcox(f_hat, lam)                               # Eq. (12)
    return BoxCox(lam, float(f_scaled.mean()), float(f_scaled.std()))


def boxcox_forward(f_hat, params: BoxCox) -> np.ndarray:
    """Peak flux f̂ (Jy/beam) → standardised scaled flux z, the model context.

    Parameters
    ----------
    f_hat : float or array_like
        Peak flux in Jy/beam, > 0.
    params : BoxCox
        The parameters stored with the training data.
    """
    from scipy import special

    f_scaled = special.boxcox(_check_peaks(f_hat), params.lam)         # Eq. (12)
    return (f_scaled - params.mean) / params.std


def boxcox_inverse(z, params: BoxCox) -> np.ndarray:
    """Standardised scaled flux z → peak flux f̂ in Jy/beam (inverse of :func:`boxcox_forward`).

    Raises ``ValueError`` for z beyond the transform's range: for λ < 0, f̂_scaled must stay
    below −1/λ (f̂ → ∞ there), for λ > 0 above −1/λ (f̂ → 0).
    """
    from scipy import special

    f_scaled = np.asarray(z, dtype=np.float64) * params.std + params.mean
    f_hat = special.inv_boxcox(f_scaled, params.lam)
    if not np.all(np.isfinite(f_hat) & (f_hat > 0)):
        limit = (-1 / params.lam - params.mean) / params.std if params.lam else np.inf
        raise ValueError(f"scaled flux outside the range of the Box-Cox transform "
                         f"(λ = {params.lam:.4g}: z must be {'<' if params.lam < 0 else '>'} "
                         f"{limit:.4g})")
    return f_hat


def draw_from_histogram(counts: np.ndarray, edges: np.ndarray, n: int,
                        rng: np.random.Generator) -> np.ndarray:
    """Pick ``n`` bins with probability proportional to ``counts``, then a value uniform within
    each picked bin (Section 6.1).

    Parameters
    ----------
    counts : array_like, shape (k,)
        Histogram counts (e.g. a model card's 100-bin histogram of the training scaled flux).
    edges : array_like, shape (k + 1,)
        Bin edges, increasing.
    n : int
        Number of values to draw.
    rng : numpy.random.Generator
        Source of randomness (seed it for reproducible draws).
    """
    counts, edges = np.asarray(counts, dtype=np.float64), np.asarray(edges, dtype=np.float64)
    if counts.ndim != 1 or edges.shape != (counts.size + 1,) or not counts.sum() > 0:
        raise ValueError("need k > 0 counts with a positive sum and k + 1 bin edges")
    k = rng.choice(counts.size, size=n, p=counts / counts.sum())
    return rng.uniform(edges[k], edges[k + 1])


def draw_scaled_flux(scaled_flux: np.ndarray, n: int, rng: np.random.Generator,
                     bins: int = 100) -> np.ndarray:
    """Draw conditioning values the paper's way (Section 6.1): a ``bins``-bin histogram of the
    training scaled flux, a bin picked with probability proportional to its count, then a value
    uniform within that bin.

    Parameters
    ----------
    scaled_flux : array_like
        The training set's standardised scaled fluxes z (the store's ``/scaled_flux``).
    n : int
        Number of values to draw.
    rng : numpy.random.Generator
        Source of randomness (seed it for reproducible draws).
    bins : int
        Number of histogram bins (100 in the paper).
    """
    scaled_flux = np.asarray(scaled_flux, dtype=np.float64)
    scaled_flux = scaled_flux[np.isfinite(scaled_flux)]
    if scaled_flux.size == 0:
        raise ValueError("no finite scaled flux values to draw from")
    counts, edges = np.histogram(scaled_flux, bins=bins)
    return draw_from_histogram(counts, edges, n, rng)

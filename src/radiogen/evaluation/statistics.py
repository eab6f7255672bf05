"""Distributions of single-image quantities, real against generated (Section 5.1, Fig. 12–16).

Each quantity (pixel values, per-image mean and standard deviation, PyBDSF model flux,
A50%) is compared three ways: histograms with 1σ frequentist Poisson intervals (astropy's
``poisson_conf_interval``, as in the paper's figures), the Wasserstein-1 distance (in the units of
the quantity), and the two-sample Kolmogorov–Smirnov test (statistic D in [0, 1] and p-value).

The KS p-value assumes independent values. Per-image quantities are; the pixels of one image are
not (a source spans many pixels), so for the pixel distribution read D and W1 as distances and
do not read its p-value as a test: with 10^6 correlated pixels it is tiny for any two sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "Histogram",
    "Comparison",
    "PIXEL_EDGES",
    "MAX_DISTANCE_VALUES",
    "histogram",
    "poisson_interval",
    "image_means",
    "image_stds",
    "island_counts",
    "compare",
    "rank_correlation",
]

#: Bins of pixel values in [0, 1] (Fig. 12).
PIXEL_EDGES = np.linspace(0.0, 1.0, 101)
#: Distances on more values than this use a seeded random subset of this size per set: the
#: pixel distribution of 10^5 images holds 6·10^8 values, and D and W1 are converged long before.
MAX_DISTANCE_VALUES = 1_000_000


@dataclass
class Histogram:
    """Counts per bin with their 1σ Poisson interval.

    Attributes
    ----------
    edges : ndarray, shape (B + 1,)
    counts : ndarray, int64, shape (B,)
    lower, upper : ndarray, float64, shape (B,)
        1σ frequentist confidence interval of each count.
    n : int
        Number of values counted (including any outside the edges).
    """

    edges: np.ndarray
    counts: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n: int

    def density(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts, lower and upper bounds divided by n × bin width (unit area)."""
        norm = max(self.n, 1) * np.diff(self.edges)
        return self.counts / norm, self.lower / norm, self.upper / norm

    def to_dict(self) -> dict:
        return {"edges": self.edges.tolist(), "counts": self.counts.tolist(),
                "lower": self.lower.tolist(), "upper": self.upper.tolist(), "n": self.n}


@dataclass
class Comparison:
    """One quantity, real against generated: histograms and distances.

    Attributes
    ----------
    real, generated : Histogram
    wasserstein : float
        Wasserstein-1 (earth mover's) distance, in the units of the quantity.
    ks_statistic, ks_pvalue : float
        Two-sample Kolmogorov–Smirnov statistic D and its p-value.
    """

    real: Histogram
    generated: Histogram
    wasserstein: float
    ks_statistic: float
    ks_pvalue: float

    def distances(self) -> dict:
        return {"wasserstein": self.wasserstein, "ks_statistic": self.ks_statistic,
                "ks_pvalue": self.ks_pvalue, "n_real": self.real.n, "n_generated": self.generated.n}

    def to_dict(self) -> dict:
        return {**self.distances(), "real": self.real.to_dict(),
                "generated": self.generated.to_dict()}


def poisson_interval(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1σ frequentist confidence interval of Poisson counts (astropy; Section 6.1, footnote 2)."""
    from astropy.stats import poisson_conf_interval

    lower, upper = poisson_conf_interval(np.asarray(counts), interval="frequentist-confidence",
                                         sigma=1)
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


def histogram(values: np.ndarray, edges: np.ndarray) -> Histogram:
    """Histogram of ``values`` on ``edges`` with 1σ Poisson intervals."""
    values = np.asarray(values).reshape(-1)
    counts, _ = np.histogram(values, bins=edges)
    lower, upper = poisson_interval(counts)
    return Histogram(np.asarray(edges, dtype=np.float64), counts.astype(np.int64), lower, upper,
                     len(values))


def image_means(images: np.ndarray) -> np.ndarray:
    """Mean pixel value of every image (Fig. 13)."""
    return np.asarray(images, dtype=np.float64).mean(axis=(-2, -1))


def image_stds(images: np.ndarray) -> np.ndarray:
    """Standard deviation of the pixel values of every image (Fig. 14)."""
    return np.asarray(images, dtype=np.float64).std(axis=(-2, -1))


def island_counts(images: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Number of islands in every image: 8-connected regions of pixels above ``fraction`` of the
    image's peak. A real FRII is one or two islands (lobes, sometimes joined by the core), an
    FRI or Bent source one to three; a generated source split into several blobs has more. On
    images whose background is already clipped (the FIRST PNGs were clipped at 3σ) this needs
    no noise model, unlike PyBDSF's islands, and is cheap enough for thousands of images."""
    from scipy import ndimage

    if not 0 < fraction < 1:
        raise ValueError(f"island threshold must be a fraction of the peak in (0, 1), got {fraction}")
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"island_counts needs images (N, H, W), got shape {images.shape}")
    eight_connected = np.ones((3, 3), dtype=bool)
    peaks = images.max(axis=(-2, -1))
    return np.array([ndimage.label(image > fraction * peak, structure=eight_connected)[1]
                     for image, peak in zip(images, peaks)], dtype=np.int64)


def _shared_edges(a: np.ndarray, b: np.ndarray, bins: int) -> np.ndarray:
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    return np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)


def _subsample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(values) <= MAX_DISTANCE_VALUES:
        return values
    return rng.choice(values, size=MAX_DISTANCE_VALUES, replace=False)


def compare(real: np.ndarray, generated: np.ndarray, edges: np.ndarray | int = 50,
            seed: int = 0) -> Comparison:
    """Histograms and distances of one quantity, real against generated.

    Parameters
    ----------
    real, generated : array_like
        Values of the quantity (any shape; flattened). NaN values are an error: leave out
        images without a value (e.g. PyBDSF failures) before calling.
    edges : ndarray or int
        Bin edges, or a number of equal bins spanning both sets.
    seed : int
        Seed of the subset drawn when a set has more than :data:`MAX_DISTANCE_VALUES` values.
    """
    real = np.asarray(real, dtype=np.float64).reshape(-1)
    generated = np.asarray(generated, dtype=np.float64).reshape(-1)
    for name, values in (("real", real), ("generated", generated)):
        if len(values) == 0:
            raise ValueError(f"no {name} values to compare")
        if not np.isfinite(values).all():
            raise ValueError(f"{name} values hold NaN or infinite entries")
    if np.isscalar(edges) or np.ndim(edges) == 0:
        edges = _shared_edges(real, generated, int(edges))
    rng = np.random.default_rng(seed)
    a, b = _subsample(real, rng), _subsample(generated, rng)
    ks = stats.ks_2samp(a, b)
    return Comparison(histogram(real, edges), histogram(generated, edges),
                      float(stats.wasserstein_distance(a, b)), float(ks.statistic),
                      float(ks.pvalue))


def rank_correlation(x: np.ndarray, y: np.ndarray) -> dict:
    """Spearman's ρ and Kendall's τ of two quantities, with their p-values.

    Used for Δ+ (Eq. 26) against f̂_scaled (Eq. 12): the paper expects a negative correlation
    (Section 6.2, Fig. 17).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} values of x for {len(y)} values of y")
    if len(x) < 3:
        raise ValueError(f"a rank correlation needs at least 3 points, got {len(x)}")
    rho = stats.spearmanr(x, y)
    tau = stats.kendalltau(x, y)
    return {"spearman_rho": float(rho.statistic), "spearman_pvalue": float(rho.pvalue),
            "kendall_tau": float(tau.statistic), "kendall_pvalue": float(tau.pvalue),
            "n": int(len(x))}

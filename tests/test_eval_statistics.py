"""Distributions and distances of Section 5.1 (radiogen.evaluation.statistics)."""

import numpy as np
import pytest

from radiogen.evaluation.statistics import (PIXEL_EDGES, compare, histogram, image_means,
                                            image_stds, island_counts, poisson_interval,
                                            rank_correlation)


def _images(rng, n, brightness=0.3):
    """Noisy Gaussian blobs of random width whose mean brightness is set by ``brightness``."""
    r, c = np.mgrid[:32, :32] - 15.5
    width = rng.uniform(2, 6, size=(n, 1, 1))
    blobs = np.exp(-(r ** 2 + c ** 2) / (2 * width ** 2))
    return np.clip(brightness * blobs + rng.normal(0.1, 0.03, (n, 32, 32)), 0, 1)


def test_same_distribution_gives_small_distances_and_shifted_large():
    rng = np.random.default_rng(1)
    a, b, shifted = _images(rng, 400), _images(rng, 400), _images(rng, 400, brightness=0.6)
    for quantity in (lambda x: x, image_means, image_stds):
        same = compare(quantity(a), quantity(b), 40)
        other = compare(quantity(a), quantity(shifted), 40)
        assert same.wasserstein < other.wasserstein / 5
        assert same.ks_statistic < other.ks_statistic / 3
        assert other.ks_pvalue < 1e-6
    # per-image values are independent draws, so the p-value means what it says
    assert compare(image_means(a), image_means(b)).ks_pvalue > 1e-3


def test_wasserstein_of_a_shift_is_the_shift():
    rng = np.random.default_rng(2)
    x = rng.normal(size=5000)
    assert compare(x, x + 0.25, 30).wasserstein == pytest.approx(0.25, rel=1e-9)


def test_histogram_counts_and_poisson_interval():
    values = np.array([0.05, 0.05, 0.15, 0.95, 0.999])
    hist = histogram(values, np.linspace(0, 1, 11))
    assert hist.counts.tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert hist.n == 5
    # 1σ frequentist interval of a count of 0 is [0, 1.841] (Gehrels 1986)
    assert hist.lower[2] == 0 and hist.upper[2] == pytest.approx(1.841, abs=1e-3)
    assert np.all(hist.lower <= hist.counts) and np.all(hist.counts <= hist.upper)
    density, lower, upper = hist.density()
    assert np.sum(density * np.diff(hist.edges)) == pytest.approx(1.0)


def test_poisson_interval_widens_as_sqrt_n():
    lower, upper = poisson_interval(np.array([10000]))
    assert upper[0] - lower[0] == pytest.approx(2 * 100, rel=0.01)


def test_pixel_histogram_counts_every_pixel():
    images = np.random.default_rng(3).uniform(size=(7, 8, 8))
    assert histogram(images, PIXEL_EDGES).counts.sum() == 7 * 64


def test_compare_refuses_nan_and_empty():
    with pytest.raises(ValueError, match="NaN"):
        compare(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="no real"):
        compare(np.array([]), np.array([1.0]))


def test_rank_correlation_sign():
    x = np.linspace(-2, 2, 50)
    result = rank_correlation(x, np.exp(-x))
    assert result["spearman_rho"] == pytest.approx(-1.0)
    assert result["kendall_tau"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 3"):
        rank_correlation(x[:2], x[:2])


def test_island_counts_count_blobs_above_a_fraction_of_the_peak():
    """One, two and three separate blobs give 1, 2 and 3 islands; a faint blob below the
    threshold and diagonal neighbours (8-connected) do not add islands; an empty image has none."""
    r, c = np.mgrid[:40, :40]

    def blob(y, x, amplitude=1.0, width=2.0):
        return amplitude * np.exp(-((r - y) ** 2 + (c - x) ** 2) / (2 * width ** 2))

    one = blob(20, 20)
    double = blob(20, 8) + blob(20, 32)                      # an FRII's two lobes
    triple = double + blob(5, 20, amplitude=0.5)
    faint = double + blob(5, 20, amplitude=0.03)             # below 5% of the peak
    diagonal = np.zeros((40, 40))
    diagonal[10, 10] = diagonal[11, 11] = 1.0                 # corners touch: one island
    images = np.stack([one, double, triple, faint, diagonal, np.zeros((40, 40))])
    assert island_counts(images).tolist() == [1, 2, 3, 2, 1, 0]
    assert island_counts(images[3:4], fraction=0.01).tolist() == [3]  # the faint blob counts now
    with pytest.raises(ValueError, match="fraction of the peak"):
        island_counts(images, fraction=1.5)
    with pytest.raises(ValueError, match="N, H, W"):
        island_counts(one)

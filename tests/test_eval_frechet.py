"""The radio Fréchet distance (radiogen.evaluation.frechet)."""

import numpy as np
import pytest

from radiogen.evaluation.frechet import (frechet_distance, frechet_distance_features,
                                         gaussian_fit)


def test_one_dimensional_gaussians_analytic():
    # d² = (μ1 − μ2)² + (σ1 − σ2)² in one dimension
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]),
                            np.array([[9.0]])) == pytest.approx(9.0 + 1.0)


def test_diagonal_gaussians_analytic():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 4.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)


def test_rotated_covariance_is_invariant():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    s1, s2 = a @ a.T, np.diag(rng.uniform(1, 2, 5))
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    mu = rng.normal(size=5)
    d = frechet_distance(mu, s1, 0 * mu, s2)
    assert frechet_distance(q @ mu, q @ s1 @ q.T, 0 * mu, q @ s2 @ q.T) == pytest.approx(d)
    assert frechet_distance(mu, s1, mu, s1) == pytest.approx(0.0, abs=1e-9)


def test_samples_same_distribution_small_shifted_large():
    rng = np.random.default_rng(1)
    cov = np.diag(np.linspace(0.5, 2.0, 8))
    a = rng.multivariate_normal(np.zeros(8), cov, size=4000)
    b = rng.multivariate_normal(np.zeros(8), cov, size=4000)
    shifted = rng.multivariate_normal(np.full(8, 0.5), cov, size=4000)
    same, other = frechet_distance_features(a, b), frechet_distance_features(a, shifted)
    assert same < 0.05
    assert other == pytest.approx(8 * 0.25, rel=0.1)


def test_rank_deficient_covariances_do_not_break_it():
    rng = np.random.default_rng(2)
    few = rng.normal(size=(10, 64))      # 10 samples of 64-d features: Σ of rank 9
    d = frechet_distance_features(few, few + 1.0)
    assert np.isfinite(d) and d == pytest.approx(64.0, rel=1e-6)


def test_gaussian_fit_needs_two_samples():
    with pytest.raises(ValueError, match="N ≥ 2"):
        gaussian_fit(np.zeros((1, 4)))

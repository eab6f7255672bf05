"""The radio Fréchet distance: FID's recipe with a radio-trained network (Section 7).

Two image sets are mapped to the encoder features (8·width-d) of the morphology classifier
(:mod:`~radiogen.evaluation.classifier`), a Gaussian N(μ, Σ) is fitted to each, and the Fréchet
(2-Wasserstein) distance between the Gaussians is

    d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}),

written with the symmetric square root, which equals Tr((Σ₁Σ₂)^{1/2}) and needs only
eigendecompositions of symmetric matrices (no complex round-off as with ``scipy.linalg.sqrtm``).
The number has no scale by itself: the report prints beside it the distance between two real
sets (the classifier's train and test splits), which a perfect generator would match. Like FID it
is biased upwards for small sets, so compare distances computed on similar numbers of images.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_fit", "frechet_distance", "frechet_distance_features",
           "radio_frechet_distance"]


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean μ (D,) and covariance Σ (D, D) of features (N, D), N ≥ 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need features of shape (N ≥ 2, D), got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], -1)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off set to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Squared Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) (FID's d²)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("the two Gaussians have different dimensions")
    root1 = _sqrt_psd(sigma1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ sigma2 @ root1), 0, None)).sum()
    d2 = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * cross
    return float(max(d2, 0.0))


def frechet_distance_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Squared Fréchet distance between Gaussian fits of two feature sets."""
    return frechet_distance(*gaussian_fit(features1), *gaussian_fit(features2))


def radio_frechet_distance(model, images1: np.ndarray, images2: np.ndarray,
                           batch_size: int = 256, device="auto") -> float:
    """Radio Fréchet distance between two image sets, on the classifier's encoder features."""
    from radiogen.evaluation.classifier import encode

    return frechet_distance_features(encode(model, images1, batch_size, device),
                                     encode(model, images2, batch_size, device))

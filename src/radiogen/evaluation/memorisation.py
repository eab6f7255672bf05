"""Memorisation check: nearest training images of each generated image by SSIM (Appendix A).

Every image is first rotated so that the principal axis of its bright pixels lies horizontal: the
pixels above τ_PCA = 0.1 + 0.5·σ_x (Eq. A.1), with σ_x the sigma-clipped standard deviation of
the image (astropy's ``sigma_clipped_stats`` with its defaults, 3σ and 5 iterations, as for
S/N_σ in Section 3.1), give a 2×2 covariance of pixel positions whose leading eigenvector is the
principal axis. Similarity is the SSIM of Eq. (A.2),

    SSIM(x, y) = (2 μ_x μ_y + c1)(2 σ_xy + c2) / ((μ_x² + μ_y² + c1)(σ_x² + σ_y² + c2)),

with c1 = 1e−4 and c2 = 9e−4 and the statistics taken over the whole image, as the paper writes it
(scikit-image's ``structural_similarity`` instead averages the same formula over 7×7 windows).
Whole-image statistics turn all pairs into one matrix product of mean-free images, so 10^4
generated against 10^5 training images is a few minutes on a CPU and seconds on a GPU. A principal
axis has no direction, so each pair is also compared with one image turned by 180° and the larger
SSIM kept.

The check reports the best-match SSIM of every generated image and, as the baseline, of held-out
real images against the same training set: a generator that copies its training data shows best
matches well above the held-out ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

__all__ = [
    "C1",
    "C2",
    "clipped_sigma",
    "pca_threshold",
    "principal_angles",
    "align_images",
    "ssim_matrix",
    "nearest_neighbours",
    "Neighbours",
    "memorisation_check",
]

#: Stabilising constants of Eq. (A.2).
C1, C2 = 1e-4, 9e-4


def clipped_sigma(images: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """σ_x of every image from astropy's ``sigma_clipped_stats`` (as for S/N_σ, Section 3.1)."""
    from astropy.stats import sigma_clipped_stats

    images = np.asarray(images, dtype=np.float32)
    sigma = [sigma_clipped_stats(images[i:i + chunk], axis=(1, 2))[2]
             for i in range(0, len(images), chunk)]
    return np.nan_to_num(np.concatenate(sigma).astype(np.float64))


def pca_threshold(images: np.ndarray) -> np.ndarray:
    """τ_PCA = 0.1 + 0.5·σ_x of every image (Eq. A.1)."""
    return 0.1 + 0.5 * clipped_sigma(images)  # Eq. (A.1)


def principal_angles(images: np.ndarray, tau: np.ndarray | None = None) -> np.ndarray:
    """Angle θ of the principal axis of the pixels above τ_PCA, per image, in radians.

    θ is measured from the +column axis towards the +row axis of the array and lies in
    (−π/2, π/2]; images with fewer than two pixels above the threshold get θ = 0.
    """
    images = np.asarray(images, dtype=np.float64)
    tau = pca_threshold(images) if tau is None else np.asarray(tau, dtype=np.float64)
    mask = (images > tau[:, None, None]).astype(np.float64)
    rows, cols = np.indices(images.shape[1:], dtype=np.float64)
    n = mask.sum(axis=(1, 2))
    safe = np.maximum(n, 1)
    mean_c, mean_r = (mask * cols).sum(axis=(1, 2)) / safe, (mask * rows).sum(axis=(1, 2)) / safe
    c_cc = (mask * cols ** 2).sum(axis=(1, 2)) / safe - mean_c ** 2
    c_rr = (mask * rows ** 2).sum(axis=(1, 2)) / safe - mean_r ** 2
    c_cr = (mask * cols * rows).sum(axis=(1, 2)) / safe - mean_c * mean_r
    theta = 0.5 * np.arctan2(2 * c_cr, c_cc - c_rr)  # leading eigenvector of the 2×2 covariance
    return np.where(n >= 2, theta, 0.0)


def _rotate(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Sample x (B, H, W) at R(θ)·u about the image centre: the axis at θ becomes horizontal."""
    cos, sin, zero = torch.cos(theta), torch.sin(theta), torch.zeros_like(theta)
    matrix = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(matrix.to(x), [x.shape[0], 1, *x.shape[1:]], align_corners=False)
    return F.grid_sample(x[:, None], grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[:, 0]


def align_images(images: np.ndarray, batch_size: int = 2048, device="cpu") -> np.ndarray:
    """Rotate every image so that its principal axis (Eq. A.1 pixels) is horizontal."""
    images = np.asarray(images, dtype=np.float32)
    out = np.empty_like(images)
    for i in range(0, len(images), batch_size):
        batch = images[i:i + batch_size]
        theta = torch.as_tensor(principal_angles(batch), dtype=torch.float32)
        out[i:i + batch_size] = _rotate(torch.as_tensor(batch).to(device), theta).cpu().numpy()
    return out


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattened mean-free images, means μ and variances σ² of x (B, H, W)."""
    flat = x.reshape(len(x), -1)
    mu = flat.mean(dim=1)
    centred = flat - mu[:, None]
    return centred, mu, centred.pow(2).mean(dim=1)


def _ssim_from_moments(xc, mu_x, var_x, yc, mu_y, var_y) -> torch.Tensor:
    sigma_xy = xc @ yc.T / xc.shape[1]
    mu = mu_x[:, None] * mu_y[None]
    return ((2 * mu + C1) * (2 * sigma_xy + C2)  # Eq. (A.2)
            / ((mu_x[:, None] ** 2 + mu_y[None] ** 2 + C1) * (var_x[:, None] + var_y[None] + C2)))


def ssim_matrix(x, y) -> torch.Tensor:
    """SSIM (Eq. A.2, whole-image statistics) of every pair, shape (len(x), len(y))."""
    x, y = torch.as_tensor(np.asarray(x, np.float32)), torch.as_tensor(np.asarray(y, np.float32))
    return _ssim_from_moments(*_moments(x), *_moments(y))


@dataclass
class Neighbours:
    """The k most similar references of each query: SSIM (N, k), descending, and indices."""

    ssim: np.ndarray
    index: np.ndarray

    @property
    def best(self) -> np.ndarray:
        return self.ssim[:, 0]


def nearest_neighbours(queries: np.ndarray, references: np.ndarray, k: int = 5,
                       query_batch: int = 1024, reference_batch: int = 8192, device="cpu",
                       progress: bool = True, desc: str = "SSIM") -> Neighbours:
    """The k references of highest SSIM (Eq. A.2) for every query, both already aligned.

    Each pair is scored as the larger SSIM of the query as it is and turned by 180°.
    """
    k = min(k, len(references))
    refs = torch.as_tensor(np.asarray(references, dtype=np.float32))
    scores, indices = [], []
    total = -(-len(queries) // query_batch) * -(-len(refs) // reference_batch)
    with tqdm(total=total, desc=desc, disable=not progress) as bar:
        for i in range(0, len(queries), query_batch):
            q = torch.as_tensor(np.asarray(queries[i:i + query_batch], np.float32)).to(device)
            upright, turned = _moments(q), _moments(torch.flip(q, dims=(1, 2)))
            best_s = torch.full((len(q), 0), -np.inf, device=device)
            best_i = torch.zeros((len(q), 0), dtype=torch.int64, device=device)
            for j in range(0, len(refs), reference_batch):
                r = _moments(refs[j:j + reference_batch].to(device))
                s = torch.maximum(_ssim_from_moments(*upright, *r), _ssim_from_moments(*turned, *r))
                cand_i = torch.arange(j, j + s.shape[1], device=device).expand_as(s)
                best_s, pick = torch.cat([best_s, s], 1).topk(k, dim=1)
                best_i = torch.cat([best_i, cand_i], 1).gather(1, pick)
                bar.update(1)
            scores.append(best_s.cpu().numpy())
            indices.append(best_i.cpu().numpy())
    return Neighbours(np.concatenate(scores).astype(np.float64), np.concatenate(indices))


def memorisation_check(generated: np.ndarray, training: np.ndarray, held_out: np.ndarray,
                       k: int = 5, device="cpu", progress: bool = True) -> dict:
    """Best-match SSIM of generated and of held-out real images against the training set.

    Returns
    -------
    dict
        ``generated`` and ``held_out``: :class:`Neighbours`; ``aligned``: the aligned
        generated, training and held-out images (for figures); ``summary``: numbers for the
        report (quantiles of the best-match SSIM of both sets and the fraction of generated
        images whose best match exceeds the highest held-out best match).
    """
    aligned = {name: align_images(images, device=device) for name, images in
               (("generated", generated), ("training", training), ("held_out", held_out))}
    gen = nearest_neighbours(aligned["generated"], aligned["training"], k, device=device,
                             progress=progress, desc="SSIM generated")
    ref = nearest_neighbours(aligned["held_out"], aligned["training"], k, device=device,
                             progress=progress, desc="SSIM held-out")
    quantiles = (0.5, 0.9, 0.99, 1.0)
    summary = {"k": k, "n_generated": len(generated), "n_training": len(training),
               "n_held_out": len(held_out),
               "generated_best_quantiles": dict(zip(map(str, quantiles),
                                                    np.quantile(gen.best, quantiles).tolist())),
               "held_out_best_quantiles": dict(zip(map(str, quantiles),
                                                   np.quantile(ref.best, quantiles).tolist())),
               "fraction_generated_above_held_out_max": float((gen.best > ref.best.max()).mean())}
    return {"generated": gen, "held_out": ref, "aligned": aligned, "summary": summary}

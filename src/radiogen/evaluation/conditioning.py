"""How much a class-conditioned denoiser uses its class: denoising errors under every label.

A denoiser D(x; σ | c) that has learned its classes removes noise from an image of class y
better when told c = y than when told another class; picking the label with the smallest error
makes it a classifier (the "diffusion classifier" of Li et al. 2023, here at a few fixed noise
levels). For each noise level σ the same noise n is added to every real image x, and the
per-image error ‖D(x + n; σ | c) − x‖² (Eq. 22 without its weight, which is the same for every c)
is computed for every class c and for the null context ∅. This needs no sampling and no
classifier, (K + 1) network passes per image and σ, so it checks class conditioning in seconds
while a model is being developed; the classifier accuracy of generated images remains the
measure of the result.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["denoising_errors", "class_discrimination"]


@torch.inference_mode()
def denoising_errors(denoiser, images: np.ndarray, n_classes: int, sigmas=(0.5, 1.0, 2.0),
                     seed: int = 0, batch_size: int = 100) -> np.ndarray:
    """Per-image errors ‖D(x + n; σ | c) − x‖² (mean over pixels) under every label.

    Parameters
    ----------
    denoiser : callable
        D(x, sigma, context, context_mask) on images in the model range [−1, 1]
        (:class:`radiogen.models.Denoiser`); context one-hot, mask 0 for the null context ∅.
    images : ndarray, shape (N, H, W)
        Real images in [0, 1] (Eq. 11).
    n_classes : int
        K, the size of the one-hot context.
    sigmas : sequence of float
        Noise levels σ.
    seed : int
        Seed of the noise n, the same for every label.

    Returns
    -------
    ndarray, shape (len(sigmas), N, K + 1)
        Column c < K: the error under class c; column K: under the null context ∅.
    """
    x_all = torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None] * 2 - 1
    generator = torch.Generator().manual_seed(seed)
    eye = torch.eye(n_classes)
    out = np.empty((len(sigmas), len(x_all), n_classes + 1))
    for i, sigma in enumerate(sigmas):
        noise = torch.randn(x_all.shape, generator=generator) * sigma
        for start in range(0, len(x_all), batch_size):
            x = x_all[start:start + batch_size]
            x_noisy, n = x + noise[start:start + batch_size], len(x)
            s = torch.full((n,), float(sigma))
            for c in range(n_classes + 1):
                context = eye[min(c, n_classes - 1)].expand(n, n_classes)
                mask = torch.full((n,), 0.0 if c == n_classes else 1.0)
                D_x = denoiser(x_noisy, s, context, mask).float()
                out[i, start:start + n, c] = ((D_x - x) ** 2).mean(dim=(1, 2, 3)).double().numpy()
    return out


def class_discrimination(errors: np.ndarray, labels: np.ndarray, among=None) -> dict:
    """How well the errors of :func:`denoising_errors` at one σ pick out each image's class.

    Parameters
    ----------
    errors : ndarray, shape (N, K + 1)
        Errors under each class and ∅ at one noise level.
    labels : ndarray, shape (N,)
        The images' class indices.
    among : sequence of int, optional
        Compare only these classes (and only images of them), e.g. the extended classes when
        compact sources are told apart by size alone; default: all.

    Returns
    -------
    dict
        ``accuracy``, the fraction of images whose error is smallest under their own label
        (chance: 1 / number of compared classes); ``gain``, the fraction of the error under the
        other compared labels that the own label removes, 1 − mean(own) / mean(others) (0 for a
        denoiser that ignores its class, 1 for a perfect one); ``n``; ``error``, the
        K × (K + 1) matrix of mean errors (rows: true class, columns: given class, last: ∅).
    """
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = errors.shape[1] - 1
    among = np.arange(n_classes) if among is None else np.asarray(among, dtype=np.int64)
    keep = np.isin(labels, among)
    E, y = errors[keep], labels[keep]
    own = E[np.arange(len(y)), y]
    others = (E[:, among].sum(axis=1) - own) / max(len(among) - 1, 1)
    matrix = [errors[labels == k].mean(axis=0).tolist() if (labels == k).any()
              else [float("nan")] * (n_classes + 1) for k in range(n_classes)]
    return {"accuracy": float((among[E[:, among].argmin(axis=1)] == y).mean()),
            "gain": float(1 - own.mean() / others.mean()), "n": int(keep.sum()), "error": matrix}

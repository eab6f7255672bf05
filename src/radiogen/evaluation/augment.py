"""The classifier's random augmentations (Section 5.3), batched on tensors.

In the paper's order, each with its own random parameters per image:

1. blur with a 3×3 Gaussian kernel, σ ~ U(0.1, 1) pixels;
2. add Gaussian noise, σ ~ U(1e−4, 0.1);
3. crop a square of side ~ U(0.9, 1) × the image side at a random position and resample it to
   the full size;
4. rotate by an angle ~ U(0, 2π), filling the gaps with −1;
5. flip vertically with probability 1/2.

Steps 3–5 are one affine resampling (bilinear), so an image is interpolated only once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["AugmentSettings", "augment", "gaussian_blur", "affine_warp"]


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the random augmentations (Section 5.3)."""

    blur_sigma: tuple[float, float] = (0.1, 1.0)
    noise_sigma: tuple[float, float] = (1e-4, 0.1)
    crop_scale: tuple[float, float] = (0.9, 1.0)
    fill: float = -1.0
    flip_probability: float = 0.5


def _uniform(n: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur every image (B, 1, H, W) with its own 3×3 Gaussian kernel of width ``sigma`` (B,)."""
    k = torch.arange(-1.0, 2.0)
    g = torch.exp(-k[None] ** 2 / (2 * sigma[:, None] ** 2))
    g = g / g.sum(dim=1, keepdim=True)
    kernel = (g[:, :, None] * g[:, None, :]).to(x)  # (B, 3, 3), separable
    b, c, h, w = x.shape
    padded = F.pad(x.reshape(1, b * c, h, w), (1, 1, 1, 1), mode="reflect")
    return F.conv2d(padded, kernel.repeat_interleave(c, 0)[:, None], groups=b * c).reshape(b, c, h, w)


def affine_warp(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, angle: torch.Tensor,
                flip: torch.Tensor, fill: float) -> torch.Tensor:
    """Crop (``scale``, ``shift`` in normalised units), rotate by ``angle`` and flip, in one go.

    An output pixel at normalised position u samples the input at s·R(angle)·F·u + shift, with
    F = diag(1, ±1) the vertical flip; samples outside the image take the value ``fill``.
    """
    cos, sin = torch.cos(angle), torch.sin(angle)
    sign = torch.where(flip, -1.0, 1.0)
    theta = torch.stack([torch.stack([scale * cos, -scale * sin * sign, shift[:, 0]], dim=1),
                         torch.stack([scale * sin, scale * cos * sign, shift[:, 1]], dim=1)],
                        dim=1).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False) + fill


def augment(x: torch.Tensor, generator: torch.Generator,
            settings: AugmentSettings = AugmentSettings()) -> torch.Tensor:
    """Apply the random augmentations of Section 5.3 to a batch (B, 1, H, W) in [−1, 1].

    Random parameters are drawn on the CPU from ``generator``, so a seed gives the same
    augmentations on any device.
    """
    b = x.shape[0]
    x = gaussian_blur(x, _uniform(b, settings.blur_sigma, generator))
    noise_sigma = _uniform(b, settings.noise_sigma, generator)
    x = x + (noise_sigma[:, None, None, None] * torch.randn(x.shape, generator=generator)).to(x)
    scale = _uniform(b, settings.crop_scale, generator)
    shift = (1 - scale)[:, None] * (2 * torch.rand(b, 2, generator=generator) - 1)
    angle = 2 * math.pi * torch.rand(b, generator=generator)
    flip = torch.rand(b, generator=generator) < settings.flip_probability
    return affine_warp(x, scale, shift, angle, flip, settings.fill)

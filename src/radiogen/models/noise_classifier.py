"""A noise-aware classifier p_φ(c | x; σ) for classifier guidance (Dhariwal & Nichol 2021): the
ResNet-18 layout of the evaluation classifier (Section 5.3; :mod:`radiogen.evaluation.resnet`)
at reduced width, reading the noisy image preconditioned as the denoiser reads it, c_in(σ)·x
(Eq. 20), with the noise level c_noise(σ) (Eq. 21) as a second input channel, then a linear
layer to class logits."""

from __future__ import annotations

import torch
from torch import nn

from radiogen.config import ModelConfig
from radiogen.evaluation.resnet import ResNet18
from radiogen.models.precond import c_in, c_noise

__all__ = ["NoiseAwareClassifier"]


class NoiseAwareClassifier(nn.Module):
    """Class logits of noisy images x = y + σ·n (y in [−1, 1]). Of ``cfg`` it uses
    ``channels`` (the ResNet's first-stage width), ``in_channels`` and ``sigma_data``."""

    def __init__(self, cfg: ModelConfig, num_classes: int):
        super().__init__()
        self.cfg, self.num_classes = cfg, num_classes
        self.encoder = ResNet18(in_channels=cfg.in_channels + 1, width=cfg.channels)
        self.head = nn.Linear(self.encoder.out_features, num_classes)

    def forward(self, x, sigma):
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
        sigma = sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma
        s = sigma[:, None, None, None]
        # Eq. (20) on images shifted so that the empty sky (−1, most of a FIRST image) is 0,
        # beside a constant channel holding c_noise(σ) (Eq. 21)
        h = c_in(s, self.cfg.sigma_data) * (x.float() + 1)
        level = c_noise(s).expand(-1, 1, *x.shape[-2:])
        return self.head(self.encoder(torch.cat([h, level], dim=1)))

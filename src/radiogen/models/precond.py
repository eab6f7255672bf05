"""EDM preconditioning (Karras et al. 2022), Eq. (17)–(21): the denoiser D_θ(x; σ) built
around the network F_θ so that its inputs and training targets have unit variance."""

from __future__ import annotations

import torch
from torch import nn

from radiogen.config import ModelConfig
from radiogen.models.unet import UNet

__all__ = ["c_skip", "c_out", "c_in", "c_noise", "Denoiser"]


def c_skip(sigma, sigma_data):
    return sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)            # Eq. (18)


def c_out(sigma, sigma_data):
    return sigma * sigma_data / (sigma ** 2 + sigma_data ** 2).sqrt()  # Eq. (19)


def c_in(sigma, sigma_data):
    return 1 / (sigma ** 2 + sigma_data ** 2).sqrt()                   # Eq. (20)


def c_noise(sigma):
    return sigma.log() / 4                                             # Eq. (21)


class Denoiser(nn.Module):
    """D_θ(x; σ | c) = c_skip(σ)·x + c_out(σ)·F_θ(c_in(σ)·x; c_noise(σ) | c), Eq. (17).

    ``context`` is the conditioning (one-hot class or scaled flux), ``context_mask`` selects the
    null token ∅ where 0. The skip path runs in float32 whatever autocast does to F_θ."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.sigma_data = cfg.sigma_data
        self.net = UNet(cfg)

    def forward(self, x, sigma, context=None, context_mask=None):
        x = x.float()
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
        sigma = sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma
        s = sigma[:, None, None, None]
        F_x = self.net(c_in(s, self.sigma_data) * x, c_noise(sigma), context, context_mask)
        return c_skip(s, self.sigma_data) * x + c_out(s, self.sigma_data) * F_x.float()

"""A noise-aware classifier p_φ(c | x; σ) for classifier guidance (Dhariwal & Nichol 2021): the
encoder half of the U-Net (Section 4.1's FiLM blocks, conditioned on the noise level alone, with
attention on the levels that have it), then GN → SiLU → global average pooling → class logits.
Its input is preconditioned as the denoiser's, c_in(σ)·x with c_noise(σ) embedded (Eq. 20–21),
so that it reads noisy images at every σ of the sampler."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from radiogen.config import ModelConfig
from radiogen.models.layers import EfficientAttention, EmbeddingMLP, ResBlock, SinusoidalEmbedding
from radiogen.models.precond import c_in, c_noise

__all__ = ["NoiseAwareClassifier"]


class NoiseAwareClassifier(nn.Module):
    """Class logits of noisy images x = y + σ·n; ``cfg`` sets the encoder as for the U-Net
    (channels, multipliers, blocks per level, attention, patch size); its context is unused."""

    def __init__(self, cfg: ModelConfig, num_classes: int):
        super().__init__()
        self.cfg, self.num_classes = cfg, num_classes
        ch, groups = cfg.channels, cfg.norm_groups
        emb_dim = cfg.emb_mult * ch
        self.noise_embed = nn.Sequential(SinusoidalEmbedding(ch), nn.Linear(ch, emb_dim), nn.SiLU())
        self.emb_out = EmbeddingMLP(emb_dim, emb_dim)
        self.patch = cfg.patch_size
        self.conv_in = nn.Conv2d(cfg.in_channels * self.patch ** 2, ch, 3, padding=1)
        self.blocks = nn.ModuleList()
        c, levels = ch, len(cfg.channel_mult)
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.blocks_per_level[level]):
                layers = [ResBlock(c, ch * mult, emb_dim, groups, cfg.dropout)]
                c = ch * mult
                if cfg.attention[level]:
                    layers.append(EfficientAttention(c, cfg.attention_heads,
                                                     cfg.attention_head_channels, groups,
                                                     cfg.attention_kernel))
                self.blocks.append(nn.ModuleList(layers))
            if level < levels - 1:
                self.blocks.append(nn.ModuleList([ResBlock(c, c, emb_dim, groups, cfg.dropout, "down")]))
        self.head = nn.Sequential(nn.GroupNorm(groups, c), nn.SiLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x, sigma):
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
        sigma = sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma
        s = sigma[:, None, None, None]
        h = c_in(s, self.cfg.sigma_data) * x.float()                       # Eq. (20)
        emb = self.emb_out(self.noise_embed(c_noise(sigma)))               # Eq. (21)
        h = self.conv_in(F.pixel_unshuffle(h, self.patch) if self.patch > 1 else h)
        for layers in self.blocks:
            h = layers[0](h, emb)
            for attn in layers[1:]:
                h = attn(h)
        return self.head(h)

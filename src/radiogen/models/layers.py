"""Building blocks of the U-Net (Section 4.1, Fig. 6): embeddings, FiLM residual blocks,
space-to-depth down-sampling, nearest-neighbour up-sampling and efficient attention (Eq. 15)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SinusoidalEmbedding", "EmbeddingMLP", "Downsample", "Upsample", "ResBlock",
           "EfficientAttention", "ChannelLayerNorm"]


class SinusoidalEmbedding(nn.Module):
    """Sinusoidal position encoding (Vaswani et al. 2017) of the noise input c_noise(σ)."""

    def __init__(self, dim: int, max_period: float = 10_000.0):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        angles = c_noise.float()[:, None] * self.freqs[None, :]
        return torch.cat([angles.cos(), angles.sin()], dim=1)


class EmbeddingMLP(nn.Sequential):
    """The two-layer fully connected network with GELU (Eq. 14) used for context embeddings."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__(nn.Linear(in_dim, dim), nn.GELU(), nn.Linear(dim, dim))


class Downsample(nn.Module):
    """Split the image into four sub-images (space-to-depth) and mix them with a 1×1 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(4 * channels, channels, kernel_size=1)

    def forward(self, x):
        return self.conv(F.pixel_unshuffle(x, 2))


class Upsample(nn.Module):
    """Nearest-neighbour up-sampling: every pixel is quadrupled."""

    def forward(self, x):
        return F.interpolate(x, scale_factor=2.0, mode="nearest")


class ResBlock(nn.Module):
    """The U-Net block of Fig. 6: (GN → SiLU → [resample] → 3×3 conv) then
    (GN → FiLM → SiLU → 3×3 conv → dropout), plus a skip connection (resampled, and a 1×1 conv
    when the channel count changes). The embedding enters by FiLM after the second GN."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int, dropout: float,
                 resample: str | None = None):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.resample = {None: nn.Identity(), "down": Downsample(in_ch), "up": Upsample()}[resample]
        self.skip_resample = {None: nn.Identity(), "down": Downsample(in_ch), "up": Upsample()}[resample]
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * out_ch)  # FiLM: per-channel scale and shift
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # every block starts as its skip connection
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(self.resample(F.silu(self.norm1(x))))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.dropout(self.conv2(F.silu(h)))
        return self.skip(self.skip_resample(x)) + h


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over the channels of every pixel."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class EfficientAttention(nn.Module):
    """Efficient multi-head self-attention of Shen et al. (2021), Eq. (15):
    A = softmax₁(Q/√c) · softmax₂(K)ᵀ V, linear in the number of pixels n.

    GN first; Q, K, V from one 3×3 conv; heads concatenated, brought back by a 3×3 conv,
    layer-normalised and added to the input."""

    def __init__(self, channels: int, heads: int, head_channels: int, groups: int,
                 kernel: int = 3):
        super().__init__()
        self.heads, self.c = heads, head_channels
        inner = heads * head_channels
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * inner, kernel, padding=kernel // 2)
        self.out = nn.Conv2d(inner, channels, kernel, padding=kernel // 2)
        self.out_norm = ChannelLayerNorm(channels)

    def forward(self, x):
        b, _, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, self.c, h * w).unbind(1)
        q = torch.softmax(q / math.sqrt(self.c), dim=2)   # softmax₁ over the c channels of a pixel
        k = torch.softmax(k, dim=3)                       # softmax₂ over the n pixels
        context = torch.einsum("bhcn,bhdn->bhcd", k, v)   # Kᵀ V: c × c per head
        a = torch.einsum("bhcd,bhcn->bhdn", context, q)   # Eq. (15), stored channels-first
        a = a.reshape(b, self.heads * self.c, h, w)
        return x + self.out_norm(self.out(a))

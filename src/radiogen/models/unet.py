"""The U-Net F_θ of Section 4.1 (Fig. 7, Table 3), conditioned on the noise level and a context
(one-hot class or scaled peak flux) with classifier-free-guidance context dropout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from radiogen.config import ModelConfig
from radiogen.models.layers import EfficientAttention, EmbeddingMLP, ResBlock, SinusoidalEmbedding

__all__ = ["UNet", "count_parameters"]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class UNet(nn.Module):
    """Encoder (``num_res_blocks`` blocks per level, then a down-sampling block except at the
    lowest level), bottleneck (block, attention, block), decoder (``num_res_blocks + 1`` blocks
    per level on the skip connections, then an up-sampling block except at the top level).
    Attention follows every resolution-preserving block of the levels that have it.

    With ``patch_size`` p > 1 the image enters as p×p patches stacked on the channels
    (space to depth) and leaves the same way, so no convolution runs at full resolution."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        ch, groups, drop = cfg.channels, cfg.norm_groups, cfg.dropout
        emb_dim = cfg.emb_mult * ch

        # Noise-level embedding: sinusoidal encoding + one-layer FCN.
        self.noise_embed = nn.Sequential(SinusoidalEmbedding(ch), nn.Linear(ch, emb_dim), nn.SiLU())
        # Context embedding (two-layer GELU FCN), added to the noise embedding, and the second
        # network of identical architecture that feeds FiLM in every block.
        # With column_mask it reads [z·m, m]: the given values and which columns are given.
        context_in = cfg.context_dim * (2 if cfg.column_mask else 1)
        self.context_embed = EmbeddingMLP(context_in, emb_dim) if cfg.context_dim else None
        self.emb_out = EmbeddingMLP(emb_dim, emb_dim)

        def attention(c):
            return EfficientAttention(c, cfg.attention_heads, cfg.attention_head_channels, groups,
                                      cfg.attention_kernel)

        def block(cin, cout, resample=None):
            return ResBlock(cin, cout, emb_dim, groups, drop, resample)

        self.patch = cfg.patch_size
        pixels_in = cfg.in_channels * self.patch ** 2
        self.conv_in = nn.Conv2d(pixels_in, ch, 3, padding=1)
        levels, blocks = len(cfg.channel_mult), cfg.blocks_per_level
        self.down = nn.ModuleList()
        skip_channels, c = [ch], ch
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(blocks[level]):
                self.down.append(nn.ModuleList([block(c, ch * mult)]))
                c = ch * mult
                if cfg.attention[level]:
                    self.down[-1].append(attention(c))
                skip_channels.append(c)
            if level < levels - 1:
                self.down.append(nn.ModuleList([block(c, c, "down")]))
                skip_channels.append(c)

        self.mid = nn.ModuleList([block(c, c), attention(c), block(c, c)])

        self.up = nn.ModuleList()
        self.up_takes_skip: list[bool] = []   # up-sampling blocks take no skip connection
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for _ in range(blocks[level] + 1):
                self.up.append(nn.ModuleList([block(c + skip_channels.pop(), ch * mult)]))
                self.up_takes_skip.append(True)
                c = ch * mult
                if cfg.attention[level]:
                    self.up[-1].append(attention(c))
            if level > 0:
                self.up.append(nn.ModuleList([block(c, c, "up")]))
                self.up_takes_skip.append(False)

        self.out = nn.Sequential(nn.GroupNorm(groups, c), nn.SiLU(),
                                 nn.Conv2d(c, pixels_in, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)  # F_θ starts at 0, so D_θ starts at c_skip·x
        nn.init.zeros_(self.out[-1].bias)

    def embed(self, c_noise, context=None, context_mask=None):
        """The conditioning vector fed to every block's FiLM.

        ``context_mask`` (1: keep, 0: null token ∅) drops the context of single samples; a
        dropped context adds nothing, so D(x; σ | ∅) is the unconditional model. With
        ``cfg.column_mask`` the mask may also be (N, k), one entry per column: the columns with
        0 are left free, and a row with every column left free is the unconditional model."""
        emb = self.noise_embed(c_noise)
        if self.context_embed is not None and context is not None:
            context = context.to(emb.dtype)
            if self.cfg.column_mask:
                m = (torch.ones_like(context) if context_mask is None else
                     context_mask.to(emb.dtype).reshape(len(context), -1).expand_as(context))
                given = torch.where(m > 0, context, torch.zeros_like(context))  # NaN: not known
                ctx = self.context_embed(torch.cat([given, m], dim=1))
                ctx = ctx * m.amax(dim=1, keepdim=True)
            else:
                ctx = self.context_embed(context)
                if context_mask is not None:
                    ctx = ctx * context_mask.to(ctx.dtype)[:, None]
            emb = emb + ctx
        return self.emb_out(emb)

    def forward(self, x, c_noise, context=None, context_mask=None):
        emb = self.embed(c_noise, context, context_mask)
        h = self.conv_in(F.pixel_unshuffle(x, self.patch) if self.patch > 1 else x)
        skips = [h]
        for layers in self.down:
            h = layers[0](h, emb)
            for attn in layers[1:]:
                h = attn(h)
            skips.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb)), emb)
        for layers, takes_skip in zip(self.up, self.up_takes_skip):
            if takes_skip:
                h = torch.cat([h, skips.pop()], dim=1)
            h = layers[0](h, emb)
            for attn in layers[1:]:
                h = attn(h)
        h = self.out(h)
        return F.pixel_shuffle(h, self.patch) if self.patch > 1 else h

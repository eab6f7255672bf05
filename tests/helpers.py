"""Small helpers shared by tests."""

import torch

from radiogen.config import ModelConfig


def tiny_model_config(**kw) -> ModelConfig:
    base = dict(channels=8, norm_groups=4, attention_heads=1, attention_head_channels=8,
                emb_mult=2, context_dim=4, dropout=0.0)
    return ModelConfig(**{**base, **kw})


def perturb(module, scale=0.05, seed=1):
    """Add noise to every parameter, so that zero-initialised layers are not zero any more."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return module

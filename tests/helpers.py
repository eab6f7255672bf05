"""Small helpers shared by tests."""

import numpy as np
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


#: radiogen's promise across batch sizes and thread counts (README, "Reproducibility"): image k
#: of a seed agrees to this absolute tolerance (images in [0, 1]); bit for bit only with the same
#: seed, batch size, thread count and machine, since the CPU kernels differ by shape and processor.
BATCH_ATOL = 1e-5


def assert_batch_independent(a, b):
    """``a`` and ``b`` (the same seeds drawn in other batches) agree as promised, to the last
    bits, and are not the same array by mistake."""
    assert a is not b
    np.testing.assert_allclose(a, b, rtol=0, atol=BATCH_ATOL)

"""Per-image random generators: image k of a run with seed s is the same whatever the batch
size, because its noise comes from its own generator seeded with s + k (as in NVlabs/edm)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["per_image_noise", "per_image_step_noise"]


def per_image_noise(seeds, shape, device=None, dtype=torch.float32) -> torch.Tensor:
    """Stack one standard-normal tensor of ``shape`` per seed into a batch."""
    out = []
    for seed in seeds:
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        out.append(torch.randn(shape, generator=g, dtype=torch.float32))
    return torch.stack(out).to(device=device, dtype=dtype)


def per_image_step_noise(seeds, step: int, shape, device=None, dtype=torch.float32) -> torch.Tensor:
    """Fresh noise for step ``step`` of a stochastic sampler, one generator per (seed, step), so
    that it too is independent of the batch size and differs from the initial noise."""
    step_seeds = [int(np.random.SeedSequence([int(s), step]).generate_state(1)[0]) for s in seeds]
    return per_image_noise(step_seeds, shape, device, dtype)

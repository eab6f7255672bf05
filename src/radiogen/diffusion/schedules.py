"""Noise levels for the ODE solvers, apart from the solvers themselves (Section 4.3)."""

from __future__ import annotations

import torch

__all__ = ["karras_sigmas"]


def karras_sigmas(n: int = 25, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0, device=None) -> torch.Tensor:
    """The N + 1 noise levels σ_0 = σ_max > … > σ_{N−1} = σ_min > σ_N = 0 of Eq. (25).

    σ_i = (σ_max^(1/ρ) + i/(N−1) · (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ for 0 ≤ i ≤ N − 1, in float64.
    """
    if n < 2:
        raise ValueError(f"need at least 2 noise levels, got N={n}")
    i = torch.arange(n, dtype=torch.float64, device=device)
    sigmas = (sigma_max ** (1 / rho) + i / (n - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])  # σ_N = 0

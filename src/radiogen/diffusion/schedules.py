"""Noise levels for the ODE solvers, apart from the solvers themselves (Section 4.3)."""

from __future__ import annotations

import torch

__all__ = ["karras_sigmas", "consistency_sigmas"]


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


def consistency_sigmas(n: int = 2, sigma_min: float = 0.8, sigma_max: float = 80.0,
                       rho: float = 7.0, device=None) -> torch.Tensor:
    """The N + 1 levels of multistep consistency sampling: σ_max, then the re-noising levels
    spaced as in Eq. (25) down to σ_min, then 0; N = 1 is [σ_max, 0] (one evaluation)."""
    if n < 1:
        raise ValueError(f"need at least 1 noise level, got N={n}")
    if n == 1:
        return torch.tensor([sigma_max, 0.0], dtype=torch.float64, device=device)
    return karras_sigmas(n, sigma_min, sigma_max, rho, device)

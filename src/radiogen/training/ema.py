"""Moving averages of the network weights: the classic EMA of Table 4, and the power-function
EMA profiles of Karras et al. (2024, EDM2, Section 3) from which any EMA length can be
reconstructed after training (``radiogen.training.posthoc_ema``)."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

__all__ = ["EMA", "PowerEMA", "sigma_rel_to_gamma", "gamma_to_sigma_rel"]


class EMA:
    """θ_EMA ← β θ_EMA + (1 − β) θ after every step.

    With ``warmup`` the rate is min(β, (1 + k)/(10 + k)) at step k, so that a short run's average
    is not dominated by its random initialisation (β = 0.9999 needs ~10⁴ steps to forget it)."""

    def __init__(self, model: nn.Module, rate: float = 0.9999, warmup: bool = True):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.rate, self.warmup = rate, warmup

    def rate_at(self, step: int) -> float:
        return min(self.rate, (1 + step) / (10 + step)) if self.warmup else self.rate

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        _lerp(self.model, model, 1 - self.rate_at(step))


def sigma_rel_to_gamma(sigma_rel: float) -> float:
    """The exponent γ of the power-function EMA whose relative standard deviation is σ_rel
    (EDM2, Eq. 3: σ_rel² = (γ + 1) / ((γ + 2)² (γ + 3)), solved for γ)."""
    if not 0 < sigma_rel < 1 / math.sqrt(12):
        raise ValueError(f"EMA length σ_rel must lie in (0, {1 / math.sqrt(12):.3f}), not {sigma_rel}")
    t = sigma_rel ** -2
    roots = np.roots([1.0, 7.0, 16.0 - t, 12.0 - t])   # γ³ + 7γ² + (16 − t)γ + 12 − t = 0
    return float(max(r.real for r in roots if abs(r.imag) < 1e-9 and r.real > -1))


def gamma_to_sigma_rel(gamma: float) -> float:
    return math.sqrt((gamma + 1) / ((gamma + 2) ** 2 * (gamma + 3)))


class PowerEMA:
    """Power-function EMA profiles (EDM2, Eq. 2): after update t (t = 1, 2, …)

        θ̂_γ(t) = β_γ(t) θ̂_γ(t − 1) + (1 − β_γ(t)) θ(t),   β_γ(t) = (1 − 1/t)^(γ+1),

    an average of all weights so far with weight ∝ τ^γ on step τ, whose width relative to the
    run's length is σ_rel. One profile per entry of ``sigma_rels``."""

    def __init__(self, model: nn.Module, sigma_rels):
        self.sigma_rels = tuple(float(s) for s in sigma_rels)
        self.gammas = tuple(sigma_rel_to_gamma(s) for s in self.sigma_rels)
        self.models = [copy.deepcopy(model).eval().requires_grad_(False) for _ in self.sigma_rels]

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold in the weights after training step ``step`` (0-based), i.e. update t = step + 1."""
        t = step + 1
        for gamma, avg in zip(self.gammas, self.models):
            _lerp(avg, model, 1 - (1 - 1 / t) ** (gamma + 1))

    def file_name(self, i: int) -> str:
        return f"ema-power-{self.sigma_rels[i]:.3f}.safetensors"


def _lerp(average: nn.Module, model: nn.Module, weight: float) -> None:
    # one fused call for all parameters: on a GPU, one launch per tensor would cost more than
    # the arithmetic (the CPU runs the same per-tensor lerp either way)
    torch._foreach_lerp_([p for p in average.parameters()],
                         [p.detach() for p in model.parameters()], weight)
    for b_avg, b in zip(average.buffers(), model.buffers()):
        b_avg.copy_(b)

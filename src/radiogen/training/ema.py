"""Exponential moving average of the network weights (Table 4: EMA rate)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


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
        beta = self.rate_at(step)
        for p_ema, p in zip(self.model.parameters(), model.parameters()):
            p_ema.lerp_(p.detach(), 1 - beta)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)

"""Classifier-free guidance (Ho & Salimans 2022), Section 2.3."""

from __future__ import annotations

import torch

__all__ = ["GuidedDenoiser"]


class GuidedDenoiser:
    """D̃(x; σ | c) = (1 + ω)·D(x; σ | c) − ω·D(x; σ | ∅).

    The paper's Eq. (8) prints "+ ω"; Ho & Salimans subtract the unconditional term, which is
    what guidance means, so we subtract. The conditional and unconditional halves run as one
    batch of twice the size; with ω = 0 only the conditional half runs.

    ``denoiser(x, sigma, context, context_mask)`` is the preconditioned network; ``context`` is
    fixed for the whole trajectory. ``n_evals`` counts network evaluations per image.
    """

    def __init__(self, denoiser, context=None, guidance: float = 0.0):
        self.denoiser, self.context, self.omega = denoiser, context, float(guidance)
        self.n_evals = 0

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        self.n_evals += 1
        n = x.shape[0]
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1).expand(n)
        ones = torch.ones(n, device=x.device)
        if self.context is None or self.omega == 0:
            return self.denoiser(x, sigma, self.context, ones if self.context is not None else None)
        D = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]),
                          torch.cat([self.context, self.context]),
                          torch.cat([ones, torch.zeros_like(ones)]))
        D_cond, D_uncond = D.chunk(2)
        return (1 + self.omega) * D_cond - self.omega * D_uncond

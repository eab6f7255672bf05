"""Classifier-free guidance (Ho & Salimans 2022), Section 2.3, with an optional guidance interval
(Kynkäänniemi et al. 2024)."""

from __future__ import annotations

import torch

__all__ = ["GuidedDenoiser"]


class GuidedDenoiser:
    """D̃(x; σ | c) = (1 + ω)·D(x; σ | c) − ω·D(x; σ | ∅).

    The paper's Eq. (8) prints "+ ω"; Ho & Salimans subtract the unconditional term, which is
    what guidance means, so we subtract. The conditional and unconditional halves run as one
    batch of twice the size; with ω = 0 only the conditional half runs.

    ``interval = (σ_lo, σ_hi)`` applies guidance only for σ_lo < σ ≤ σ_hi and evaluates only
    the conditional half elsewhere; None guides at every noise level.

    ``denoiser(x, sigma, context, context_mask)`` is the preconditioned network; ``context`` is
    fixed for the whole trajectory. ``n_evals`` counts calls (solver evaluations) and
    ``n_network_evals`` network passes per image (two for a guided call).
    """

    def __init__(self, denoiser, context=None, guidance: float = 0.0,
                 interval: tuple[float, float] | None = None):
        self.denoiser, self.context, self.omega = denoiser, context, float(guidance)
        if interval is not None and not interval[0] <= interval[1]:
            raise ValueError(f"guidance interval must be (σ_lo, σ_hi) with σ_lo ≤ σ_hi, got {interval}")
        self.interval = interval
        self.n_evals = 0
        self.n_network_evals = 0

    def guides_at(self, sigma) -> bool:
        """Whether a call at noise level σ (one for the batch; per image only without an
        interval) combines both halves."""
        if self.context is None or self.omega == 0:
            return False
        return self.interval is None or self.interval[0] < float(sigma) <= self.interval[1]

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        n = x.shape[0]
        guided = self.guides_at(sigma)
        self.n_evals += 1
        self.n_network_evals += 2 if guided else 1
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1).expand(n)
        ones = torch.ones(n, device=x.device)
        if not guided:
            mask = ones if self.context is not None else None
            if n % 2:
                # An odd row count takes other CPU kernels in the matrix products (a gemv for one
                # row, a remainder block for more), which round the last bit differently; padding
                # to an even count keeps image k independent of the batch size.
                return self.denoiser(*_pad_to_even(x, sigma, self.context, mask))[:n]
            return self.denoiser(x, sigma, self.context, mask)
        D = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]),
                          torch.cat([self.context, self.context]),
                          torch.cat([ones, torch.zeros_like(ones)]))
        D_cond, D_uncond = D.chunk(2)
        return (1 + self.omega) * D_cond - self.omega * D_uncond


def _pad_to_even(*tensors):
    return [None if t is None else torch.cat([t, t[-1:]]) for t in tensors]

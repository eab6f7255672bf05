"""The training loss of Eq. (22) with the log-normal noise-level distribution p_train."""

from __future__ import annotations

import torch

from radiogen.models.precond import c_out

__all__ = ["EDMLoss"]


class EDMLoss:
    """L(θ) = E_x E_σ E_n [ c_out(σ)⁻² ‖D_θ(x + n; σ) − x‖² ], Eq. (22),
    with ln σ ~ N(P_mean, P_std²) and n ~ N(0, σ²I).

    Returns the per-image loss (mean over pixels), so that callers can weight images, e.g. by
    inverse class frequency.
    """

    def __init__(self, p_mean: float = -2.5, p_std: float = 1.8, sigma_data: float = 0.5):
        self.p_mean, self.p_std, self.sigma_data = p_mean, p_std, sigma_data

    def sample_sigma(self, n: int, generator=None, device=None) -> torch.Tensor:
        z = torch.randn(n, generator=generator, device=device)
        return (self.p_mean + self.p_std * z).exp()   # ln σ ~ N(P_mean, P_std²)

    def draw(self, x, generator=None, sigma=None, noise=None):
        """Noise levels σ ~ p_train and unit noise n for the batch ``x``, where not given."""
        if sigma is None:
            sigma = self.sample_sigma(x.shape[0], generator, x.device)
        if noise is None:
            noise = torch.randn(x.shape, generator=generator, device=x.device)
        return sigma, noise

    def __call__(self, denoiser, x, context=None, context_mask=None, generator=None,
                 sigma=None, noise=None) -> torch.Tensor:
        sigma, noise = self.draw(x, generator, sigma, noise)
        s = sigma[:, None, None, None]
        D_x = denoiser(x + noise * s, sigma, context, context_mask)
        weight = c_out(s, self.sigma_data) ** -2                       # λ(σ) = c_out(σ)⁻²
        return (weight * (D_x - x) ** 2).mean(dim=(1, 2, 3))          # Eq. (22)

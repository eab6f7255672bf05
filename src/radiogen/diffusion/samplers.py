"""ODE samplers for dx/dσ = (x − D(x; σ)) / σ, Eq. (24), in the style of k-diffusion: every
sampler is one function ``sample_x(denoiser, x, sigmas, callback=None)`` with
``denoiser(x, σ)`` and noise levels from :mod:`radiogen.diffusion.schedules`."""

from __future__ import annotations

import torch

__all__ = ["sample_heun", "sample_euler", "SAMPLERS"]


def _d(denoiser, x, sigma):
    return (x - denoiser(x, sigma)) / sigma        # Eq. (24)


@torch.no_grad()
def sample_heun(denoiser, x, sigmas, callback=None):
    """Heun's 2nd-order method, Algorithm 1: 2N − 1 evaluations for N + 1 noise levels.

    ``x`` is the seed image x_0 ~ N(0, σ_0² I); returns x_N."""
    n = len(sigmas) - 1
    for i in range(n):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        d = _d(denoiser, x, sigma)                            # line 4: evaluate the ODE at σ_i
        x_next = x + (sigma_next - sigma) * d                 # line 5: Euler step
        if i + 1 != n:                                        # line 6: unless σ_{i+1} = 0
            d_prime = _d(denoiser, x_next, sigma_next)        # line 7: evaluate at σ_{i+1}
            x_next = x + (sigma_next - sigma) * (d + d_prime) / 2   # line 8: trapezoidal rule
        x = x_next
        if callback is not None:
            callback(i, x)
    return x


@torch.no_grad()
def sample_euler(denoiser, x, sigmas, callback=None):
    """Euler's 1st-order method: N evaluations for N + 1 noise levels."""
    for i in range(len(sigmas) - 1):
        x = x + (sigmas[i + 1] - sigmas[i]) * _d(denoiser, x, sigmas[i])
        if callback is not None:
            callback(i, x)
    return x


#: Samplers by name, for the command line.
SAMPLERS = {"heun": sample_heun, "euler": sample_euler}

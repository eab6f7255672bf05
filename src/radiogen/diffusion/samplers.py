"""ODE samplers for dx/dσ = (x − D(x; σ)) / σ, Eq. (24), in the style of k-diffusion: every
sampler is one function ``sample_x(denoiser, x, sigmas, callback=None)`` with
``denoiser(x, σ)`` and noise levels from :mod:`radiogen.diffusion.schedules`.

Network evaluations per image for N + 1 noise levels (σ_N = 0): Heun and its stochastic
variant 2N − 1, the others N. The stochastic sampler and the consistency sampler, for
consistency-tuned models, have the same signature with a ``noise(i)`` source added.
"""

from __future__ import annotations

import math

import torch

from radiogen.diffusion.schedules import consistency_sigmas, karras_sigmas

__all__ = ["sample_heun", "sample_heun_sde", "sample_euler", "sample_dpmpp_2m", "sample_ipndm",
           "sample_consistency", "SAMPLERS", "STOCHASTIC_SAMPLERS", "ODE_SAMPLERS", "evaluations",
           "steps_for_evaluations", "noise_levels"]


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
def sample_heun_sde(denoiser, x, sigmas, callback=None, noise=None, churn: float = 0.0,
                    s_tmin: float = 0.05, s_tmax: float = 50.0, s_noise: float = 1.0):
    """EDM's stochastic sampler (Karras et al. 2022, Algorithm 2): before each Heun step from
    σ_i, noise is added to raise the level to σ̂_i = (1 + γ_i)·σ_i, which lets the sampler
    correct errors of earlier steps; 2N − 1 evaluations. γ_i = min(S_churn/N, √2 − 1) for
    S_tmin ≤ σ_i ≤ S_tmax, else 0; ``churn`` = S_churn = 0 is Algorithm 1.

    ``noise(i)`` gives the fresh ε_i ~ N(0, I) of step i (per-image seeded by the caller); by
    default ``torch.randn_like``."""
    n = len(sigmas) - 1
    for i in range(n):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        gamma = min(churn / n, math.sqrt(2) - 1) if s_tmin <= float(sigma) <= s_tmax else 0.0  # γ_i
        sigma_hat = sigma * (1 + gamma)                                    # line 5
        if gamma > 0:                                                      # line 6
            eps = torch.randn_like(x) if noise is None else noise(i)
            x = x + (sigma_hat ** 2 - sigma ** 2).sqrt() * s_noise * eps
        d = _d(denoiser, x, sigma_hat)                                     # line 7
        x_next = x + (sigma_next - sigma_hat) * d                          # line 8
        if i + 1 != n:                                                     # line 9
            d_prime = _d(denoiser, x_next, sigma_next)                     # line 10
            x_next = x + (sigma_next - sigma_hat) * (d + d_prime) / 2      # line 11
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


@torch.no_grad()
def sample_dpmpp_2m(denoiser, x, sigmas, callback=None):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) in the EDM parametrisation: N evaluations.

    With λ = −ln σ and step h_i = λ_{i+1} − λ_i, the exact solution of Eq. (24) for a denoised
    image D that is constant over the step is x_{i+1} = (σ_{i+1}/σ_i)·x_i − (e^{−h_i} − 1)·D.
    The multistep variant replaces D by the extrapolation
    D̂ = (1 + 1/(2r))·D_i − 1/(2r)·D_{i−1}, r = h_{i−1}/h_i (second order); the first step and
    the last one (to σ = 0, where the formula gives x = D) use D_i alone.
    """
    n = len(sigmas) - 1
    D_prev, h_prev = None, None
    for i in range(n):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        D = denoiser(x, sigma)
        if sigma_next == 0:
            x = D                                                     # λ → ∞: x = D
        else:
            h = math.log(sigma / sigma_next)                          # λ_{i+1} − λ_i
            D_hat = D
            if D_prev is not None:
                r = h_prev / h
                D_hat = (1 + 1 / (2 * r)) * D - 1 / (2 * r) * D_prev  # 2nd-order extrapolation
            x = (sigma_next / sigma) * x - math.expm1(-h) * D_hat
            h_prev = h
        D_prev = D
        if callback is not None:
            callback(i, x)
    return x


#: Adams–Bashforth coefficients of iPNDM (Zhang & Chen 2023), newest derivative first.
_IPNDM_COEFFICIENTS = ((1.0,), (3 / 2, -1 / 2), (23 / 12, -16 / 12, 5 / 12),
                       (55 / 24, -59 / 24, 37 / 24, -9 / 24))


@torch.no_grad()
def sample_ipndm(denoiser, x, sigmas, callback=None, order: int = 4):
    """Improved pseudo-numerical method iPNDM (Zhang & Chen 2023): N evaluations.

    Linear multistep (Adams–Bashforth) in σ on the derivatives of Eq. (24) from previous
    steps, of order min(i + 1, ``order``), so the first steps warm up at lower order with no
    extra evaluations.
    """
    history: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        history.insert(0, _d(denoiser, x, sigmas[i]))
        del history[order:]
        coefficients = _IPNDM_COEFFICIENTS[len(history) - 1]
        slope = sum(c * d for c, d in zip(coefficients, history))
        x = x + (sigmas[i + 1] - sigmas[i]) * slope
        if callback is not None:
            callback(i, x)
    return x


@torch.no_grad()
def sample_consistency(denoiser, x, sigmas, callback=None, noise=None):
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1), for a consistency-tuned
    denoiser (:mod:`radiogen.diffusion.consistency`), which maps x_σ straight to an image:
    x ← D(x; σ_0), then for i ≥ 1 re-noise to x + σ_i·z and map again. N evaluations for
    N + 1 noise levels (σ_N = 0 is not evaluated).

    ``noise(i)`` gives the fresh z of step i (per-image seeded by the caller); by default
    ``torch.randn_like``.
    """
    n = len(sigmas) - 1
    for i in range(n):
        if i > 0:
            x = x + sigmas[i] * (torch.randn_like(x) if noise is None else noise(i))
        x = denoiser(x, sigmas[i])
        if callback is not None:
            callback(i, x)
    return x


#: Solvers of the probability-flow ODE, Eq. (24), by name.
ODE_SAMPLERS = {"heun": sample_heun, "euler": sample_euler, "dpmpp-2m": sample_dpmpp_2m,
                "ipndm": sample_ipndm}
#: Samplers that draw fresh noise at every step (their ``noise(i)`` argument).
STOCHASTIC_SAMPLERS = {"heun-sde": sample_heun_sde, "consistency": sample_consistency}
#: All samplers by name, for the command line; "consistency" needs a consistency-tuned model.
SAMPLERS = {**ODE_SAMPLERS, **STOCHASTIC_SAMPLERS}


def noise_levels(sampler: str, steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                 rho: float = 7.0) -> torch.Tensor:
    """The N + 1 noise levels ``sampler`` runs on: Eq. (25) for the ODE solvers, the re-noising
    levels of :func:`radiogen.diffusion.schedules.consistency_sigmas` for the consistency one."""
    _check(sampler)
    schedule = consistency_sigmas if sampler == "consistency" else karras_sigmas
    return schedule(steps, sigma_min, sigma_max, rho)


def evaluations(sampler: str, steps: int) -> int:
    """Network evaluations per image (per guidance half) for N = ``steps`` noise levels."""
    _check(sampler)
    return 2 * steps - 1 if sampler in ("heun", "heun-sde") else steps


def steps_for_evaluations(sampler: str, n_evals: int) -> int:
    """The N whose evaluation count is largest without exceeding ``n_evals`` (N ≥ 2; N ≥ 1 for
    the consistency sampler)."""
    _check(sampler)
    steps = (n_evals + 1) // 2 if sampler in ("heun", "heun-sde") else n_evals
    minimum = 1 if sampler == "consistency" else 2
    if steps < minimum:
        raise ValueError(f"{sampler} needs more than {n_evals} evaluations "
                         f"(at least {minimum} noise level{'s' if minimum > 1 else ''})")
    return steps


def _check(sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")

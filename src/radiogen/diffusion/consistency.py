"""Consistency tuning of a trained denoiser: the loss of easy consistency tuning (ECT, Geng et al.
2025), with or without a teacher.

A consistency function f_θ(x_σ, σ) maps every point of a probability-flow trajectory (Eq. 24) to
its end at σ = 0, so one evaluation draws an image. We take f_θ = D_θ, the preconditioned
network of Eq. (17): c_skip(σ) → 1 and c_out(σ) → 0 as σ → 0 give the boundary condition
f_θ(x, 0) = x, and a trained denoiser is the starting point (at σ = t it already predicts the
mean of x_0, the consistency target of the first stage below).

Training pulls f_θ(x_t, t) towards the stop-gradient f_θ⁻(x_r, r) at a smaller noise level r on
the same trajectory:

- **without a teacher** (ECT): x_t = x_0 + t·n and x_r = x_0 + r·n with the same n, a
  one-sample estimate of the trajectory;
- **with a teacher** (consistency distillation, Song et al. 2023): x_r is one Euler step of
  Eq. (24) from x_t with the frozen, guided teacher D̃ of Eq. (8),
  x_r = x_t + (r − t)·(x_t − D̃(x_t; t))/t, so the student learns the guided trajectories and
  samples without a second (unconditional) pass.

The gap shrinks in stages s = 0, 1, …: r = t·(1 − q^−(s+1)·(1 + k·sigmoid(−b·t))), clipped at 0
(ECT's sigmoid mapping, q = 2, k = 8, b = 1), so the first stage is plain denoising for small t.
The distance is the pseudo-Huber d = √(‖f_θ(x_t, t) − f_θ⁻(x_r, r)‖² + c²) − c with
c = 0.00054·√(pixels) (Song & Dhariwal 2024), weighted by 1/(t − r).
"""

from __future__ import annotations

import math

import torch

from radiogen.diffusion.guidance import GuidedDenoiser
from radiogen.diffusion.loss import EDMLoss

__all__ = ["ConsistencyLoss", "r_of_t"]


def r_of_t(t: torch.Tensor, stage: int, q: float = 2.0, k: float = 8.0, b: float = 1.0) -> torch.Tensor:
    """ECT's mapping from the noise level t to the smaller r of stage ``stage``."""
    ratio = 1 - q ** -(stage + 1) * (1 + k * torch.sigmoid(-b * t))
    return (t * ratio).clamp(min=0)


class ConsistencyLoss(EDMLoss):
    """Per-image consistency loss d(f_θ(x_t, t), f_θ⁻(x_r, r)) / (t − r), ln t ~ N(P_mean, P_std²)
    (drawn as :class:`radiogen.diffusion.loss.EDMLoss` draws σ).

    ``teacher`` (a preconditioned denoiser, or None for ECT) and its guidance strength
    ``teacher_guidance`` = ω define x_r; ``stage`` (set by the training loop) the gap t − r.
    The call signature is EDMLoss's, so that the training loop and its validation loss take
    either.
    """

    def __init__(self, p_mean: float = -1.1, p_std: float = 2.0, sigma_data: float = 0.5,
                 teacher=None, teacher_guidance: float = 0.0):
        super().__init__(p_mean, p_std, sigma_data)
        self.teacher, self.teacher_guidance = teacher, float(teacher_guidance)
        self.stage = 0

    def __call__(self, denoiser, x, context=None, context_mask=None, generator=None,
                 sigma=None, noise=None) -> torch.Tensor:
        sigma, noise = self.draw(x, generator, sigma, noise)
        t = sigma.float()
        r = r_of_t(t, self.stage)
        t4, r4 = t[:, None, None, None], r[:, None, None, None]
        x_t = x + t4 * noise
        # the same dropout masks in both passes: the first runs on a copy of the RNG state
        with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
            f_t = denoiser(x_t, t, context, context_mask)
        with torch.no_grad():
            if self.teacher is None:
                x_r = x + r4 * noise
            else:
                D = GuidedDenoiser(self.teacher, context, self.teacher_guidance)(x_t, t)
                x_r = x_t + (r4 - t4) * (x_t - D) / t4          # Euler step of Eq. (24)
            target_net = getattr(denoiser, "module", denoiser)  # no DDP hooks for the target
            f_r = target_net(x_r, r.clamp(min=1e-8), context, context_mask)
            f_r = torch.where(r4 > 0, f_r.float(), x_r)          # f(x, 0) = x
        c = 0.00054 * math.sqrt(x[0].numel())
        distance = (((f_t.float() - f_r) ** 2).sum(dim=(1, 2, 3)) + c ** 2).sqrt() - c
        return distance / (t - r)

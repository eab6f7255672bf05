"""Diffusion mathematics: noise levels (Eq. 25), the training loss (Eq. 22), ODE samplers
(Algorithm 1) and EDM's stochastic one, classifier-free guidance (Eq. 8), per-image seeding,
and consistency tuning (:mod:`radiogen.diffusion.consistency`) with its sampler."""

from radiogen.diffusion.guidance import GuidedDenoiser
from radiogen.diffusion.loss import EDMLoss
from radiogen.diffusion.samplers import (ODE_SAMPLERS, SAMPLERS, STOCHASTIC_SAMPLERS, evaluations,
                                        noise_levels, sample_consistency, sample_dpmpp_2m,
                                        sample_euler, sample_heun, sample_heun_sde, sample_ipndm,
                                        steps_for_evaluations)
from radiogen.diffusion.schedules import consistency_sigmas, karras_sigmas
from radiogen.diffusion.seeding import per_image_noise, per_image_step_noise

__all__ = ["GuidedDenoiser", "EDMLoss", "SAMPLERS", "ODE_SAMPLERS", "STOCHASTIC_SAMPLERS",
           "sample_euler", "sample_heun", "sample_heun_sde", "sample_dpmpp_2m", "sample_ipndm",
           "sample_consistency", "evaluations", "steps_for_evaluations", "noise_levels",
           "karras_sigmas", "consistency_sigmas", "per_image_noise", "per_image_step_noise"]

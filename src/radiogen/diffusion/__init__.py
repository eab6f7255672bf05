"""Diffusion mathematics: noise levels (Eq. 25), the training loss (Eq. 22), ODE samplers
(Algorithm 1), classifier-free guidance (Eq. 8) and per-image seeding."""

from radiogen.diffusion.guidance import GuidedDenoiser
from radiogen.diffusion.loss import EDMLoss
from radiogen.diffusion.samplers import (SAMPLERS, evaluations, sample_dpmpp_2m, sample_euler,
                                        sample_heun, sample_ipndm, steps_for_evaluations)
from radiogen.diffusion.schedules import karras_sigmas
from radiogen.diffusion.seeding import per_image_noise

__all__ = ["GuidedDenoiser", "EDMLoss", "SAMPLERS", "sample_euler", "sample_heun", "sample_dpmpp_2m",
           "sample_ipndm", "evaluations", "steps_for_evaluations", "karras_sigmas", "per_image_noise"]

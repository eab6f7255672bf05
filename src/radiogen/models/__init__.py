"""The denoiser network: U-Net layers (Section 4.1) and EDM preconditioning (Eq. 17–21)."""

from radiogen.models.precond import Denoiser
from radiogen.models.unet import UNet, count_parameters

__all__ = ["Denoiser", "UNet", "count_parameters"]

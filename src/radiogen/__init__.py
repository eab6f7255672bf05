"""radiogen: realistic radio-galaxy images from continuous-time (EDM) diffusion models.

The Python API lives in :mod:`radiogen.api`; the ``radiogen`` command is a thin layer over it.
"""

__version__ = "0.1.0"

"""Evaluation of generated radio-galaxy images (Sections 5, 6 and Appendix A of the paper).

One module per idea:

- :mod:`~radiogen.evaluation.inputs`: image sets from stores, FITS folders or FIRST splits;
- :mod:`~radiogen.evaluation.statistics`: histograms with Poisson intervals and distances (5.1);
- :mod:`~radiogen.evaluation.sources`: PyBDSF flux models, model flux, A50% and Δ+ (5.1, 5.2);
- :mod:`~radiogen.evaluation.resnet`, :mod:`~radiogen.evaluation.classifier`,
  :mod:`~radiogen.evaluation.augment`, :mod:`~radiogen.evaluation.training`: the ResNet-18
  morphology classifier (5.3, Table 6);
- :mod:`~radiogen.evaluation.frechet`: the radio Fréchet distance on classifier features;
- :mod:`~radiogen.evaluation.memorisation`: PCA alignment and SSIM nearest neighbours (App. A);
- :mod:`~radiogen.evaluation.figures`, :mod:`~radiogen.evaluation.report` and
  :mod:`~radiogen.evaluation.suite`: the report that ``radiogen evaluate`` writes;
- :mod:`~radiogen.evaluation.sweep`: classifier accuracy against guidance strength (Table 7);
- :mod:`~radiogen.evaluation.conditioning`: how well a class model's denoiser tells its classes
  apart on real images (a check for model development, without sampling).

Submodules are imported on first use, so PyBDSF worker processes and ``radiogen --help`` do not
pay for torch or matplotlib.
"""

from __future__ import annotations

import importlib

__all__ = ["evaluate", "load_image_set", "run_pybdsf", "train_classifier", "load_classifier",
           "frechet_distance", "memorisation_check", "guidance_sweep", "denoising_errors",
           "class_discrimination"]

_HOME = {"evaluate": "suite", "load_image_set": "inputs", "run_pybdsf": "sources",
         "train_classifier": "training", "load_classifier": "classifier",
         "frechet_distance": "frechet", "memorisation_check": "memorisation",
         "guidance_sweep": "sweep", "denoising_errors": "conditioning",
         "class_discrimination": "conditioning"}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The denoiser's class discrimination on toy classes whose images are constant levels."""

import numpy as np
import torch

from radiogen.evaluation.conditioning import class_discrimination, denoising_errors

LEVELS = torch.tensor([0.1, 0.4, 0.7])          # class k: every pixel at LEVELS[k] (in [0, 1])


def _images(n_per_class=4):
    labels = np.repeat(np.arange(3), n_per_class)
    return np.ones((len(labels), 8, 8), np.float32) * LEVELS.numpy()[labels, None, None], labels


def knows_its_class(x, sigma, context, mask):
    """The exact denoiser of this data given the class: the class's image, whatever the noise;
    without a class (∅), the mean image."""
    level = context @ (LEVELS * 2 - 1)
    level = torch.where(mask > 0, level, (LEVELS * 2 - 1).mean())
    return level[:, None, None, None].expand_as(x)


def ignores_its_class(x, sigma, context, mask):
    return knows_its_class(x, sigma, context, torch.zeros_like(mask))


def test_a_denoiser_that_knows_its_classes_tells_them_apart():
    images, labels = _images()
    errors = denoising_errors(knows_its_class, images, 3, sigmas=(0.5, 2.0), batch_size=5)
    assert errors.shape == (2, 12, 4)
    for r in (class_discrimination(e, labels) for e in errors):
        assert r["accuracy"] == 1.0 and r["n"] == 12
        error = np.array(r["error"])
        assert error.shape == (3, 4)
        assert np.allclose(np.diag(error), 0) and (error[~np.eye(3, 4, dtype=bool)] > 0).all()
        assert r["gain"] == 1.0


def test_a_denoiser_that_ignores_its_class_gains_nothing():
    images, labels = _images()
    r = class_discrimination(denoising_errors(ignores_its_class, images, 3, sigmas=(1.0,))[0], labels)
    assert r["gain"] == 0.0
    error = np.array(r["error"])
    assert np.allclose(error, error[:, :1])          # the same error under every label and ∅


def test_among_restricts_the_classes_compared():
    images, labels = _images()
    r = class_discrimination(denoising_errors(knows_its_class, images, 3, sigmas=(1.0,))[0], labels,
                             among=[0, 2])
    assert r["n"] == 8 and r["accuracy"] == 1.0

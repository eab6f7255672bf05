import math

import pytest
import torch

from helpers import perturb, tiny_model_config
from radiogen.models.precond import Denoiser, c_in, c_noise, c_out, c_skip

SD = 0.5


def test_limits_of_the_scalings():
    small, large = torch.tensor(1e-6, dtype=torch.float64), torch.tensor(1e6, dtype=torch.float64)
    assert c_skip(small, SD).item() == pytest.approx(1.0)        # D(x; σ→0) → x
    assert c_out(small, SD).item() == pytest.approx(0.0, abs=1e-5)
    assert c_skip(large, SD).item() == pytest.approx(0.0, abs=1e-12)
    assert c_out(large, SD).item() == pytest.approx(SD)           # output scale → σ_data
    assert (c_in(large, SD) * large).item() == pytest.approx(1.0)  # input scaled to unit variance
    assert c_in(small, SD).item() == pytest.approx(1 / SD)
    assert c_noise(torch.tensor(math.e ** 4)).item() == pytest.approx(1.0)


def test_training_target_has_unit_variance():
    # Eq. (17)-(20): the effective target of F, (x - c_skip (x + n)) / c_out, has unit variance
    # when x has variance σ_data² and n variance σ².
    g = torch.Generator().manual_seed(0)
    for sigma in (0.01, 0.5, 3.0, 50.0):
        s = torch.tensor(sigma)
        x = torch.randn(200_000, generator=g) * SD
        y = x + torch.randn(200_000, generator=g) * sigma
        target = (x - c_skip(s, SD) * y) / c_out(s, SD)
        assert target.var().item() == pytest.approx(1.0, rel=0.02)
        assert (c_in(s, SD) * y).var().item() == pytest.approx(1.0, rel=0.02)


def test_denoiser_is_x_minus_sigma_epsilon():
    D = perturb(Denoiser(tiny_model_config())).eval()
    x = torch.randn(3, 1, 80, 80)
    sigma = torch.tensor([0.02, 1.0, 20.0])
    ctx = torch.eye(4)[:3]
    with torch.no_grad():
        F_x = D.net(c_in(sigma[:, None, None, None], SD) * x, c_noise(sigma), ctx)
        out = D(x, sigma, ctx)
    s = sigma[:, None, None, None]
    # x − D = σ·ε̂ with ε̂ = σ x / (σ² + σ_d²) − σ_d F / √(σ² + σ_d²)
    eps_hat = s * x / (s ** 2 + SD ** 2) - SD * F_x / (s ** 2 + SD ** 2).sqrt()
    torch.testing.assert_close(x - out, s * eps_hat, rtol=1e-4, atol=1e-5)

import math

import pytest
import torch

from radiogen.diffusion import (ODE_SAMPLERS, GuidedDenoiser, evaluations, karras_sigmas,
                                per_image_noise, per_image_step_noise, sample_euler, sample_heun,
                                sample_heun_sde, steps_for_evaluations)


def test_karras_sigmas_follow_eq_25():
    N, smin, smax, rho = 25, 0.002, 80.0, 7.0
    s = karras_sigmas(N, smin, smax, rho)
    assert len(s) == N + 1
    assert s[0].item() == pytest.approx(smax) and s[N - 1].item() == pytest.approx(smin)
    assert s[N].item() == 0.0
    for i in range(N):
        expected = (smax ** (1 / rho) + i / (N - 1) * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
        assert s[i].item() == pytest.approx(expected, rel=1e-12)
    assert torch.all(s[1:] < s[:-1])


class GaussianDenoiser:
    """The exact denoiser of data x ~ N(μ, s² I): D(x; σ) = (s² x + σ² μ) / (s² + σ²)."""

    def __init__(self, mu, s):
        self.mu, self.s = mu, s
        self.calls = 0

    def __call__(self, x, sigma):
        self.calls += 1
        sigma = torch.as_tensor(sigma, dtype=x.dtype)
        return (self.s ** 2 * x + sigma ** 2 * self.mu) / (self.s ** 2 + sigma ** 2)


def exact_solution(x0, mu, s, sigma_max):
    # The probability-flow ODE maps x(σ_max) to μ + (x − μ)·s/√(s² + σ_max²) at σ = 0.
    return mu + (x0 - mu) * s / math.sqrt(s ** 2 + sigma_max ** 2)


@pytest.mark.parametrize("n, rel", [(25, 0.05), (100, 0.005)])
def test_heun_reproduces_gaussian_mean_and_variance(n, rel):
    mu, s = 0.3, 0.5                      # data spread of σ_data = 0.5, as the model assumes
    D = GaussianDenoiser(mu, s)
    x0 = per_image_noise(range(4000), (1, 4, 4)).double() * 80.0
    x = sample_heun(D, x0, karras_sigmas(n).double())
    assert D.calls == 2 * n - 1           # Algorithm 1: 49 evaluations for N = 25
    assert x.mean().item() == pytest.approx(mu, abs=0.01)
    # The sample spread is the noise spread scaled by the ODE; its truncation error at N = 25
    # is ~3% for a Gaussian (2nd order: ~0.2% at N = 100).
    assert x.std().item() == pytest.approx(s, rel=rel)


def test_heun_converges_faster_than_euler():
    mu, s = -0.2, 0.5
    x0 = per_image_noise(range(64), (1, 4, 4)).double() * 80.0
    truth = exact_solution(x0, mu, s, 80.0)
    err = {}
    for name, solver in (("heun", sample_heun), ("euler", sample_euler)):
        err[name] = [(solver(GaussianDenoiser(mu, s), x0, karras_sigmas(n).double()) - truth).abs().max().item()
                     for n in (16, 32, 64)]
    assert err["heun"][-1] < 0.01
    assert all(h < e for h, e in zip(err["heun"], err["euler"]))
    # Heun's error falls faster with the step count than Euler's (2nd vs 1st order).
    assert err["heun"][0] / err["heun"][-1] > 2 * err["euler"][0] / err["euler"][-1]


def ode_gain(sampler, n_evals, s, sigma_max=80.0):
    """Relative error of the sampled spread for data N(0, s²): the solvers are linear in x, so
    x_N = a_N·x_0, against the exact a = s/√(s² + σ_max²)."""
    D = GaussianDenoiser(0.0, s)
    steps = steps_for_evaluations(sampler, n_evals)
    a_N = ODE_SAMPLERS[sampler](D, torch.ones(1, dtype=torch.float64), karras_sigmas(steps).double())
    assert D.calls == evaluations(sampler, steps) <= n_evals
    return a_N.item() / (s / math.sqrt(s ** 2 + sigma_max ** 2)) - 1


@pytest.mark.parametrize("s", [0.5, 0.1])
@pytest.mark.parametrize("sampler", list(ODE_SAMPLERS))
def test_every_sampler_converges_to_the_gaussian_spread(sampler, s):
    errors = [abs(ode_gain(sampler, n, s)) for n in (10, 20, 49, 199)]
    assert errors[-1] < 0.02                            # all agree with the truth at many steps
    assert errors[-1] < errors[1] < errors[0]           # and approach it as evaluations grow


@pytest.mark.parametrize("s", [0.5, 0.1])
def test_multistep_solvers_beat_euler_and_heun_at_ten_evaluations(s):
    error = {name: abs(ode_gain(name, 10, s)) for name in ODE_SAMPLERS}
    assert error["dpmpp-2m"] < error["euler"] and error["ipndm"] < error["euler"]
    assert error["dpmpp-2m"] < error["heun"]


def test_all_samplers_agree_with_heun_at_many_steps():
    x0 = per_image_noise(range(32), (1, 4, 4)).double() * 80.0
    D = GaussianDenoiser(0.3, 0.5)
    reference = sample_heun(D, x0, karras_sigmas(200).double())
    for name, solver in ODE_SAMPLERS.items():
        out = solver(GaussianDenoiser(0.3, 0.5), x0, karras_sigmas(1000).double())
        torch.testing.assert_close(out, reference, atol=0.01, rtol=0, msg=name)


def test_stochastic_heun_without_churn_is_heun():
    x0 = per_image_noise(range(16), (1, 4, 4)).double() * 80.0
    sigmas = karras_sigmas(12).double()
    torch.testing.assert_close(sample_heun_sde(GaussianDenoiser(0.3, 0.5), x0, sigmas),
                               sample_heun(GaussianDenoiser(0.3, 0.5), x0, sigmas),
                               rtol=0, atol=1e-12)


def test_stochastic_heun_keeps_the_gaussian_and_churns_only_between_s_tmin_and_s_tmax():
    """Algorithm 2 with the exact denoiser still draws N(μ, s²) while adding fresh noise at the
    noise levels in [S_tmin, S_tmax], one draw per such step, and lands elsewhere than Heun."""
    mu, s, n = 0.3, 0.5, 32
    seeds = range(4000)
    x0 = per_image_noise(seeds, (1, 4, 4)).double() * 80.0
    sigmas = karras_sigmas(n).double()
    drawn = []

    def noise(i):
        drawn.append(i)
        return per_image_step_noise(seeds, i, (1, 4, 4)).double()

    D = GaussianDenoiser(mu, s)
    x = sample_heun_sde(D, x0, sigmas, noise=noise, churn=10.0, s_tmin=0.05, s_tmax=50.0)
    assert D.calls == 2 * n - 1 == evaluations("heun-sde", n)
    assert drawn == [i for i in range(n) if 0.05 <= sigmas[i] <= 50.0]
    assert x.mean().item() == pytest.approx(mu, abs=0.01)
    assert x.std().item() == pytest.approx(s, rel=0.05)
    ode = sample_heun(GaussianDenoiser(mu, s), x0, sigmas)
    assert (x - ode).abs().mean().item() > 0.1 * s


def test_evaluation_counts():
    assert evaluations("heun", 25) == 49 and steps_for_evaluations("heun", 49) == 25
    assert evaluations("heun-sde", 25) == 49 and steps_for_evaluations("heun-sde", 49) == 25
    assert evaluations("dpmpp-2m", 10) == 10 and steps_for_evaluations("heun", 10) == 5
    with pytest.raises(ValueError, match="unknown sampler"):
        evaluations("rk4", 10)
    with pytest.raises(ValueError, match="at least 2 noise levels"):
        steps_for_evaluations("heun", 2)


class MaskedDenoiser(torch.nn.Module):
    """A fake conditional denoiser: D = x·0.5 + context-dependent offset where the mask is 1."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def forward(self, x, sigma, context, context_mask):
        self.batches.append(x.shape[0])
        offset = (context.argmax(1).float() + 1) * context_mask
        return 0.5 * x + offset[:, None, None, None]


def test_guidance_combination_and_batching():
    x = torch.randn(3, 1, 4, 4)
    ctx = torch.eye(4)[[0, 2, 3]]
    net = MaskedDenoiser()
    cond = GuidedDenoiser(net, ctx, 0.0)(x, 1.0)
    assert net.batches == [4]        # ω = 0: conditional half only, padded to an even count
    torch.testing.assert_close(cond, 0.5 * x + torch.tensor([1.0, 3, 4])[:, None, None, None])
    omega = 0.75
    guided = GuidedDenoiser(net, ctx, omega)(x, 1.0)
    assert net.batches[-1] == 6                             # both halves in one batch
    uncond = 0.5 * x
    torch.testing.assert_close(guided, (1 + omega) * cond - omega * uncond)


def test_per_image_noise_independent_of_batching():
    a = per_image_noise(range(10, 16), (1, 5, 5))
    b = torch.cat([per_image_noise(range(10, 12), (1, 5, 5)), per_image_noise(range(12, 16), (1, 5, 5))])
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


def test_guidance_interval_full_empty_and_counted():
    x = torch.randn(3, 1, 4, 4)
    ctx = torch.eye(4)[[0, 2, 3]]
    sigmas = karras_sigmas(6)
    plain = GuidedDenoiser(MaskedDenoiser(), ctx, 0.75)
    full = GuidedDenoiser(MaskedDenoiser(), ctx, 0.75, interval=(0.0, float("inf")))
    empty = GuidedDenoiser(MaskedDenoiser(), ctx, 0.75, interval=(1.0, 1.0))
    cond = GuidedDenoiser(MaskedDenoiser(), ctx, 0.0)
    for sigma in sigmas[:-1]:
        torch.testing.assert_close(full(x, sigma), plain(x, sigma))
        torch.testing.assert_close(empty(x, sigma), cond(x, sigma))
    assert plain.n_network_evals == full.n_network_evals == 2 * 6
    assert empty.n_network_evals == cond.n_network_evals == empty.n_evals == 6
    # Guided only for 0.5 < σ ≤ 5: Heun with N = 6 visits σ_1…σ_5 twice and σ_0 once.
    window = GuidedDenoiser(MaskedDenoiser(), ctx, 0.75, interval=(0.5, 5.0))
    sample_heun(window, x * 80.0, sigmas)
    visits = [sigmas[0]] + [s for s in sigmas[1:-1] for _ in range(2)]
    guided = sum(0.5 < float(s) <= 5.0 for s in visits)
    assert window.n_evals == len(visits) == 11
    assert window.n_network_evals == len(visits) + guided > len(visits)
    with pytest.raises(ValueError, match="σ_lo ≤ σ_hi"):
        GuidedDenoiser(MaskedDenoiser(), ctx, 0.75, interval=(5.0, 0.5))

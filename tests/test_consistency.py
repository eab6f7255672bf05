"""Consistency tuning: the ECT gap schedule, the loss (with and without a teacher) on a Gaussian
whose consistency function is known, the consistency sampler, and sampling a tuned model."""

import numpy as np
import pytest
import torch
from helpers import assert_batch_independent

from radiogen.diffusion import (GuidedDenoiser, consistency_sigmas, evaluations, karras_sigmas,
                                noise_levels, per_image_noise, per_image_step_noise,
                                sample_consistency, steps_for_evaluations)
from radiogen.diffusion.consistency import ConsistencyLoss, r_of_t

S = 0.5    # data x ~ N(0, S² I)


def gaussian_denoiser(x, sigma, context=None, context_mask=None):
    """The exact denoiser of N(0, S²): D(x; σ) = S² x / (S² + σ²)."""
    s2 = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1, 1, 1) ** 2
    return S ** 2 * x / (S ** 2 + s2)


def gaussian_consistency(x, sigma, context=None, context_mask=None):
    """The exact consistency function of N(0, S²): the ODE of Eq. (24) scales x by
    S / √(S² + σ²) on its way to σ = 0."""
    s2 = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1, 1, 1) ** 2
    return x * S / (S ** 2 + s2).sqrt()


def test_gap_schedule():
    t = torch.logspace(-3, 2, 50)
    gaps = [t - r_of_t(t, stage) for stage in range(6)]
    for stage in range(6):
        r = r_of_t(t, stage)
        assert torch.all(r >= 0) and torch.all(r < t)
    assert torch.all(r_of_t(t[t < 0.5], 0) == 0)            # stage 0: denoising at small t
    for earlier, later in zip(gaps, gaps[1:]):               # the gap shrinks at every stage
        assert torch.all(later <= earlier) and torch.all(later[t > 1] < earlier[t > 1])
    # for large t, r/t = 1 − 2^−(s+1): the gap halves from one stage to the next
    big = torch.tensor([80.0])
    assert (big - r_of_t(big, 3)).item() == pytest.approx(80 / 16, rel=1e-3)


def test_exact_consistency_function_has_the_smaller_loss():
    """With the exact teacher, the data's own consistency function scores far better than the
    plain denoiser, which is not one. (Without a teacher the one-sample target is too noisy for
    the loss value to tell them apart; only its expected gradient does, as the gap → 0.)"""
    x = per_image_noise(range(256), (1, 8, 8)) * S
    sigma = ConsistencyLoss(p_mean=0.0, p_std=1.0).sample_sigma(256, torch.Generator().manual_seed(0))
    noise = per_image_noise(range(1000, 1256), (1, 8, 8))
    loss = ConsistencyLoss(teacher=gaussian_denoiser)
    loss.stage = 5
    exact = loss(gaussian_consistency, x, sigma=sigma, noise=noise).mean()
    plain = loss(gaussian_denoiser, x, sigma=sigma, noise=noise).mean()
    assert exact < plain / 10


def test_stage_zero_at_small_t_is_denoising():
    """Where r = 0 the target is the clean image: the loss is the pseudo-Huber distance of
    f(x_t) from x_0 over t."""
    x = per_image_noise(range(4), (1, 8, 8)) * S
    noise = per_image_noise(range(10, 14), (1, 8, 8))
    t = torch.full((4,), 0.1)
    loss = ConsistencyLoss()(gaussian_denoiser, x, sigma=t, noise=noise)
    c = 0.00054 * 8
    err = ((gaussian_denoiser(x + 0.1 * noise, t) - x) ** 2).sum(dim=(1, 2, 3))
    torch.testing.assert_close(loss, ((err + c ** 2).sqrt() - c) / 0.1)


def test_gradient_flows_through_the_student_only():
    net = torch.nn.Conv2d(1, 1, 1)
    calls = []

    def student(x, sigma, context=None, context_mask=None):
        calls.append(torch.is_grad_enabled())
        return net(x) + x * 0.1

    x = torch.randn(8, 1, 4, 4)
    loss = ConsistencyLoss()
    loss.stage = 3
    loss(student, x, sigma=torch.full((8,), 5.0)).sum().backward()
    assert calls == [True, False]                      # f_θ(x_t) with grad, target without
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0


def test_both_passes_share_their_dropout_masks():
    drop, masks = torch.nn.Dropout(0.5), []

    def student(x, sigma, context=None, context_mask=None):
        masks.append(drop(torch.ones_like(x)))
        return x

    loss = ConsistencyLoss()
    loss.stage = 5
    loss(student, torch.randn(4, 1, 8, 8), sigma=torch.full((4,), 3.0))
    assert len(masks) == 2 and torch.equal(masks[0], masks[1])
    assert not torch.equal(masks[0], drop(torch.ones_like(masks[0])))   # the RNG moved on


def test_guided_teacher_and_per_image_sigmas():
    """The teacher is guided with the batch's context; GuidedDenoiser takes one σ per image."""
    ctx = torch.eye(4)[[0, 1, 2]]

    def teacher(x, sigma, context, context_mask):
        return 0.5 * x + (context.argmax(1).float() * context_mask)[:, None, None, None]

    x = torch.randn(3, 1, 4, 4)
    sigma = torch.tensor([1.0, 2.0, 3.0])
    D = GuidedDenoiser(teacher, ctx, 0.75)(x, sigma)
    torch.testing.assert_close(D, 0.5 * x + 1.75 * torch.tensor([0.0, 1, 2])[:, None, None, None])
    seen = {}

    def student(x, sigma, context, context_mask):
        seen.setdefault("x_t", x)
        return x

    loss = ConsistencyLoss(teacher=teacher, teacher_guidance=0.75)
    loss.stage = 10
    noise = torch.randn(3, 1, 4, 4)
    out = loss(student, x, ctx, torch.ones(3), sigma=sigma, noise=noise)
    # the identity student: its loss is the length of the teacher's Euler step, over t − r
    t4 = sigma[:, None, None, None]
    r4 = r_of_t(sigma, 10)[:, None, None, None]
    x_t = x + t4 * noise
    D_t = GuidedDenoiser(teacher, ctx, 0.75)(x_t, sigma)
    step = ((r4 - t4) * (x_t - D_t) / t4).pow(2).sum(dim=(1, 2, 3))
    c = 0.00054 * 4
    expected = ((step + c ** 2).sqrt() - c) / (sigma - r4.flatten())
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=0)


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_consistency_sampler_draws_the_gaussian(steps):
    """With the exact consistency function, any number of steps gives the data distribution;
    the plain denoiser in its place gives too small a spread."""
    x0 = per_image_noise(range(4000), (1, 2, 2)).double() * 80.0
    sigmas = consistency_sigmas(steps, 0.5, 80.0).double()
    assert len(sigmas) == steps + 1 and sigmas[-1] == 0 and sigmas[0] == 80.0
    assert torch.equal(noise_levels("consistency", steps, 0.5), sigmas)
    if steps > 1:
        assert torch.equal(noise_levels("euler", steps, 0.5), karras_sigmas(steps, 0.5))
    calls = []

    def f(x, sigma):
        calls.append(float(sigma))
        return gaussian_consistency(x, sigma)

    x = sample_consistency(f, x0, sigmas)
    assert calls == [float(s) for s in sigmas[:-1]]
    assert evaluations("consistency", steps) == steps == steps_for_evaluations("consistency", steps)
    assert x.std().item() == pytest.approx(S, rel=0.03)
    blurred = sample_consistency(lambda x, s: gaussian_denoiser(x, s), x0, sigmas)
    assert blurred.std().item() < 0.9 * S


def test_step_noise_is_per_image_and_per_step():
    a = per_image_step_noise(range(5, 9), 1, (1, 3, 3))
    b = torch.cat([per_image_step_noise(range(5, 7), 1, (1, 3, 3)),
                   per_image_step_noise(range(7, 9), 1, (1, 3, 3))])
    assert torch.equal(a, b)
    assert not torch.equal(a, per_image_step_noise(range(5, 9), 2, (1, 3, 3)))
    assert not torch.equal(a, per_image_noise(range(5, 9), (1, 3, 3)))


@pytest.fixture(scope="module")
def tiny_consistency_run(tiny_run, tmp_path_factory):
    """The tiny run distilled into a consistency model for a few steps, teacher guided."""
    from radiogen import api
    run_dir = tmp_path_factory.mktemp("tiny-consistency")
    api.train("tiny", run_dir, progress=False, overrides=[
        "training.iterations=4", "training.checkpoint_every=4", "training.val_every=2",
        "training.log_every=2", f"training.init_from={tiny_run}", "training.objective=consistency",
        f"training.consistency_teacher={tiny_run}", "training.consistency_guidance=0.5",
        "training.context_dropout=0"])
    return run_dir


def test_tuned_model_samples_with_the_consistency_sampler(tiny_run, tiny_consistency_run):
    from radiogen import api
    model = api.load_model(str(tiny_consistency_run))
    assert model.is_consistency and model.distilled_guidance == 0.5
    defaults = api.sampling_defaults(model)
    assert defaults["sampler"] == "consistency" and defaults["guidance"] == 0.0
    assert defaults["steps"] == api.CONSISTENCY_STEPS
    a = api.sample(model, 5, class_label="FRII", seed=3, progress=False)
    b = api.sample(model, 5, class_label="FRII", seed=3, batch_size=2, progress=False)
    assert a.shape == (5, 80, 80)
    assert_batch_independent(a, b)                           # seeded per image and step
    assert np.array_equal(a, api.sample(model, 5, class_label="FRII", seed=3, progress=False))
    c = api.sample(model, 5, class_label="FRII", seed=3, steps=1, progress=False)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="consistency-tuned: sample it with the consistency"):
        api.sample(model, 2, class_label=0, sampler="dpmpp-2m")
    diffusion = api.load_model(str(tiny_run))
    assert not diffusion.is_consistency and diffusion.distilled_guidance == 0.0
    with pytest.raises(ValueError, match="needs a consistency-tuned model"):
        api.sample(diffusion, 2, class_label=0, sampler="consistency")


def test_consistency_training_validates_its_settings(tiny_run, tmp_path):
    from radiogen import api
    with pytest.raises(ValueError, match="training.objective must be edm or consistency"):
        api.train("tiny", tmp_path / "a", overrides=["training.objective=ct"], progress=False)
    with pytest.raises(ValueError, match="context_dropout=0"):
        api.train("tiny", tmp_path / "c", progress=False, overrides=[
            "training.objective=consistency", f"training.consistency_teacher={tiny_run}",
            "training.consistency_guidance=0.75"])
    with pytest.raises(FileNotFoundError, match="no such model file"):
        api.train("tiny", tmp_path / "b", progress=False, overrides=[
            "training.objective=consistency",
            f"training.consistency_teacher={tmp_path}/none.safetensors"])
    with pytest.raises(ValueError, match="teacher was trained with data.stretch=0.0"):
        api.train("tiny", tmp_path / "d", progress=False, overrides=[
            "training.objective=consistency", f"training.consistency_teacher={tiny_run}",
            "training.context_dropout=0", "data.stretch=0.1"])


def test_sample_command_with_a_consistency_model(tiny_run, tiny_consistency_run, tmp_path, capsys):
    from astropy.io import fits

    from radiogen.cli import main
    out = tmp_path / "cm"
    assert main(["sample", "--checkpoint", str(tiny_consistency_run), "--class", "FRII", "-n", "2",
                 "--steps", "1", "--out", str(out), "--no-progress"]) == 0
    header = fits.getheader(out / "samples.fits")
    assert header["SAMPLER"] == "consistency" and header["STEPS"] == 1
    assert header["OMEGA"] == 0.0 and header["OMEGADST"] == 0.5
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(tiny_run), "--class", "FRII", "--sampler",
                 "consistency", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "needs a consistency-tuned model" in capsys.readouterr().err

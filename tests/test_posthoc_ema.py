"""Power-function EMA profiles, post-hoc EMA reconstruction (EDM2) and the wall-clock stop."""

import numpy as np
import pytest
import torch
from torch import nn

from radiogen import api
from radiogen.cli import main
from radiogen.training.checkpoint import latest_checkpoint, read_model_file
from radiogen.training.ema import PowerEMA, gamma_to_sigma_rel, sigma_rel_to_gamma
from radiogen.training.posthoc_ema import (coefficients, list_snapshots, profile_error,
                                           reconstruct)

TINY = ["training.log_every=1000", "training.val_every=1000"]


def test_sigma_rel_and_gamma():
    # EDM2's two profiles: σ_rel 0.05 and 0.10 are γ = 16.97 and 6.94
    assert sigma_rel_to_gamma(0.05) == pytest.approx(16.97, abs=0.01)
    assert sigma_rel_to_gamma(0.10) == pytest.approx(6.94, abs=0.01)
    for s in (0.01, 0.13, 0.25):
        assert gamma_to_sigma_rel(sigma_rel_to_gamma(s)) == pytest.approx(s, rel=1e-9)
    with pytest.raises(ValueError, match="σ_rel"):
        sigma_rel_to_gamma(0.3)


def _trajectory(steps, dim=3, seed=0):
    """Weights of a made-up run: a drift plus noise, one row per step 1..steps."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, steps + 1)[:, None]
    return np.sin(t / 150.0 + np.arange(dim)) + 0.3 * rng.standard_normal((steps, dim))


def _run_profiles(theta, sigma_rels, every):
    """Power-EMA profiles over ``theta`` (rows = steps), with snapshots every ``every`` steps."""
    model = nn.Linear(theta.shape[1], 1, bias=False)
    ema = PowerEMA(model, sigma_rels)
    snaps = []
    for step, row in enumerate(theta):
        with torch.no_grad():
            model.weight.copy_(torch.as_tensor(row, dtype=torch.float32)[None])
        ema.update(model, step)
        if (step + 1) % every == 0:
            snaps += [(ema.gammas[i], step + 1, m.weight.detach().double().numpy()[0].copy())
                      for i, m in enumerate(ema.models)]
    return ema, snaps


def test_power_ema_weights_follow_the_power_function():
    # θ(τ) = τ: the profile's average is ∫ τ p_γ,t(τ) dτ = (γ + 1)/(γ + 2) · t
    theta = np.arange(1, 2001, dtype=np.float64)[:, None]
    ema, _ = _run_profiles(theta, [0.05, 0.10], every=2000)
    for gamma, m in zip(ema.gammas, ema.models):
        assert m.weight.item() == pytest.approx((gamma + 1) / (gamma + 2) * 2000, rel=2e-3)


def test_posthoc_reconstruction_matches_a_tracked_profile():
    # snapshots of σ_rel 0.05 and 0.10 rebuild a σ_rel 0.08 profile that was never tracked
    theta = _trajectory(3000)
    _, snaps = _run_profiles(theta, [0.05, 0.10], every=150)
    target, _ = _run_profiles(theta, [0.08], every=3000)
    x = coefficients([g for g, _, _ in snaps], [t for _, t, _ in snaps],
                     sigma_rel_to_gamma(0.08), 3000)
    rebuilt = sum(w * v for w, (_, _, v) in zip(x, snaps))
    truth = target.models[0].weight.detach().double().numpy()[0]
    spread = theta[-600:].std(axis=0)      # how much the weights move at the end of the run
    assert np.abs(rebuilt - truth).max() < 0.05 * spread.max()
    # the naive choice, the nearest tracked profile, is much further off
    nearest = snaps[-1][2]
    assert np.abs(nearest - truth).max() > 3 * np.abs(rebuilt - truth).max()


def test_posthoc_reconstruction_stays_an_average_outside_the_tracked_lengths():
    # σ_rel 0.20 from snapshots of 0.05 and 0.10 can only be matched roughly; the combination must
    # still be an average (Σ x = 1), or it scales every weight (unconstrained: 0.998 here, 0.984
    # on a 4259-step run with snapshots every 500, which took the images far from real)
    theta = np.full((3000, 3), 0.7)
    _, snaps = _run_profiles(theta, [0.05, 0.10], every=150)
    gammas, steps = [g for g, _, _ in snaps], [t for _, t, _ in snaps]
    x = coefficients(gammas, steps, sigma_rel_to_gamma(0.20), 3000)
    assert x.sum() == pytest.approx(1, abs=1e-9)
    rebuilt = sum(w * v for w, (_, _, v) in zip(x, snaps))
    np.testing.assert_allclose(rebuilt, 0.7, rtol=1e-5)  # weights that never moved stay put
    # the fit's distance is reported: none for a tracked length, a few per cent outside them
    tracked = coefficients(gammas, steps, sigma_rel_to_gamma(0.10), 3000)
    assert profile_error(gammas, steps, tracked, sigma_rel_to_gamma(0.10), 3000) < 1e-6
    assert 0.01 < profile_error(gammas, steps, x, sigma_rel_to_gamma(0.20), 3000) < 0.2


def test_training_writes_snapshots_and_the_cli_rebuilds_them(tmp_path, capsys):
    overrides = ["training.iterations=6", "training.checkpoint_every=3",
                 "training.ema_profiles=[0.05, 0.1]", "training.ema_snapshot_every=2"] + TINY
    api.train("tiny", tmp_path / "run", overrides=overrides, progress=False)
    snaps = list_snapshots(tmp_path / "run")
    assert [(s.step, s.sigma_rel) for s in snaps] == [(t, s) for t in (2, 4, 6) for s in (0.05, 0.1)]
    ckpt = latest_checkpoint(tmp_path / "run")
    assert (ckpt / "ema-power-0.050.safetensors").is_file()
    # rebuilding a tracked profile at the newest snapshot gives that snapshot back
    state, cfg, meta = reconstruct(tmp_path / "run", 0.1)
    tracked = read_model_file(snaps[-1].path)[0]
    for k in tracked:
        torch.testing.assert_close(state[k], tracked[k], atol=1e-4, rtol=1e-3)
    assert main(["models", "ema", str(tmp_path / "run"), "--sigma-rel", "0.07", "0.12",
                 "--out", str(tmp_path / "ema")]) == 0
    assert capsys.readouterr().out.count("from the one asked for") == 2
    model = api.load_model(tmp_path / "ema" / "ema-0.070.safetensors")
    assert api.sample(model, 2, class_label="FRII", steps=3, seed=1).shape == (2, 80, 80)


def test_power_ema_resumes_exactly(tmp_path):
    overrides = ["training.iterations=6", "training.checkpoint_every=3", "model.dropout=0.1",
                 "training.ema_profiles=[0.1]"] + TINY
    api.train("tiny", tmp_path / "a", overrides=overrides, progress=False)
    api.train("tiny", tmp_path / "b", overrides=overrides, progress=False, max_steps=3)
    api.train("tiny", tmp_path / "b", overrides=overrides, progress=False, resume=True)
    a = read_model_file(latest_checkpoint(tmp_path / "a") / "ema-power-0.100.safetensors")[0]
    b = read_model_file(latest_checkpoint(tmp_path / "b") / "ema-power-0.100.safetensors")[0]
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)


def test_max_minutes_stops_with_a_checkpoint_and_resumes(tmp_path):
    overrides = ["training.iterations=50", "training.checkpoint_every=1000"] + TINY
    ckpt = api.train("tiny", tmp_path / "run", overrides=overrides, progress=False,
                     max_minutes=1e-6)
    assert ckpt.name == "step-0000001"          # the first step already ends past the deadline
    ckpt = api.train("tiny", tmp_path / "run", overrides=overrides, progress=False, resume=True,
                     max_steps=2)
    assert ckpt.name == "step-0000003"
    with pytest.raises(SystemExit) as refused:        # checked by argparse: a number > 0
        main(["train", "--preset", "tiny", "--out", str(tmp_path / "cli"), "--max-minutes", "0"])
    assert refused.value.code == 2 and not (tmp_path / "cli").exists()

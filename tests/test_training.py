import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from radiogen import api
from radiogen.config import Config, load_preset
from radiogen.data.datasets import load_training_set
from radiogen.diffusion.loss import EDMLoss
from radiogen.models import Denoiser
from radiogen.training.checkpoint import latest_checkpoint, read_model_file

TINY = ["training.log_every=1000", "training.val_every=1000"]


def test_presets_and_overrides():
    cfg = load_preset("first-paper")
    assert cfg.model.channels == 128 and cfg.training.batch_size == 128 and cfg.training.lr == 2e-5
    cfg2 = cfg.override(["training.batch_size=64", "model.channel_mult=[1, 2]",
                         "model.attention=[false, true]", "data.source=/some/store.h5"])
    assert cfg2.training.batch_size == 64 and cfg2.model.channel_mult == (1, 2)
    assert cfg2.data.source == "/some/store.h5"
    assert Config.from_dict(json.loads(cfg2.to_json())) == cfg2
    with pytest.raises(ValueError, match="unknown setting training.bach_size"):
        cfg.override(["training.bach_size=3"])
    with pytest.raises(ValueError, match="no preset"):
        load_preset("nonexistent")


def test_loss_weighting_of_eq_22():
    loss = EDMLoss(sigma_data=0.5)
    x = torch.zeros(2, 1, 4, 4)
    sigma = torch.tensor([0.1, 2.0])

    def perfect(x_noisy, s, *_):
        return torch.zeros_like(x_noisy)
    def off_by_one(x_noisy, s, *_):
        return torch.ones_like(x_noisy)
    assert torch.equal(loss(perfect, x, sigma=sigma, noise=torch.randn(2, 1, 4, 4)), torch.zeros(2))
    got = loss(off_by_one, x, sigma=sigma, noise=torch.zeros(2, 1, 4, 4))
    expected = (sigma ** 2 + 0.25) / (sigma * 0.5) ** 2            # c_out(σ)⁻² · 1²
    torch.testing.assert_close(got, expected)


def test_tiny_model_overfits_a_handful_of_images(tmp_path):
    cfg = load_preset("tiny").override(
        ["data.limit=8", "data.valid_fraction=0", "training.batch_size=8", "training.iterations=150",
         "training.lr=3e-3", "training.augment=false", "training.checkpoint_every=150",
         "training.p_mean=-1.0", "training.p_std=0.5", "training.context_dropout=0"] + TINY)
    data = load_training_set(cfg.data, cfg.training.seed)
    loss_fn = EDMLoss(cfg.training.p_mean, cfg.training.p_std)
    g = torch.Generator().manual_seed(0)
    sigma, noise = loss_fn.sample_sigma(8 * 4, g), torch.randn(32, 1, 80, 80, generator=g)
    x, ctx = data.images.repeat(4, 1, 1, 1), data.context.repeat(4, 1)

    def fixed_loss(denoiser):
        with torch.no_grad():
            return loss_fn(denoiser.eval(), x, ctx, sigma=sigma, noise=noise).mean().item()

    torch.manual_seed(cfg.training.seed)
    before = fixed_loss(Denoiser(cfg.model))
    ckpt = api.train(cfg, tmp_path / "run", progress=False)
    trained = Denoiser(cfg.model)
    trained.load_state_dict(read_model_file(ckpt / "model.safetensors")[0])
    after = fixed_loss(trained)
    assert after < 0.5 * before, (before, after)


def test_resume_gives_identical_steps(tmp_path):
    overrides = ["training.iterations=6", "training.checkpoint_every=3", "training.keep_checkpoints=5",
                 "model.dropout=0.1"] + TINY
    straight = api.train("tiny", tmp_path / "a", overrides=overrides, progress=False)
    api.train("tiny", tmp_path / "b", overrides=overrides, progress=False, max_steps=3)
    assert latest_checkpoint(tmp_path / "b").name == "step-0000003"
    resumed = api.train("tiny", tmp_path / "b", overrides=overrides, progress=False, resume=True)
    assert resumed.name == straight.name == "step-0000006"
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = read_model_file(straight / name)[0], read_model_file(resumed / name)[0]
        assert all(torch.equal(a[k], b[k]) for k in a), name
    with pytest.raises(ValueError, match="already holds a run"):
        api.train("tiny", tmp_path / "a", overrides=overrides, progress=False)


def test_init_from_starts_from_the_given_weights(tmp_path):
    overrides = ["training.iterations=2", "training.checkpoint_every=2"] + TINY
    source = api.train("tiny", tmp_path / "a", overrides=overrides, progress=False)
    start = read_model_file(source / "ema.safetensors")[0]
    # a step at learning rate 0 leaves the weights where they started: the source's EMA weights
    tuned = api.train("tiny", tmp_path / "b", progress=False, overrides=overrides + [
        f"training.init_from={tmp_path / 'a'}", "training.lr=0", "training.iterations=1"])
    for name in ("model.safetensors", "ema.safetensors"):
        state = read_model_file(tuned / name)[0]
        assert all(torch.equal(state[k], start[k]) for k in start), name
    fresh = read_model_file(api.train("tiny", tmp_path / "c", progress=False, overrides=overrides + [
        "training.lr=0", "training.iterations=1"]) / "model.safetensors")[0]
    assert not all(torch.equal(fresh[k], start[k]) for k in start)   # without it: random weights
    with pytest.raises(ValueError, match="another architecture"):
        api.train("tiny", tmp_path / "d", progress=False,
                  overrides=overrides + [f"training.init_from={tmp_path / 'a'}", "model.channels=16"])
    with pytest.raises(api.NoModelError, match="init_from: 'no-such-model' is neither"):
        api.train("tiny", tmp_path / "e", progress=False,
                  overrides=overrides + ["training.init_from=no-such-model"])


def test_metrics_and_tensorboard_written(tiny_run):
    rows = (tiny_run / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,images,loss,val_loss")
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    assert np.isfinite(float(rows[-1].split(",")[3]))          # validation loss
    assert any(p.name.startswith("events.out.tfevents") for p in (tiny_run / "tensorboard").iterdir())
    assert json.loads((tiny_run / "config.json").read_text())["name"] == "tiny"


def test_two_process_gloo_ddp(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "radiogen", "train", "--preset", "tiny", "--out", str(tmp_path / "ddp"), "--no-progress",
           "--set", "training.iterations=3", "--set", "training.checkpoint_every=3"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes" in done.stdout
    meta = read_model_file(latest_checkpoint(tmp_path / "ddp") / "model.safetensors")[2]
    fingerprints = meta["rank_fingerprints"]
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1]

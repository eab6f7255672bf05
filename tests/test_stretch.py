"""The asinh stretch of the denoiser's range (``data.stretch``): its maps, the training set it
gives and the inverse applied to a model's samples."""

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import perturb, tiny_model_config
from radiogen import api
from radiogen.config import DataConfig
from radiogen.data.transforms import from_model_range, to_model_range

A = 0.1
X = np.array([-0.05, 0.0, 0.003, 0.03, 0.3, 1.0], np.float32)


def test_stretch_maps_and_inverts():
    np.testing.assert_array_equal(to_model_range(X), X * 2 - 1)        # no stretch: linear
    y = to_model_range(X, A)
    s = (y + 1) / 2
    np.testing.assert_allclose(s, np.arcsinh(X / A) / np.arcsinh(1 / A), atol=1e-6)
    assert s[1] == 0 and s[-1] == pytest.approx(1, abs=1e-6)
    assert s[3] > 3 * X[3] and s[0] < 0                 # faint emission lifted, noise kept < 0
    np.testing.assert_allclose(from_model_range(y, A), X.clip(0, 1), atol=1e-6)
    assert from_model_range(np.array([1.5, -1.5]), A).tolist() == [1.0, 0.0]  # clamped
    with pytest.raises(ValueError, match="asinh stretch"):
        to_model_range(X, 2.0)
    with pytest.raises(ValueError, match="data.stretch"):
        DataConfig(stretch=-0.1)


def test_training_set_is_stretched_and_records_it(tmp_path):
    from radiogen.data.datasets import load_training_set
    from radiogen.data.pipeline import build_cutout_store
    from radiogen.data.store import read_store
    store = tmp_path / "mirabest.h5"
    build_cutout_store(Path(__file__).parent / "data" / "mirabest", store, progress=False)
    plain = load_training_set(DataConfig(source=str(store), balance="none"))
    stretched = load_training_set(DataConfig(source=str(store), balance="none", stretch=A))
    assert "stretch" not in plain.meta and stretched.meta["stretch"] == A
    images = read_store(store).images[:, None].astype(np.float32)
    np.testing.assert_allclose(stretched.images.numpy(), to_model_range(images, A), atol=1e-6)
    # the faint pixels take more of the range than without the stretch
    faint = (images > 0.02) & (images < 0.3)
    assert (stretched.images.numpy()[faint] > plain.images.numpy()[faint] + 0.05).all()
    # a run trained with it records it in its model file, for sampling to invert
    from radiogen.training.checkpoint import read_model_file, resolve_model_path
    run = tmp_path / "run"
    api.train("tiny", run, progress=False,
              overrides=[f"data.source={store}", "model.context_dim=1", "data.balance=none",
                         f"data.stretch={A}",
                         "training.iterations=2", "training.checkpoint_every=2"])
    meta = read_model_file(resolve_model_path(run))[2]
    assert meta["stretch"] == A
    from radiogen.cli.models import _stretch_summary                # `radiogen models` shows it
    assert _stretch_summary(meta) == f"; pixels asinh-stretched, a = {A:g}"
    assert _stretch_summary({}) == ""
    # starting a run on the linear range from these weights is allowed, but named
    linear = [f"data.source={store}", "model.context_dim=1", "data.balance=none",
              f"training.init_from={run}", "training.iterations=1", "training.checkpoint_every=1"]
    with pytest.warns(UserWarning, match=f"trained with data.stretch={A:g}, this run has data.stretch=0"):
        api.train("tiny", tmp_path / "linear", progress=False, overrides=linear)
    import warnings
    with warnings.catch_warnings():                                 # the same range: no warning
        warnings.filterwarnings("error", message=".*data.stretch")
        api.train("tiny", tmp_path / "same", progress=False, overrides=linear + [f"data.stretch={A}"])


def test_samples_of_a_stretched_model_are_mapped_back():
    from radiogen.models import Denoiser
    cfg = tiny_model_config(context_dim=1, image_size=32, channel_mult=(1, 2),
                            attention=(False, False), num_res_blocks=1)
    denoiser = perturb(Denoiser(cfg)).eval()
    meta = {"kind": "flux", "boxcox": {"lambda": -0.48, "mean": -12.3, "std": 4.78},
            "scaled_flux_histogram": {"counts": [1, 2, 1], "edges": [-1.0, 0.0, 1.0, 2.0]}}
    linear = api.Model(denoiser, cfg, meta, "linear", Path("linear"))
    asinh = api.Model(denoiser, cfg, {**meta, "stretch": A}, "asinh", Path("asinh"))
    kw = dict(scaled_flux=0.0, steps=3, seed=2, sampler="heun", progress=False, precision="fp32")
    with torch.no_grad():
        s = api.sample(linear, 2, **kw)
        x = api.sample(asinh, 2, **kw)
    assert 0 < s.mean() < 1
    # the same denoiser path; only the map back to [0, 1] differs: x = a·sinh(s·asinh(1/a))
    np.testing.assert_allclose(x, (A * np.sinh(s * np.arcsinh(1 / A))).clip(0, 1), atol=1e-5)

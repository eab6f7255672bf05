"""Autoguidance, classifier guidance and the noise-aware classifier."""

import pytest
import torch
from astropy.io import fits

from helpers import perturb, tiny_model_config
from radiogen import api
from radiogen.cli import main
from radiogen.cli.models import _sampling_summary
from radiogen.diffusion import GuidedDenoiser
from radiogen.models.noise_classifier import NoiseAwareClassifier
from radiogen.training.checkpoint import save_model_file
from radiogen.training.noise_classifier import (load_noise_classifier, train_noise_classifier)

from test_schedules_samplers import MaskedDenoiser


class ShiftedDenoiser(MaskedDenoiser):
    """A 'weaker' denoiser: the same as MaskedDenoiser, off by a constant."""

    def forward(self, x, sigma, context, context_mask):
        return super().forward(x, sigma, context, context_mask) - 0.25


class LinearClassifier(torch.nn.Module):
    """logits_k = a_k · Σ x: ∇ₓ log p_c = a_c − Σ_k p_k a_k at every pixel."""

    a = torch.tensor([1.0, -2.0, 0.5, 3.0])

    def forward(self, x, sigma):
        return x.flatten(1).sum(1, keepdim=True) * self.a * 0.01


def test_autoguidance_combination_and_passes():
    x, ctx = torch.randn(3, 1, 4, 4), torch.eye(4)[[0, 2, 3]]
    D_c = GuidedDenoiser(MaskedDenoiser(), ctx)(x, 1.0)
    auto = GuidedDenoiser(MaskedDenoiser(), ctx, 0.0, guide=ShiftedDenoiser(), autoguidance=2.0)
    torch.testing.assert_close(auto(x, 1.0), D_c + 2.0 * 0.25)       # D + ω_a (D − D_g)
    assert auto.n_network_evals == 2                                # model and guide
    both = GuidedDenoiser(MaskedDenoiser(), ctx, 0.75, guide=ShiftedDenoiser(), autoguidance=2.0)
    cfg_only = GuidedDenoiser(MaskedDenoiser(), ctx, 0.75)(x, 1.0)
    torch.testing.assert_close(both(x, 1.0), cfg_only + 0.5)
    assert both.n_network_evals == 3
    outside = GuidedDenoiser(MaskedDenoiser(), ctx, 0.75, interval=(2.0, 5.0),
                             guide=ShiftedDenoiser(), autoguidance=2.0)
    torch.testing.assert_close(outside(x, 1.0), D_c)                 # σ outside the interval
    assert outside.n_network_evals == 1
    with pytest.raises(ValueError, match="guide model"):
        GuidedDenoiser(MaskedDenoiser(), ctx, autoguidance=1.0)


def test_classifier_guidance_adds_the_scaled_log_probability_gradient():
    x, ctx = torch.randn(3, 1, 4, 4), torch.eye(4)[[0, 1, 3]]
    sigma, s = 2.0, 1.5
    plain = GuidedDenoiser(MaskedDenoiser(), ctx)(x, sigma)
    guided_fn = GuidedDenoiser(MaskedDenoiser(), ctx, classifier=LinearClassifier(),
                               classifier_scale=s)
    with torch.no_grad():                               # as in api.sample
        guided = guided_fn(x, sigma)
    a = LinearClassifier.a
    p = torch.softmax(x.flatten(1).sum(1, keepdim=True) * a * 0.01, dim=1)
    grad = 0.01 * (a[[0, 1, 3]] - (p * a).sum(1))           # ∂ log p_c / ∂ x_ij, every pixel
    torch.testing.assert_close(guided - plain, (s * sigma ** 2 * grad)[:, None, None, None]
                               .expand_as(x))
    assert guided_fn.n_classifier_evals == 1
    with pytest.raises(ValueError, match="noise-aware classifier"):
        GuidedDenoiser(MaskedDenoiser(), ctx, classifier_scale=1.0)


def test_noise_aware_classifier_trains_and_loads(tmp_path):
    cfg = tiny_model_config(channel_mult=(1, 2), attention=(False, True), patch_size=2,
                            context_dim=0)
    record = train_noise_classifier(tmp_path / "nc.safetensors", cfg, steps=3, batch_size=4,
                                    eval_every=3, limit=16, progress=False)
    assert record["step"] == 3 and set(record["valid_accuracy_by_sigma"]) >= {"0.2", "1", "5"}
    clf = load_noise_classifier(tmp_path / "nc.safetensors")
    assert clf.class_names == ["FRI", "FRII", "Compact", "Bent"]
    assert clf(torch.randn(2, 1, 80, 80), torch.tensor([0.1, 3.0])).shape == (2, 4)
    with pytest.raises(ValueError, match="not a noise-aware classifier"):
        load_noise_classifier(_a_denoiser_file(tmp_path))


def _a_denoiser_file(tmp_path):
    from radiogen.training.checkpoint import save_model_file
    from radiogen.models import Denoiser
    cfg = tiny_model_config()
    return save_model_file(tmp_path / "d.safetensors", Denoiser(cfg).state_dict(), cfg,
                           {"kind": "class", "class_names": ["FRI", "FRII", "Compact", "Bent"]})


def test_sample_with_autoguidance_and_classifier_guidance(tiny_run, tmp_path):
    model = api.load_model(str(tiny_run))
    perturb(model.denoiser)                       # a trained-looking model and a weaker guide
    guide = api.load_model(str(tiny_run))
    kw = dict(class_label="FRII", steps=4, seed=3, progress=False)
    plain = api.sample(model, 2, **kw)
    auto = api.sample(model, 2, guide_model=guide, autoguidance=1.0, **kw)
    assert auto.shape == plain.shape and abs(auto - plain).max() > 1e-4
    clf = perturb(NoiseAwareClassifier(tiny_model_config(context_dim=0), 4), scale=0.5).eval()
    clf.class_names = model.class_names
    guided = api.sample(model, 2, guide_classifier=clf, classifier_scale=5.0, **kw)
    assert abs(guided - plain).max() > 1e-4
    with pytest.raises(ValueError, match="guide model"):
        api.sample(model, 2, autoguidance=1.0, **kw)
    clf.class_names = ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="classes"):
        api.sample(model, 2, guide_classifier=clf, classifier_scale=1.0, **kw)
    # a model of the asinh-stretched range (data.stretch) is guided only on that range
    stretched = api.Model(model.denoiser, model.config, {**model.meta, "stretch": 0.1},
                          "stretched", model.path)
    with pytest.raises(ValueError, match="pixel range"):
        api.sample(stretched, 2, guide_model=guide, autoguidance=1.0, **kw)
    clf.class_names = model.class_names
    with pytest.raises(ValueError, match="data.stretch=0.1"):
        api.sample(stretched, 2, guide_classifier=clf, classifier_scale=1.0, **kw)


def test_cli_guide_options_write_their_cards(tiny_run, tmp_path):
    assert main(["sample", "--checkpoint", str(tiny_run), "--class", "FRI", "-n", "2", "--steps",
                 "3", "--guide-model", str(tiny_run), "--autoguidance", "0.5", "-w", "0",
                 "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    header = fits.getheader(tmp_path / "s" / "samples.fits")
    assert header["OMEGAAG"] == 0.5 and header["OMEGA"] == 0.0 and "AGMODEL" in header
    assert main(["sample", "--checkpoint", str(tiny_run), "--class", "FRI", "-n", "2",
                 "--autoguidance", "0.5", "--out", str(tmp_path / "t")]) == 2


def test_model_file_records_its_guide(tiny_run, tmp_path):
    """`radiogen models export --guide-model` records a guide beside the model file: sampling
    uses it unless told otherwise, and the pair travels together."""
    folder = tmp_path / "models"
    (folder / "guides").mkdir(parents=True)
    guide_file = api.export_model(str(tiny_run), folder / "guides" / "early.safetensors")
    model = api.load_model(str(tiny_run))
    perturb(model.denoiser)                       # a trained-looking model and a weaker guide
    trained = folder / "trained.safetensors"
    save_model_file(trained, model.denoiser.state_dict(), model.config, model.meta)
    assert main(["models", "export", str(trained), "--out", str(folder / "m.safetensors"),
                 "--guide-model", str(guide_file), "--autoguidance", "0.5"]) == 0
    recorded = api.load_model(str(folder / "m.safetensors"))
    assert recorded.meta["sampling"] == {"guide_model": "guides/early.safetensors",
                                         "autoguidance": 0.5}
    assert api.sampling_defaults(recorded)["guide_model"] == guide_file
    assert _sampling_summary(recorded.meta) == "; autoguidance ω_a 0.5 by guides/early.safetensors"
    kw = dict(class_label="FRII", steps=4, seed=3, progress=False, precision="fp32")
    by_default = api.sample(recorded, 2, **kw)
    given = api.sample(recorded, 2, guide_model=str(guide_file), autoguidance=0.5, **kw)
    off = api.sample(recorded, 2, autoguidance=0, **kw)
    plain = api.sample(api.load_model(str(trained)), 2, **kw)
    assert abs(by_default - given).max() < 1e-5             # same machine, batch and threads
    assert abs(off - plain).max() < 1e-5 and abs(by_default - plain).max() > 1e-4
    # the recorded guide goes into the FITS header, and --autoguidance 0 leaves it out
    for extra, out in (([], "s"), (["--autoguidance", "0"], "t")):
        assert main(["sample", "--checkpoint", str(folder / "m.safetensors"), "--class", "FRI",
                     "-n", "1", "--steps", "3", "--out", str(tmp_path / out), "--no-progress",
                     *extra]) == 0
    assert fits.getheader(tmp_path / "s" / "samples.fits")["AGMODEL"] == "early.safetensors"
    assert "AGMODEL" not in fits.getheader(tmp_path / "t" / "samples.fits")
    # a guide outside the model file's folder would not travel with it
    with pytest.raises(ValueError, match="must lie in the model file's folder"):
        api.export_model(folder / "m.safetensors", tmp_path / "other" / "m.safetensors")
    moved = api.export_model(folder / "m.safetensors", folder / "copy.safetensors",
                             sampling={"steps": 5})
    assert api.load_model(str(moved)).meta["sampling"]["guide_model"] == "guides/early.safetensors"
    unguided = api.export_model(folder / "m.safetensors", tmp_path / "other" / "plain.safetensors",
                                sampling={"autoguidance": 0})
    assert "guide_model" not in api.load_model(str(unguided)).meta.get("sampling", {})
    # a model file copied away from its guide says what is missing
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "m.safetensors").write_bytes((folder / "m.safetensors").read_bytes())
    with pytest.raises(FileNotFoundError, match="guide model that .* records is missing"):
        api.sample(api.load_model(str(lone / "m.safetensors")), 1, **kw)


def test_per_image_guidance_strengths():
    x, ctx = torch.randn(3, 1, 4, 4), torch.eye(4)[[0, 2, 3]]
    omegas = torch.tensor([0.75, 0.0, 2.0])
    mixed = GuidedDenoiser(MaskedDenoiser(), ctx, omegas)(x, 1.0)
    for i, w in enumerate(omegas.tolist()):
        one = GuidedDenoiser(MaskedDenoiser(), ctx[i:i + 1], w)(x[i:i + 1], 1.0)
        torch.testing.assert_close(mixed[i:i + 1], one)
    unguided = GuidedDenoiser(MaskedDenoiser(), ctx, torch.zeros(3))
    unguided(x, 1.0)
    assert unguided.n_network_evals == 1                 # ω = 0 everywhere: no unconditional half


def _with_class_guidance(tiny_run, tmp_path, per_class):
    """The tiny run's EMA weights as a model file whose meta guides some classes otherwise."""
    return api.export_model(tiny_run, tmp_path / "per-class.safetensors",
                            class_guidance=per_class)


def test_class_guidance_defaults_numbers_and_mappings(tiny_run, tmp_path):
    model = api.load_model(str(_with_class_guidance(tiny_run, tmp_path, {"Bent": 0.0})))
    perturb(model.denoiser)
    assert api.sampling_defaults(model)["class_guidance"] == {"Bent": 0.0}
    assert api.class_guidance(model) == {"FRI": 0.75, "FRII": 0.75, "Compact": 0.75, "Bent": 0.0}
    assert api.class_guidance(model, 0.5) == dict.fromkeys(model.class_names, 0.5)
    assert api.class_guidance(model, {"fri": 2}) == {"FRI": 2.0, "FRII": 0.75, "Compact": 0.75,
                                                     "Bent": 0.0}
    with pytest.raises(ValueError, match="unknown class 'Spiral'"):
        api.class_guidance(model, {"Spiral": 1})
    with pytest.raises(ValueError, match="finite number ≥ 0"):
        api.class_guidance(model, {"FRI": -1})
    kw = dict(steps=3, seed=5, progress=False, batch_size=4)
    labels = ["FRI", "Bent", "FRI", "Bent"]
    default = api.sample(model, 4, class_label=labels, **kw)
    at_075 = api.sample(model, 4, class_label=labels, guidance=0.75, **kw)
    at_0 = api.sample(model, 4, class_label=labels, guidance=0.0, **kw)
    assert abs(default[[0, 2]] - at_075[[0, 2]]).max() < 1e-5        # FRI at the kind's ω
    assert abs(default[[1, 3]] - at_0[[1, 3]]).max() < 1e-5           # Bent as the file says
    assert abs(at_075[[1, 3]] - at_0[[1, 3]]).max() > 1e-4            # and that is not a no-op
    flux = api.Model(model.denoiser, model.config, {"kind": "flux"}, "f", model.path)
    with pytest.raises(ValueError, match="needs a class model"):
        api.sample(flux, 1, scaled_flux=0.0, guidance={"Bent": 1.0}, **kw)


def test_cli_guidance_per_class_and_its_cards(tiny_run, tmp_path):
    path = _with_class_guidance(tiny_run, tmp_path, {"Bent": 0.3})
    common = ["--class", "FRI", "Bent", "-n", "1", "--steps", "2", "--no-progress"]
    assert main(["sample", "--checkpoint", str(path), *common, "--out", str(tmp_path / "a")]) == 0
    header = fits.getheader(tmp_path / "a" / "samples.fits")
    assert header["OMEGA"] == 0.75 and header["OMEGACLS"] == "Bent=0.3"
    assert main(["sample", "--checkpoint", str(path), *common, "-w", "1,FRI=0",
                 "--out", str(tmp_path / "b")]) == 0
    header = fits.getheader(tmp_path / "b" / "samples.fits")
    assert header["OMEGA"] == 1.0 and header["OMEGACLS"] == "FRI=0"
    assert main(["sample", "--checkpoint", str(path), *common, "-w", "0.5",
                 "--out", str(tmp_path / "c")]) == 0
    header = fits.getheader(tmp_path / "c" / "samples.fits")
    assert header["OMEGA"] == 0.5 and "OMEGACLS" not in header       # one ω for every class
    assert main(["sample", "--checkpoint", str(path), *common, "-w", "Spiral=1",
                 "--out", str(tmp_path / "d")]) == 2
    for bad in ("Bent=0.3,Bent=1", "0.5,0.6,FRI=1", "FRI=-1", "=1"):   # refused by the parser
        with pytest.raises(SystemExit) as exit_:
            main(["sample", "--checkpoint", str(path), *common, "-w", bad,
                  "--out", str(tmp_path / "d")])
        assert exit_.value.code == 2
    assert not (tmp_path / "d").exists()


def test_bundled_first_class_guides_bent_more_weakly():
    model = api.load_model("first-class")
    assert api.class_guidance(model) == {"FRI": 0.75, "FRII": 0.75, "Compact": 0.75, "Bent": 0.3}


def test_export_records_class_guidance(tiny_run, tmp_path):
    from radiogen.training.checkpoint import read_model_header
    out = tmp_path / "m.safetensors"
    assert main(["models", "export", str(tiny_run), "--out", str(out), "--dtype", "bf16",
                 "--class-guidance", "bent=0.3"]) == 0
    assert read_model_header(out)[1]["class_guidance"] == {"Bent": 0.3}
    assert api.class_guidance(api.load_model(str(out)))["Bent"] == 0.3
    for bad in ("0.3", "Spiral=1"):
        assert main(["models", "export", str(tiny_run), "--out", str(tmp_path / "x.safetensors"),
                     "--class-guidance", bad]) == 2
    assert not (tmp_path / "x.safetensors").exists()

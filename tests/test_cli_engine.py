"""Command-line smoke tests of the engine: train a few steps, sample, read what was written."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.wcs import WCS
from helpers import BATCH_ATOL, assert_batch_independent

from radiogen import api
from radiogen.cli import main
from radiogen.data.store import read_store


def test_sample_without_weights_says_so(capsys):
    assert main(["sample", "--model", "no-such-model", "--class", "FRII", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert "no trained weights are installed for model 'no-such-model'" in err
    assert "radiogen train" in err and "--checkpoint" in err


def test_help_texts(capsys):
    for command in (["--help"], ["train", "--help"], ["sample", "--help"], ["models", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(command)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "Heun" in out and "--resume" in out and "torchrun" in out


def test_train_then_sample_class_model(tiny_run, tmp_path, capsys):
    out = tmp_path / "samples"
    assert main(["sample", "--checkpoint", str(tiny_run), "--class", "FRII", "Bent", "-n", "3",
                 "--steps", "4", "--seed", "7", "--out", str(out), "--npy", "--h5", "--no-progress"]) == 0
    with fits.open(out / "samples.fits") as hdul:
        cube, header = hdul[0].data, hdul[0].header
        labels = hdul["LABELS"].data["LABEL"].tolist()
    assert cube.shape == (6, 80, 80) and cube.min() >= 0 and cube.max() <= 1
    assert header["STEPS"] == 4 and header["SAMPLER"] == api.DEFAULT_SAMPLER["class"]
    assert header["SEED"] == 7 and "SCHURN" not in header
    assert header["OMEGA"] == 0.75                                 # the paper's ω for FIRST
    assert (header["OMEGASLO"], header["OMEGASHI"]) == api.DEFAULT_GUIDANCE_INTERVAL["class"]
    assert labels == ["FRII"] * 3 + ["Bent"] * 3
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(np.load(out / "samples.npy"), cube)
    store = read_store(out / "samples.h5")
    assert store.labels.tolist() == [1] * 3 + [3] * 3 and store.class_names == ("FRI", "FRII", "Compact", "Bent")
    # one file per image, same seeds: the same images
    assert main(["sample", "--checkpoint", str(tiny_run), "--class", "FRII", "-n", "3", "--steps", "4",
                 "--seed", "7", "--format", "files", "--out", str(tmp_path / "files"), "--no-progress",
                 "--batch-size", "2"]) == 0
    first = fits.getdata(tmp_path / "files" / "sample_00000.fits")
    assert_batch_independent(first, cube[0])                # batches of 2 against one of 6
    assert fits.getheader(tmp_path / "files" / "sample_00002.fits")["SEED"] == 9


def test_sampling_is_seeded_and_batch_independent(tiny_run):
    model = api.load_model(str(tiny_run))
    a = api.sample(model, 5, class_label="Compact", steps=3, seed=3, batch_size=5, progress=False)
    b = api.sample(model, 5, class_label="Compact", steps=3, seed=3, batch_size=2, progress=False)
    c = api.sample(model, 5, class_label="Compact", steps=3, seed=4, batch_size=5, progress=False)
    assert_batch_independent(a, b)
    assert np.abs(a - c).max() > 100 * BATCH_ATOL            # another seed: another image
    assert (api.default_batch_size("cpu"), api.default_batch_size("cuda")) == (8, 64)
    assert np.array_equal(a, api.sample(model, 5, class_label="Compact", steps=3, seed=3,
                                        progress=False))     # the default: one batch of 5 on a CPU
    with pytest.raises(ValueError, match="unknown class 'FRIII'"):
        api.sample(model, 1, class_label="FRIII", progress=False)


def test_cpu_model_runs_channels_last_with_the_same_output(tiny_run):
    model = api.load_model(str(tiny_run))
    weight = model.denoiser.net.mid[0].conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    cfg = model.config
    x = torch.randn(3, 1, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(0))
    sigma, context = torch.tensor([0.1, 1.0, 20.0]), torch.eye(cfg.context_dim)[:3]
    with torch.inference_mode():
        nhwc = model.denoiser(x, sigma, context)
        model.denoiser.to(memory_format=torch.contiguous_format)
        nchw = model.denoiser(x, sigma, context)
    assert not torch.equal(x, nhwc)
    torch.testing.assert_close(nhwc, nchw, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sampler", ["heun", "euler", "dpmpp-2m", "ipndm", "heun-sde"])
def test_every_sampler_is_seeded_and_batch_independent(tiny_run, sampler):
    """Bit for bit with the same seed, batch size and thread count; to BATCH_ATOL with another
    batch size or thread count (oneDNN picks its kernels by shape and by processor); the
    stochastic sampler's fresh noise is seeded per image and step too."""
    model = api.load_model(str(tiny_run))
    kw = dict(class_label=["FRI", "Bent", "FRII"], steps=4, sampler=sampler, seed=11,
              guidance_interval=(0.1, 10.0), progress=False,
              churn=2.0 if sampler == "heun-sde" else 0.0)
    a = api.sample(model, 3, batch_size=3, **kw)
    assert np.isfinite(a).all()
    assert np.array_equal(a, api.sample(model, 3, batch_size=3, **kw))     # across runs
    assert_batch_independent(api.sample(model, 3, batch_size=2, **kw), a)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        b = api.sample(model, 3, batch_size=3, **kw)
        assert np.array_equal(b, api.sample(model, 3, batch_size=3, **kw))
        assert_batch_independent(b, a)
        assert_batch_independent(b, api.sample(model, 3, batch_size=1, **kw))
    finally:
        torch.set_num_threads(threads)


def test_default_guidance_interval_and_every_sigma(tiny_run, tmp_path):
    model = api.load_model(str(tiny_run))
    kw = dict(class_label="Bent", steps=5, seed=2, progress=False)
    default = api.sample(model, 2, **kw)
    assert np.array_equal(default, api.sample(model, 2, guidance_interval=(0.28, 5.42), **kw))
    everywhere = api.sample(model, 2, guidance_interval=api.EVERY_SIGMA, **kw)
    assert not np.array_equal(default, everywhere)
    out = tmp_path / "every"
    assert main(["sample", "--checkpoint", str(tiny_run), "--class", "Bent", "-n", "2", "--steps",
                 "5", "--seed", "2", "--guidance-interval", "0", "inf", "--npy", "--out", str(out),
                 "--no-progress"]) == 0
    assert np.array_equal(np.load(out / "samples.npy"), everywhere)
    assert "OMEGASLO" not in fits.getheader(out / "samples.fits")


def test_sample_command_sampler_options(tiny_run, tmp_path, capsys):
    from radiogen.cli import sample as sample_cli
    assert (sample_cli.DEFAULT_SAMPLER, sample_cli.DEFAULT_STEPS, sample_cli.DEFAULT_CHURN) == (
        api.DEFAULT_SAMPLER, api.DEFAULT_STEPS, api.DEFAULT_CHURN)
    assert sample_cli.DEFAULT_GUIDANCE_INTERVAL == api.DEFAULT_GUIDANCE_INTERVAL
    assert sample_cli.DEFAULT_BACKGROUND_CLIP == api.DEFAULT_BACKGROUND_CLIP
    out = tmp_path / "s"
    assert main(["sample", "--checkpoint", str(tiny_run), "--class", "FRI", "-n", "2", "--steps", "3",
                 "--sampler", "dpmpp-2m", "--guidance-interval", "0.2", "5", "--out", str(out),
                 "--no-progress"]) == 0
    header = fits.getheader(out / "samples.fits")
    assert header["SAMPLER"] == "dpmpp-2m" and header["STEPS"] == 3
    assert (header["OMEGASLO"], header["OMEGASHI"]) == (0.2, 5.0)
    assert "SCHURN" not in header
    sde = tmp_path / "sde"
    assert main(["sample", "--checkpoint", str(tiny_run), "--class", "FRI", "-n", "2", "--steps", "3",
                 "--sampler", "heun-sde", "--churn", "2", "--seed", "5", "--npy", "--out", str(sde),
                 "--no-progress"]) == 0
    header = fits.getheader(sde / "samples.fits")
    assert header["SAMPLER"] == "heun-sde" and header["SCHURN"] == 2.0
    model = api.load_model(str(tiny_run))
    churned = api.sample(model, 2, class_label="FRI", steps=3, sampler="heun-sde", churn=2.0,
                         seed=5, progress=False)
    np.testing.assert_allclose(np.load(sde / "samples.npy"), churned, rtol=0, atol=BATCH_ATOL)
    assert not np.allclose(churned, api.sample(model, 2, class_label="FRI", steps=3,
                                               sampler="heun", seed=5, progress=False))
    with pytest.raises(ValueError, match="only for the heun-sde sampler"):
        api.sample(model, 1, class_label="FRI", sampler="heun", churn=1.0)
    for bad, message in ((["--sampler", "rk4"], "--sampler: unknown sampler 'rk4'"),
                         (["--churn", "1"], "--churn needs --sampler heun-sde"),
                         (["--steps", "1"], "--steps must be at least 2"),
                         (["--guidance-interval", "5", "1"], "SIGMA_LO ≤ SIGMA_HI"),
                         (["--background-clip", "1"], "--background-clip must be below 1")):
        assert main(["sample", "--checkpoint", str(tiny_run), "--class", "FRI", "--out", str(out),
                     *bad]) == 2
        assert message in capsys.readouterr().err


def test_model_file_records_its_sampling_defaults(tiny_run, tmp_path, capsys):
    """A model file may carry its own sampler, N and S_churn (`radiogen models export
    --sampler/--steps/--churn`), used by api.sample and `radiogen sample` when none is given."""
    from radiogen.training.checkpoint import read_model_header
    out = tmp_path / "sde.safetensors"
    assert main(["models", "export", str(tiny_run), "--out", str(out), "--sampler", "heun-sde",
                 "--steps", "3", "--churn", "2"]) == 0
    meta = read_model_header(out)[1]
    assert meta["sampling"] == {"sampler": "heun-sde", "steps": 3, "churn": 2.0}
    from radiogen.cli.models import _sampling_summary              # `radiogen models` lists it
    assert _sampling_summary(meta) == "; sampler: heun-sde N 3 S_churn 2"
    assert _sampling_summary(read_model_header(api.model_path("first-class"))[1]) == ""
    model = api.load_model(str(out))
    defaults = api.sampling_defaults(model)
    assert (defaults["sampler"], defaults["steps"], defaults["churn"]) == ("heun-sde", 3, 2.0)
    assert defaults["guidance"] == api.DEFAULT_GUIDANCE["class"]        # the rest as the kind's
    kw = dict(class_label="FRI", seed=5, progress=False)
    recorded = api.sample(model, 2, **kw)
    np.testing.assert_allclose(recorded, api.sample(model, 2, sampler="heun-sde", steps=3,
                                                    churn=2.0, **kw), rtol=0, atol=1e-6)
    assert not np.allclose(recorded, api.sample(model, 2, **kw, sampler="heun-sde", steps=3,
                                                churn=0.0))
    assert main(["sample", "--checkpoint", str(out), "--class", "FRI", "-n", "1",
                 "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    header = fits.getheader(tmp_path / "s" / "samples.fits")
    assert (header["SAMPLER"], header["STEPS"], header["SCHURN"]) == ("heun-sde", 3, 2.0)
    # another sampler laid over the file's drops its churn; N stays
    again = api.export_model(out, tmp_path / "dpm.safetensors", sampling={"sampler": "dpmpp-2m"})
    defaults = api.sampling_defaults(api.load_model(str(again)))
    assert (defaults["sampler"], defaults["steps"], defaults["churn"]) == ("dpmpp-2m", 3, 0.0)
    for bad, message in ((["--sampler", "rk4"], "unknown sampler 'rk4'"),
                         (["--sampler", "consistency"], "needs a consistency-tuned model"),
                         (["--churn", "1"], "churn needs the heun-sde sampler")):
        assert main(["models", "export", str(tiny_run), "--out", str(tmp_path / "x.safetensors"),
                     *bad]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:                            # refused by the parser
        main(["models", "export", str(tiny_run), "--out", str(tmp_path / "x.safetensors"),
              "--steps", "1"])
    assert exit_.value.code == 2 and "out of range" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
    with pytest.raises(ValueError, match="unknown keys"):
        api.export_model(tiny_run, tmp_path / "x.safetensors", sampling={"eta": 1})


def test_background_clip_of_class_models(tiny_run, tmp_path):
    """Class models clip the faint background haze by default (the FIRST images' zero
    backgrounds); 0 turns it off; the FITS header says which threshold was used."""
    from radiogen.data.transforms import clip_background
    model = api.load_model(str(tiny_run))
    assert api.sampling_defaults(model)["background_clip"] == api.DEFAULT_BACKGROUND_CLIP["class"] > 0
    kw = dict(class_label="FRII", steps=3, seed=4, progress=False)
    raw = api.sample(model, 2, background_clip=0, **kw)
    clipped = api.sample(model, 2, **kw)
    assert np.allclose(clipped, clip_background(raw, api.DEFAULT_BACKGROUND_CLIP["class"]), atol=1e-6)
    assert not np.allclose(clipped, raw, atol=1e-3)
    with pytest.raises(ValueError, match="background_clip must be in"):
        api.sample(model, 1, background_clip=1.0, **kw)
    for clip, card in ((None, api.DEFAULT_BACKGROUND_CLIP["class"]), ("0", None), ("0.2", 0.2)):
        out = tmp_path / f"clip-{clip}"
        assert main(["sample", "--checkpoint", str(tiny_run), "--class", "FRII", "-n", "2",
                     "--steps", "3", "--seed", "4", "--npy", "--out", str(out), "--no-progress",
                     *(["--background-clip", clip] if clip else [])]) == 0
        assert fits.getheader(out / "samples.fits").get("BGCLIP") == card
        expected = clip_background(raw, card or 0.0)
        assert np.allclose(np.load(out / "samples.npy"), expected, atol=1e-6)


def test_flux_model_writes_jy_per_beam(tmp_path):
    from radiogen.data.pipeline import build_cutout_store
    from pathlib import Path
    store = tmp_path / "mirabest.h5"
    build_cutout_store(Path(__file__).parent / "data" / "mirabest", store, progress=False)
    run = tmp_path / "flux-run"
    assert main(["train", "--preset", "tiny", "--data", str(store), "--out", str(run), "--no-progress",
                 "--set", "model.context_dim=1", "--set", "data.balance=none",
                 "--set", "training.iterations=2"]) == 0
    out = tmp_path / "flux-samples"
    assert main(["sample", "--checkpoint", str(run), "--peak-flux", "0.05", "-n", "2", "--steps", "3",
                 "--ra", "150.0", "--dec", "2.2", "--out", str(out), "--no-progress"]) == 0
    for k in range(2):
        with fits.open(out / f"sample_{k:05d}.fits") as hdul:
            data, header = hdul[0].data, hdul[0].header
        assert data.max() == pytest.approx(0.05, rel=1e-6) and data.min() == 0
        assert header["BUNIT"] == "JY/BEAM" and header["OMEGA"] == 0.1
        assert "BGCLIP" not in header          # flux models keep their noise background
        # EDM's stochastic sampler by default (first-flux's card, "EDM's stochastic sampler")
        assert header["SAMPLER"] == api.DEFAULT_SAMPLER["flux"] == "heun-sde"
        assert header["SCHURN"] == api.DEFAULT_CHURN["flux"] > 0
        centre = WCS(header).pixel_to_world(39.5, 39.5)
        assert centre.ra.deg == pytest.approx(150.0, abs=1e-3) and centre.dec.deg == pytest.approx(2.2, abs=1e-3)
    # fluxes drawn from the training distribution when none is given
    assert main(["sample", "--checkpoint", str(run), "-n", "3", "--steps", "2", "--out",
                 str(tmp_path / "drawn"), "--no-progress"]) == 0
    peaks = [fits.getdata(tmp_path / "drawn" / f"sample_{k:05d}.fits").max() for k in range(3)]
    assert all(p > 0 for p in peaks) and len(set(peaks)) == 3
    # the API's default churn comes with the default sampler only: heun-sde named is the same
    # draw, another sampler runs without churn (heun: the same noise levels, no noise added)
    model = api.load_model(str(run))
    kw = dict(scaled_flux=0.0, steps=3, seed=1, progress=False)
    default = api.sample(model, 2, **kw)
    named = api.sample(model, 2, sampler="heun-sde", **kw)
    np.testing.assert_allclose(named, default, rtol=0, atol=BATCH_ATOL)
    assert api.default_churn(model, "heun") == 0 and api.default_churn(model, "heun-sde") == 4
    assert not np.allclose(api.sample(model, 2, sampler="heun", **kw), default, atol=1e-3)
    np.testing.assert_allclose(api.sample(model, 2, sampler="heun-sde", churn=0, **kw),
                               api.sample(model, 2, sampler="heun", **kw), rtol=0, atol=BATCH_ATOL)


def test_export_half_precision_model_file(tiny_run, tmp_path, capsys):
    from radiogen.training.checkpoint import read_model_file, resolve_model_path
    out = tmp_path / "tiny-bf16.safetensors"
    assert main(["models", "export", str(tiny_run), "--out", str(out), "--dtype", "bf16"]) == 0
    ema, cfg, _ = read_model_file(resolve_model_path(tiny_run))
    model = api.load_model(str(out))
    assert model.config == cfg and model.meta["stored_dtype"] == "bf16"
    for name, value in model.denoiser.state_dict().items():
        assert value.dtype == ema[name].dtype
        assert np.array_equal(value.numpy(), ema[name].to(torch.bfloat16).float().numpy()), name
    images = api.sample(model, 2, class_label="FRI", steps=3, progress=False)
    assert images.shape == (2, 80, 80)
    assert "bundled models" in (main(["models"]) == 0 and capsys.readouterr().out)


def test_resume_from_the_command_line_uses_the_runs_config(tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--out", str(run), "--no-progress", "--set", "training.iterations=4",
              "--set", "training.checkpoint_every=2", "--set", "model.channels=12",
              "--set", "model.norm_groups=4"]
    assert main(["train", "--preset", "tiny", *common, "--max-steps", "2"]) == 0
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert "step-0000004" in capsys.readouterr().out
    assert api.load_model(str(run)).config.channels == 12


def test_bundled_model_makes_images(tmp_path):
    """The main job's model: loads by name and draws images of every class."""
    assert "first-class" in api.bundled_models()
    model = api.load_model("first-class")
    assert model.kind == "class" and model.class_names == ["FRI", "FRII", "Compact", "Bent"]
    assert model.meta["step"] > 0 and model.meta["stored_dtype"] == "bf16"
    # the default sampler, as the main job runs it (4 steps of DPM-Solver++ leave the long-trained
    # weights' sources faint: peaks 0.4-0.45 instead of 1)
    assert main(["sample", "--class", "FRII", "-n", "2", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    cube = fits.getdata(tmp_path / "samples.fits")
    assert cube.shape == (2, 80, 80) and np.isfinite(cube).all() and cube.max() > 0.5


def test_main_job_does_not_import_scipy(tmp_path):
    """Importing `scipy.stats` takes 0.6-0.9 s on a 2-core CPU and `scipy.special` 0.2-0.3 s,
    together a sixth of the main job: a class model's sampling needs neither, a peak-flux model's
    `scipy.special` alone (the inverse Box-Cox); only fitting a Box-Cox λ needs `scipy.stats`."""
    jobs = [["--class", "FRII"], ["--model", "first-flux", "--peak-flux", "0.05"]]
    code = "import sys; from radiogen.cli import main; " + "; ".join(
        f"main(['sample', *{job!r}, '-n', '1', '--steps', '2', '--out', "
        f"{str(tmp_path / str(i))!r}, '--no-progress']); "
        "print(sorted({'scipy.special', 'scipy.stats'} & set(sys.modules)))"
        for i, job in enumerate(jobs))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert [len(list((tmp_path / str(i)).glob("*.fits"))) for i in range(2)] == [1, 1]
    after_class, after_flux = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert after_class == "[]"
    assert after_flux == "['scipy.special']"


def test_bundled_flux_model_gives_the_requested_peak(tmp_path):
    """The second shipped model: FIRST (MiraBest) cut-outs conditioned on peak flux, in Jy/beam."""
    assert "first-flux" in api.bundled_models()
    model = api.load_model("first-flux")
    assert model.kind == "flux" and model.meta["stored_dtype"] == "bf16"
    assert model.meta["pixel_scale_arcsec"] == pytest.approx(1.8)
    # trained on cut-outs that keep their noise, on the asinh-stretched range, it records its
    # own sampler and stretch (its model card)
    defaults = api.sampling_defaults(model)
    assert (defaults["sampler"], defaults["steps"], defaults["churn"]) == ("dpmpp-2m", 25, 0.0)
    assert model.stretch == pytest.approx(0.2)
    assert main(["sample", "--model", "first-flux", "--peak-flux", "0.05", "0.002", "-n", "1",
                 "--steps", "3", "--out", str(tmp_path), "--no-progress"]) == 0
    for k, peak in enumerate((0.05, 0.002)):
        with fits.open(tmp_path / f"sample_{k:05d}.fits") as hdul:
            data, header = hdul[0].data, hdul[0].header
        assert data.max() == pytest.approx(peak, rel=1e-6) and data.min() >= 0
        assert header["BUNIT"] == "JY/BEAM" and header["BMAJ"] == pytest.approx(5 / 3600)
        assert header["RESTFRQ"] == pytest.approx(1.4e9) and header["SAMPLER"] == "dpmpp-2m"

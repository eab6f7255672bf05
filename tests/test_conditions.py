"""Conditioning on several source properties (issue 17): column transforms, measured sizes,
per-column dropout, subset conditioning, and the command line with units."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits

from radiogen import api
from radiogen.cli import main
from radiogen.data.conditions import (Condition, OutOfRangeWarning, conditions_of, fit_condition,
                                      parse_condition, to_column_unit)
from radiogen.data.measure import measure_images
from radiogen.models import Denoiser
from radiogen.training.loop import context_keep

from helpers import perturb, tiny_model_config

MIRABEST = Path(__file__).parent / "data" / "mirabest"


@pytest.mark.parametrize("transform", ["boxcox", "log", "standard"])
def test_transform_round_trip(transform):
    rng = np.random.default_rng(0)
    values = rng.lognormal(-3.0, 1.0, 500)
    c = fit_condition("total_flux", values, transform)
    z = c.forward(values)
    assert abs(z.mean()) < 1e-9 and z.std() == pytest.approx(1.0, rel=1e-9)   # standardised
    np.testing.assert_allclose(c.inverse(z), values, rtol=1e-9)
    assert Condition.from_dict(c.to_dict()) == c
    assert (c.lo, c.hi) == (values.min(), values.max())
    assert np.isnan(c.forward([np.nan]))[0]                         # unknown stays unknown


def test_transform_choices_and_errors():
    assert fit_condition("peak_flux", [0.01, 0.1, 1.0]).transform == "boxcox"
    assert fit_condition("major_axis", [5.0, 20.0, 90.0]).unit == "arcsec"
    with pytest.raises(ValueError, match="log transform needs values > 0"):
        fit_condition("major_axis", [-1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="two distinct"):
        fit_condition("major_axis", [3.0, 3.0])
    legacy = conditions_of({"boxcox_lambda": -0.2, "boxcox_mean": -5.0, "boxcox_std": 2.0})
    assert [(c.name, c.transform, c.lam) for c in legacy] == [("peak_flux", "boxcox", -0.2)]


def test_values_with_units():
    size = fit_condition("major_axis", [5.0, 20.0, 90.0])
    flux = fit_condition("peak_flux", [0.01, 0.1, 1.0])
    assert to_column_unit(size, "30arcsec") == pytest.approx(30.0)
    assert to_column_unit(size, "0.5 arcmin") == pytest.approx(30.0)
    assert to_column_unit(size, "30") == 30.0                         # bare: the column's unit
    assert to_column_unit(flux, "50mJy/beam") == pytest.approx(0.05)
    with pytest.raises(ValueError, match="cannot be converted to arcsec"):
        to_column_unit(size, "3 Jy")
    assert parse_condition("peak_flux=0.01, 0.1") == ("peak_flux", ["0.01", "0.1"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_condition("major_axis")


def test_moments_measure_an_elliptical_gaussian():
    y, x = np.indices((80, 80), dtype=np.float64)
    sa, sb, pa = 6.0, 3.0, math.radians(30.0)          # σ along / across the major axis
    u = -math.sin(pa) * (x - 40) + math.cos(pa) * (y - 40)    # along PA, east of north (−x)
    v = math.cos(pa) * (x - 40) + math.sin(pa) * (y - 40)
    image = np.exp(-0.5 * (u ** 2 / sa ** 2 + v ** 2 / sb ** 2))
    m = measure_images(image[None], pixel_scale_arcsec=1.5, beam_area_pixels=10.0)
    assert m["major_axis"][0] == pytest.approx(2 * math.sqrt(2 * math.log(2)) * sa * 1.5, rel=1e-3)
    assert m["minor_axis"][0] == pytest.approx(2 * math.sqrt(2 * math.log(2)) * sb * 1.5, rel=1e-3)
    assert m["position_angle"][0] == pytest.approx(30.0, abs=0.1)
    assert m["total_flux"][0] == pytest.approx(2 * math.pi * sa * sb / 10.0, rel=1e-3)


def test_per_column_dropout_rates():
    g = torch.Generator().manual_seed(0)
    ctx = torch.zeros(20000, 2)
    ctx[::4, 1] = float("nan")                                  # a quarter without column 1
    keep = context_keep(ctx, 0.1, 0.3, True, g)
    assert keep.shape == (20000, 2)
    assert (keep.sum(1) == 0).float().mean().item() == pytest.approx(0.1 + 0.9 * 0.3 * (
        0.3 * 0.75 + 0.25), abs=0.01)
    assert keep[::4, 1].sum() == 0                              # unknown values never given
    assert keep[:, 0].mean().item() == pytest.approx(0.9 * 0.7, abs=0.01)
    legacy = context_keep(ctx, 0.1, 0.3, False, torch.Generator().manual_seed(0))
    assert legacy.shape == (20000,) and legacy.mean().item() == pytest.approx(0.9, abs=0.01)


def test_left_free_columns_do_not_matter_and_none_given_is_unconditional():
    torch.manual_seed(0)
    net = perturb(Denoiser(tiny_model_config(context_dim=2, column_mask=True))).net.eval()
    c_noise = torch.zeros(3)
    a = torch.tensor([[0.5, -1.0]] * 3)
    b = torch.tensor([[0.5, 2.0]] * 3)
    only_first = torch.tensor([[1.0, 0.0]] * 3)
    with torch.no_grad():
        assert torch.equal(net.embed(c_noise, a, only_first), net.embed(c_noise, b, only_first))
        assert not torch.allclose(net.embed(c_noise, a), net.embed(c_noise, b))
        none = torch.zeros(3, 2)
        assert torch.equal(net.embed(c_noise, a, none), net.embed(c_noise, None))
        nan = torch.tensor([[0.5, float("nan")]] * 3)           # unknown, left free: no NaN out
        assert torch.equal(net.embed(c_noise, nan, only_first), net.embed(c_noise, a, only_first))


@pytest.fixture(scope="module")
def property_run(tmp_path_factory):
    """A store of the test MiraBest cut-outs with measured sizes, a tiny flux model trained on
    its peak flux alone and a tiny property model started from it (seconds)."""
    tmp = tmp_path_factory.mktemp("properties")
    from radiogen.data.pipeline import build_cutout_store
    flux_store, store = tmp / "flux.h5", tmp / "props.h5"
    from radiogen.data.pipeline import PipelineSettings
    build_cutout_store(MIRABEST, flux_store, PipelineSettings(beam_arcsec=(5.0, 5.0, 0.0)),
                       progress=False, workers=1)
    assert main(["data", "conditions", str(flux_store), "--measure", "moments", "--conditions",
                 "peak_flux", "major_axis", "--out", str(store), "--no-progress"]) == 0
    common = ["--preset", "tiny", "--no-progress", "--set", "data.balance=none",
              "--set", "data.valid_fraction=0", "--set", "training.iterations=2"]
    flux_run, run = tmp / "flux-run", tmp / "props-run"
    assert main(["train", *common, "--data", str(flux_store), "--out", str(flux_run),
                 "--set", "model.context_dim=1"]) == 0
    assert main(["train", *common, "--data", str(store), "--out", str(run),
                 "--set", "model.context_dim=2", "--set", "model.column_mask=true",
                 "--set", "training.column_dropout=0.3", "--init-from", str(flux_run)]) == 0
    return {"store": store, "flux_run": flux_run, "run": run, "tmp": tmp}


def test_position_angle_is_refused_with_flips_and_rotations(property_run, tmp_path, capsys):
    store = tmp_path / "pa.h5"
    assert main(["data", "conditions", str(property_run["store"]), "--conditions", "peak_flux",
                 "position_angle", "--out", str(store), "--no-progress"]) == 0
    assert main(["train", "--preset", "tiny", "--data", str(store), "--out", str(tmp_path / "r"),
                 "--set", "model.context_dim=2", "--set", "model.column_mask=true",
                 "--set", "data.balance=none", "--set", "training.iterations=1",
                 "--no-progress"]) == 2
    assert "scrambled by the flips and rotations" in capsys.readouterr().err


def test_store_records_the_conditions(property_run):
    from radiogen.data.store import read_store
    store = read_store(property_run["store"])
    names = [c["name"] for c in store.attrs["conditions"]]
    assert names == ["peak_flux", "major_axis"]
    sizes = store.columns["major_axis"]
    assert np.all(np.isfinite(sizes)) and np.all(sizes > 4.0)    # at least about the 5″ beam
    c = conditions_of(store.attrs)[1]
    np.testing.assert_allclose(c.inverse(c.forward(sizes)), sizes, rtol=1e-9)


def test_subset_conditioning_and_clear_errors(property_run):
    model = api.load_model(str(property_run["run"]))
    assert [c.name for c in model.conditions] == ["peak_flux", "major_axis"]
    assert model.kind == "flux" and model.config.column_mask
    z, mask = api.condition_context(model, 4, {"major_axis": ["40 arcsec", "1 arcmin", 70, 80]})
    assert mask.tolist() == [[0.0, 1.0]] * 4
    np.testing.assert_allclose(model.conditions[1].inverse(z[:, 1].numpy()), [40, 60, 70, 80],
                               rtol=1e-5)
    images = api.sample(model, 2, conditions={"major_axis": "50arcsec"}, steps=3, progress=False)
    assert images.shape == (2, 80, 80) and np.isfinite(images).all()
    with pytest.raises(ValueError, match="its conditions are peak_flux, major_axis"):
        api.condition_context(model, 1, {"redshift": 0.5})
    with pytest.warns(OutOfRangeWarning, match="outside the training range"):
        api.condition_context(model, 1, {"major_axis": "1 deg"})
    drawn = api.draw_free_conditions(model, {"major_axis": [50.0, 50.0]}, ["peak_flux"], 2)
    table = model.meta["condition_table"]
    assert set(drawn["peak_flux"]) <= set(table["peak_flux"])


def test_widened_model_starts_as_the_peak_flux_model(property_run):
    """--init-from a peak-flux model: with only the peak given, the property model starts as the
    same function (its context embedding gets zero weights for the new inputs)."""
    from radiogen.training.checkpoint import read_model_file, resolve_model_path
    from radiogen.training.loop import _widen_context
    _, cfg, meta = read_model_file(resolve_model_path(property_run["flux_run"]))
    new_model = api.load_model(str(property_run["run"]))
    old = perturb(Denoiser(cfg), seed=3).eval()          # not the zero output layer of init
    widened = _widen_context(old.state_dict(), cfg, meta, new_model.config, new_model.meta,
                             "flux-run")
    new = Denoiser(new_model.config).eval()
    new.load_state_dict(widened)
    x, sigma = torch.randn(2, 1, 80, 80), torch.tensor([0.5, 2.0])
    z = torch.tensor([[0.3], [-1.0]])
    with torch.no_grad():
        a = old(x, sigma, z)
        b = new(x, sigma, torch.cat([z, torch.full_like(z, 7.0)], 1),
                torch.tensor([[1.0, 0.0]] * 2))
        c = new(x, sigma, torch.cat([z, torch.full_like(z, 7.0)], 1))   # size given too
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert torch.equal(b, c)     # the new inputs start with zero weight: training teaches them
    with pytest.raises(ValueError, match="do not all include"):
        _widen_context(old.state_dict(), cfg, {"conditions": [{**new_model.meta["conditions"][1],
                                                              "name": "redshift"}]},
                       new_model.config, new_model.meta, "other")


def test_sample_command_with_units(property_run, tmp_path, capsys):
    out = tmp_path / "sizes"
    assert main(["sample", "--checkpoint", str(property_run["run"]), "--condition",
                 "major_axis=40arcsec,1arcmin", "-n", "1", "--steps", "2", "--out", str(out),
                 "--h5", "--no-progress"]) == 0
    headers = [fits.getheader(out / f"sample_{k:05d}.fits") for k in range(2)]
    from radiogen.data.store import read_store
    written = read_store(out / "samples.h5")                    # readable by radiogen evaluate
    np.testing.assert_allclose(written.columns["major_axis"], [40.0, 60.0])
    assert written.scaled_flux is not None and written.attrs["conditions"][1]["unit"] == "arcsec"
    assert [h["RG MAJOR_AXIS"] for h in headers] == pytest.approx([40.0, 60.0])
    assert all("drawn" in h.comments["RG PEAK_FLUX"] for h in headers)
    for k, h in enumerate(headers):
        data = fits.getdata(out / f"sample_{k:05d}.fits")
        assert data.max() == pytest.approx(h["RG PEAK_FLUX"], rel=1e-6)
    out = tmp_path / "peak"
    peak = api.load_model(str(property_run["run"])).conditions[0]
    middle = math.sqrt(peak.lo * peak.hi)               # Jy/beam
    assert main(["sample", "--checkpoint", str(property_run["run"]), "--condition",
                 f"peak_flux={1e3 * middle}mJy/beam", "-n", "1", "--steps", "2", "--out",
                 str(out), "--no-progress"]) == 0
    h = fits.getheader(out / "sample_00000.fits")
    assert h["RG PEAK_FLUX"] == pytest.approx(middle) and h["RG MAJOR_AXIS"] == "free"
    capsys.readouterr()
    for bad, message in ((["--condition", "redshift=1"],
                          "its conditions are peak_flux, major_axis"),
                         (["--condition", "major_axis=3Jy"], "cannot be converted to arcsec"),
                         (["--condition", "major_axis=1,2", "--condition", "peak_flux=1,2,3"],
                          "give 1 or 3"),
                         (["--class", "FRI"], "give --condition, not --class")):
        assert main(["sample", "--checkpoint", str(property_run["run"]), "--out",
                     str(tmp_path / "bad"), "--no-progress", *bad]) == 2
        assert message in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfRangeWarning)
        with pytest.raises(OutOfRangeWarning):
            main(["sample", "--checkpoint", str(property_run["run"]), "--condition",
                  "major_axis=1deg", "-n", "1", "--steps", "2", "--out", str(tmp_path / "far"),
                  "--no-progress"])


def test_catalog_columns_convert_units(property_run, tmp_path):
    from astropy import units as u
    from astropy.table import Table

    from radiogen.data.properties import catalog_properties
    from radiogen.data.store import read_store
    store = read_store(property_run["store"])
    names = list(store.columns["names"])
    table = Table({"Source_Name": names[1:] + ["elsewhere"],
                   "Peak_flux": np.arange(len(names), dtype=float) * u.mJy / u.beam,
                   "Maj": np.full(len(names), 0.01) * u.deg})
    path = tmp_path / "catalog.fits"
    table.write(path)
    got = catalog_properties(store, path, ["Peak_flux", "Maj"])
    assert np.isnan(got["peak_flux"][0])                       # not in the catalog
    np.testing.assert_allclose(got["peak_flux"][1:], np.arange(len(names) - 1) * 1e-3)
    np.testing.assert_allclose(got["major_axis"][1:], 36.0)    # 0.01° in arcsec
    with pytest.raises(ValueError, match="no column 'Redshift'"):
        catalog_properties(store, path, ["Redshift"])


def test_bundled_flux_size_model_follows_its_size_condition(tmp_path):
    """The shipped first-flux-size: asked for small and large sources at the same peak flux,
    the large ones come out larger (image moments over the islands, as its store was measured);
    its FITS files carry both conditions."""
    assert "first-flux-size" in api.bundled_models()
    model = api.load_model("first-flux-size")
    assert [c.name for c in model.conditions] == ["peak_flux", "major_axis"]
    defaults = api.sampling_defaults(model)
    assert defaults["guidance"] == api.DEFAULT_GUIDANCE["properties"]
    # sampled as its obedience was measured: DPM-Solver++(2M), N = 15, no churn
    assert (defaults["sampler"], defaults["steps"], defaults["churn"]) == ("dpmpp-2m", 15, 0.0)
    sizes = np.repeat([12.0, 60.0], 4)
    images = api.sample(model, len(sizes), steps=8, progress=False,
                        conditions={"peak_flux": 0.03, "major_axis": sizes})
    measured = measure_images(images * 0.03, 1.8, 1.0)["major_axis"]
    assert np.nanmedian(measured[4:]) > 1.5 * np.nanmedian(measured[:4])
    assert main(["sample", "--model", "first-flux-size", "--condition", "peak_flux=30mJy/beam",
                 "--condition", "major_axis=0.5arcmin", "-n", "1", "--steps", "3", "--out",
                 str(tmp_path), "--no-progress"]) == 0
    header = fits.getheader(tmp_path / "sample_00000.fits")
    assert header["RG MAJOR_AXIS"] == pytest.approx(30.0) and header["BUNIT"] == "JY/BEAM"
    assert fits.getdata(tmp_path / "sample_00000.fits").max() == pytest.approx(0.03, rel=1e-6)

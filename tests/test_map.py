"""Synthetic survey maps (radiogen.maps, `radiogen map`): WCS, noise, placement, tiling,
catalogues, the command line and the PyBDSF recovery check, on tiny maps. Most tests replace
the sampler by known Gaussian cut-outs (``fake_sampler``); one runs a tiny random network."""

import json
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from radiogen import api
from radiogen.cli import main
from radiogen.data.fits_io import Beam
from radiogen.evaluation.sources import bdsf_available
from radiogen.maps import CatalogError, SourceList, read_catalog
from radiogen.maps.geometry import MapGeometry
from radiogen.maps.noise import CorrelatedNoise
from radiogen.maps.placement import place

CUTOUT = 40                       # side of the fake cut-outs (model pixels)
BEAM = Beam(5.0, 5.0, 0.0)
FLUX_META = {"kind": "flux", "pixel_scale_arcsec": 1.8, "beam_arcsec": [5.0, 5.0, 0.0],
             "frequency_hz": 1.4e9, "boxcox": {"lambda": -0.48, "mean": -12.3, "std": 4.78},
             "scaled_flux_histogram": {"counts": [1, 2, 1], "edges": [-1.0, 0.0, 1.0, 2.0]}}


def gaussian(sigma, size=CUTOUT, dy=0.0):
    """A [0, 1] Gaussian centred on the cut-out's centre (shifted ``dy`` pixels up)."""
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    return np.exp(-((yy - c - dy) ** 2 + (xx - c) ** 2) / (2 * sigma ** 2)).astype(np.float32)


@pytest.fixture
def fake_sampler(monkeypatch):
    """api.sample replaced: image k is a Gaussian whose width depends on its seed, so that a
    source given another seed (or another source's image) shows in the map."""
    calls = []

    def sample(model, n, seeds=None, **kw):
        calls.append(list(seeds))
        return np.stack([gaussian(1.6 + 0.4 * (s % 3)) for s in seeds])
    monkeypatch.setattr(api, "sample", sample)
    return calls


@pytest.fixture
def flux_model():
    from helpers import tiny_model_config
    from radiogen.models import Denoiser
    cfg = tiny_model_config(context_dim=1, image_size=CUTOUT)
    return api.Model(Denoiser(cfg), cfg, dict(FLUX_META), "fake-flux", Path("fake-flux"))


def geometry(size=(200, 240)):
    return MapGeometry.centred(size, 1.8, 150.0, 30.0, BEAM, 1.4e9)


def test_wcs_round_trip_puts_a_source_at_its_pixel(tmp_path, fake_sampler, flux_model):
    g = geometry()
    x, y = np.array([60.3, 170.7]), np.array([50.6, 140.2])
    ra, dec = g.pixel_to_world(x, y)
    sources = SourceList.of(ra, dec, [0.02, 0.05], pa=[0.0, 0.0])
    result = api.make_map(tmp_path / "m.fits", flux_model, sources=sources, size=g.shape,
                          centre=(150.0, 30.0), rms=0.0, progress=False)
    with fits.open(result.map_path) as hdul:
        data, header = hdul[0].data.astype(np.float64), hdul[0].header
    wcs = WCS(header)                                 # read back from the file
    assert header["BUNIT"] == "JY/BEAM" and header["CTYPE1"] == "RA---SIN"
    assert header["BMAJ"] == pytest.approx(5 / 3600) and header["RESTFRQ"] == 1.4e9
    assert header["SEED"] == 0 and header["RGMODEL"] == "fake-flux"
    px, py = wcs.world_to_pixel_values(ra, dec)
    np.testing.assert_allclose([px, py], [x, y], atol=1e-6)
    truth = Table.read(result.truth_path)
    np.testing.assert_allclose([truth["x"], truth["y"]], [x, y], atol=1e-6)
    for k in range(2):                               # the flux-weighted centre of each source
        yy, xx = np.mgrid[:data.shape[0], :data.shape[1]]
        near = (np.hypot(xx - x[k], yy - y[k]) < 12) * data
        centre = (near * xx).sum() / near.sum(), (near * yy).sum() / near.sum()
        np.testing.assert_allclose(centre, (x[k], y[k]), atol=0.05)
    np.testing.assert_allclose(truth["peak_flux"], [0.02, 0.05], rtol=0.15)
    assert fake_sampler == [[0, 1]]                 # seeds: seed + source index


def test_empty_map_has_the_requested_rms_correlated_by_the_beam(tmp_path, flux_model):
    empty = SourceList.of([], [], [])
    result = api.make_map(tmp_path / "e.fits", flux_model, sources=empty, size=(400, 400),
                          rms=1e-3, tile=128, seed=3, progress=False)
    data = fits.getdata(result.map_path).astype(np.float64)
    assert data.std() == pytest.approx(1e-3, rel=0.05)
    assert abs(data.mean()) < 2e-4
    # neighbours correlated as through a 5″ beam at 1.8″/px: exp(-1 / (4 σ²)), σ = 1.18 px
    sigma = 5 / 1.8 / np.sqrt(8 * np.log(2))
    rho = np.corrcoef(data[:, 1:].ravel(), data[:, :-1].ravel())[0, 1]
    assert rho == pytest.approx(np.exp(-1 / (4 * sigma ** 2)), abs=0.05)
    assert Table.read(result.truth_path).colnames[:3] == ["source_id", "ra", "dec"]


def test_placement_conserves_flux_when_shifted_rotated_and_clipped(tmp_path, fake_sampler,
                                                                   flux_model):
    cutout = gaussian(2.5)
    shifted = place(cutout, 50.37, 20.81, 0.0)
    assert shifted.data.sum() == pytest.approx(cutout.sum(), rel=1e-5)
    rotated = place(cutout * gaussian(6.0), 50.5, 20.5, 37.0)
    assert rotated.data.sum() == pytest.approx((cutout * gaussian(6.0)).sum(), rel=0.01)
    # a blob north of the centre turns east (-x) at PA 90
    north = place(gaussian(2.0, dy=8.0), 60.0, 60.0, 90.0)
    yy, xx = np.mgrid[:north.data.shape[0], :north.data.shape[1]]
    cx = (north.data * (xx + north.x0)).sum() / north.data.sum()
    cy = (north.data * (yy + north.y0)).sum() / north.data.sum()
    np.testing.assert_allclose([cx, cy], [52.0, 60.0], atol=0.05)
    # clipped by the map's corner: the map holds exactly what the truth says is inside
    g = geometry((120, 120))
    ra, dec = g.pixel_to_world([2.0, 60.0], [118.5, 60.0])
    result = api.make_map(tmp_path / "c.fits", flux_model, sources=SourceList.of(
        ra, dec, [0.03, 0.01], pa=[30.0, 0.0]), size=(120, 120), centre=(150.0, 30.0),
        rms=0.0, progress=False)
    data = fits.getdata(result.map_path).astype(np.float64)
    truth = Table.read(result.truth_path)
    assert truth["total_flux"].unit == u.Jy and truth["peak_flux"].unit == u.Jy / u.beam
    from scipy.stats import norm                     # seed 0's Gaussian: σ = 1.6 px
    inside = norm.cdf((2.0 + 0.5) / 1.6) * norm.cdf((119.5 - 118.5) / 1.6)
    assert truth["in_map_fraction"][0] == pytest.approx(inside, rel=0.02)
    assert truth["in_map_fraction"][1] == 1
    assert data.sum() / g.beam_area_pixels == pytest.approx(truth["total_flux"].sum(), rel=1e-5)
    # the whole placed flux of the unclipped source: its cut-out's flux in Jy
    whole = gaussian(1.6 + 0.4) / gaussian(2.0).max() * 0.01
    assert truth["total_flux"][1] == pytest.approx(whole.sum() / g.beam_area_pixels, rel=0.01)


def test_cutout_background_is_removed_and_the_peak_kept():
    from radiogen.maps.placement import to_jy_per_beam
    noisy = 0.1 + 0.8 * gaussian(3.0) + np.random.default_rng(0).normal(0, 0.01, (CUTOUT,) * 2)
    source = to_jy_per_beam(noisy, 0.25)
    assert source.max() == pytest.approx(0.25) and source.min() == 0
    yy, xx = np.mgrid[:CUTOUT, :CUTOUT]
    far = np.hypot(yy - 19.5, xx - 19.5) > 12           # 4σ from the source: sky only
    assert (source[far] > 0).mean() < 0.01               # no pedestal, no scaled-up noise


def test_tiled_map_equals_untiled(tmp_path, fake_sampler, flux_model):
    """The same seed gives the same map whatever the tile size, to float rounding (the noise's
    FFT; with a real network also the sampler's 1e-5 across batches): atol 1e-6 Jy/beam on
    sources of 10-50 mJy/beam over 1 mJy/beam noise."""
    kw = dict(n_sources=12, size=(300, 260), rms=1e-3, seed=7, counts="powerlaw", smin=0.01,
              smax=0.05, progress=False)
    whole = api.make_map(tmp_path / "whole.fits", flux_model, tile=4096, **kw)
    tiled = api.make_map(tmp_path / "tiled.fits", flux_model, tile=64, batch_size=3, **kw)
    a, b = fits.getdata(whole.map_path), fits.getdata(tiled.map_path)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert np.abs(a).max() > 0.01                    # sources are there
    ta, tb = Table.read(whole.truth_path), Table.read(tiled.truth_path)
    np.testing.assert_allclose(ta["total_flux"], tb["total_flux"], rtol=1e-6)
    assert sorted(sum(fake_sampler[:1], [])) == list(range(7, 19))    # seeds 7 + i, one batch
    assert len(fake_sampler) > 1                     # the tiled run sampled row by row
    other = api.make_map(tmp_path / "other.fits", flux_model, tile=64, **{**kw, "seed": 8})
    assert not np.allclose(fits.getdata(other.map_path), a, atol=1e-4)


def test_sources_added_to_a_real_mosaic(tmp_path, fake_sampler, flux_model):
    from radiogen.data.fits_io import sky_header
    header = sky_header((100, 120), 1.8, 150.0, 30.0)
    header.update(BUNIT="mJy/beam", BMAJ=6 / 3600, BMIN=6 / 3600, BPA=0.0)
    mosaic = np.random.default_rng(0).normal(0, 0.5, (100, 120)).astype(np.float32)
    fits.PrimaryHDU(mosaic, header).writeto(tmp_path / "mosaic.fits")
    ra, dec = geometry((100, 120)).pixel_to_world([40.0], [55.0])
    sources = SourceList.of(ra, dec, [0.02], pa=[0.0])
    on_mosaic = api.make_map(tmp_path / "on.fits", flux_model, sources=sources,
                             background=tmp_path / "mosaic.fits", progress=False)
    alone = api.make_map(tmp_path / "alone.fits", flux_model, sources=sources, size=(100, 120),
                         centre=(150.0, 30.0), rms=0.0, beam=(6.0, 6.0, 0.0), progress=False)
    with fits.open(on_mosaic.map_path) as hdul:
        data, h = hdul[0].data.astype(np.float64), hdul[0].header
    assert h["NOISERMS"] == -1 and h["BMAJ"] == pytest.approx(6 / 3600)
    np.testing.assert_allclose(data, mosaic * 1e-3 + fits.getdata(alone.map_path), atol=1e-7)


def test_catalogues_in_fits_with_units_and_in_csv(tmp_path):
    lotss = Table({"Source_Name": ["a", "b"], "RA": [150.0, 150.01] * u.deg,
                   "DEC": [30.0, 30.02] * u.deg, "Peak_flux": [2.5, 40.0] * u.mJy / u.beam,
                   "DC_PA": [10.0, 20.0] * u.deg})
    lotss.write(tmp_path / "lotss.fits")
    got = read_catalog(tmp_path / "lotss.fits")
    np.testing.assert_allclose(got.peak_flux, [2.5e-3, 0.04])
    np.testing.assert_allclose(got.pa, [10.0, 20.0])
    assert list(got.label) == ["", ""]
    (tmp_path / "s.csv").write_text("ra,Dec,PEAK,Class\n150.0,30.0,0.01,FRII\n149.9,29.9,0.2,\n")
    got = read_catalog(tmp_path / "s.csv")
    np.testing.assert_allclose(got.peak_flux, [0.01, 0.2])       # Jy/beam without units
    assert list(got.label) == ["FRII", ""] and np.isnan(got.pa).all()
    (tmp_path / "arcmin.fits").unlink(missing_ok=True)
    Table({"ra": [1.0] * u.arcmin, "dec": [60.0] * u.arcmin, "peak_flux": [3.0] * u.mJy}).write(
        tmp_path / "arcmin.fits")
    got = read_catalog(tmp_path / "arcmin.fits")
    np.testing.assert_allclose([got.ra[0], got.dec[0], got.peak_flux[0]], [1 / 60, 1.0, 3e-3])
    (tmp_path / "bad.csv").write_text("ra,dec,flux\n1,2,3\n")
    with pytest.raises(CatalogError, match=r"bad\.csv: no column for peak_flux"):
        read_catalog(tmp_path / "bad.csv")
    Table({"ra": [1.0], "dec": [2.0], "peak_flux": [3.0] * u.deg}).write(tmp_path / "deg.fits")
    with pytest.raises(CatalogError, match=r"deg\.fits: column 'peak_flux' has unit deg"):
        read_catalog(tmp_path / "deg.fits")


def test_noise_tiles_agree_with_one_large_tile():
    noise = CorrelatedNoise(1.0, BEAM, 1.8, seed=5)
    whole = noise.tile(-10, 300, 20, 330)
    part = noise.tile(100, 140, 250, 300)
    np.testing.assert_allclose(part, whole[110:150, 230:280], atol=1e-9)


@pytest.fixture
def tiny_flux_model(tmp_path):
    """A random flux-conditioned denoiser of 32 pixels, as a model file."""
    from helpers import perturb, tiny_model_config
    from radiogen.models import Denoiser
    from radiogen.training.checkpoint import save_model_file
    cfg = tiny_model_config(context_dim=1, image_size=32, channel_mult=(1, 2),
                            attention=(False, False), num_res_blocks=1)
    return save_model_file(tmp_path / "tiny.safetensors", perturb(Denoiser(cfg)).state_dict(),
                           cfg, FLUX_META)


def test_map_command_end_to_end(tiny_flux_model, tmp_path, capsys):
    out = tmp_path / "maps" / "sky.fits"
    assert main(["map", "--checkpoint", str(tiny_flux_model), "--n-sources", "3", "--size",
                 "96", "80", "--steps", "2", "--out", str(out), "--seed", "4", "--tile", "64",
                 "--no-progress"]) == 0
    assert "3 sources" in capsys.readouterr().out
    with fits.open(out) as hdul:
        assert hdul[0].data.shape == (80, 96) and hdul[0].header["SEED"] == 4
        assert hdul[0].header["NOISERMS"] == pytest.approx(1.5e-4)
        # a flux model's default sampler, recorded as radiogen sample records it
        assert hdul[0].header["SAMPLER"] == api.DEFAULT_SAMPLER["flux"]
        assert hdul[0].header["SCHURN"] == api.DEFAULT_CHURN["flux"]
        assert hdul[0].header["STEPS"] == 2
    truth = Table.read(tmp_path / "maps" / "sky.truth.fits")
    assert list(truth["seed"]) == [4, 5, 6] and (truth["peak_flux_requested"] > 0).all()
    # the random network's images are noise, which the background floor of to_jy_per_beam may
    # remove whole: measured peaks are ≥ 0 here (placed sources' peaks: the fake_sampler tests)
    assert np.isfinite(truth["peak_flux"]).all() and (truth["peak_flux"] >= 0).all()
    assert (tmp_path / "maps" / "sky.png").stat().st_size > 0
    with pytest.raises(SystemExit) as refused:
        main(["map", "--n-sources", "3", "--rms", "-1", "--out", str(out)])
    assert refused.value.code == 2 and "--rms: -1 is out of range" in capsys.readouterr().err
    assert main(["map", "--checkpoint", str(tiny_flux_model), "--n-sources", "2", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "must end in .fits" in capsys.readouterr().err


def test_map_autoguides_as_the_model_file_records(tiny_flux_model, tmp_path):
    """A model file that records a guide (`radiogen models export --guide-model`) is autoguided
    in maps too, and the map header says so as `radiogen sample`'s does."""
    guide = api.export_model(tiny_flux_model, tmp_path / "guides" / "early.safetensors")
    guided = api.export_model(tiny_flux_model, tmp_path / "guided.safetensors",
                              sampling={"guide_model": guide, "autoguidance": 0.5})
    out = tmp_path / "sky.fits"
    assert main(["map", "--checkpoint", str(guided), "--n-sources", "2", "--size", "64", "64",
                 "--steps", "2", "--out", str(out), "--no-progress"]) == 0
    header = fits.getheader(out)
    assert header["AGMODEL"] == "early.safetensors" and header["OMEGAAG"] == 0.5


def test_sample_with_per_image_seeds_matches_consecutive_seeds(tiny_flux_model):
    """Maps draw source i from seed + i in any batch: api.sample(seeds=...) gives the images
    that seed + k gives, to the promised 1e-5 across batch sizes."""
    from helpers import assert_batch_independent
    model = api.load_model(str(tiny_flux_model))
    # DPM-Solver++: the random network's images are noise, which the stochastic default
    # (heun-sde, its batch independence tested in test_cli_engine) amplifies past 1e-5
    kw = dict(scaled_flux=np.array([0.1, -0.5, 0.3], np.float32), steps=2, progress=False,
              sampler="dpmpp-2m")
    consecutive = api.sample(model, 3, seed=4, batch_size=3, **kw)
    given = api.sample(model, 3, seeds=[4, 5, 6], batch_size=2, **kw)
    assert_batch_independent(consecutive, given)
    shuffled = api.sample(model, 3, seeds=[6, 5, 4], batch_size=3, **kw)
    assert not np.allclose(shuffled[0], consecutive[0], atol=1e-3)


def test_help_defaults_agree_with_the_api():
    from radiogen.cli import map as cli_map
    from radiogen.maps import survey
    assert cli_map.DEFAULT_MAP_MODEL == survey.DEFAULT_MAP_MODEL
    assert (cli_map.DEFAULT_RMS, cli_map.DEFAULT_TILE) == (survey.DEFAULT_RMS,
                                                           survey.DEFAULT_TILE)
    assert cli_map.POWERLAW_DEFAULTS == survey.POWERLAW_DEFAULTS


@pytest.mark.skipif(not bdsf_available(), reason="PyBDSF not installed")
def test_check_recovers_bright_sources(tmp_path, fake_sampler, flux_model, capsys):
    """PyBDSF on a 256² map with 6 bright, separated Gaussians (20-60σ) over 1 mJy/beam."""
    g = geometry((256, 256))
    x, y = np.array([50, 128, 200, 60, 140, 210.0]), np.array([60, 50, 70, 190, 200, 180.0])
    ra, dec = g.pixel_to_world(x, y)
    sources = SourceList.of(ra, dec, np.linspace(0.02, 0.06, 6), pa=np.zeros(6))
    result = api.make_map(tmp_path / "b.fits", flux_model, sources=sources, size=(256, 256),
                          centre=(150.0, 30.0), rms=1e-3, progress=False)
    assert main(["map", "--check", str(result.map_path)]) == 0
    stats = json.loads((tmp_path / "b.check.json").read_text())
    assert stats["n_injected"] == 6 and stats["completeness"] == 1.0
    assert stats["false_detection_rate"] <= 1 / 7
    assert stats["offset_median_arcsec"] < 1.0
    assert 0.8 < stats["flux_ratio_median"] < 1.2
    assert (tmp_path / "b.check.png").stat().st_size > 0
    assert "completeness 1.000 (6/6)" in capsys.readouterr().out


def test_recovery_judges_detections_by_island():
    """A double source that PyBDSF splits into two sources of one island is one recovered
    source, no false detection, with the island's flux; a lone island far away is false."""
    from radiogen.evaluation.map_recovery import recovery_statistics
    truth = Table({"ra": [150.0, 150.1], "dec": [30.0, 30.0], "peak_flux": [0.01, 0.02],
                   "total_flux": [0.05, 0.02]})
    arcsec = 1 / 3600
    detected = {"RA": np.array([150.0, 150.0, 150.1, 150.3]),
                "DEC": np.array([30.0 + 4 * arcsec, 30.0 - 25 * arcsec, 30.0, 30.0]),
                "Total_flux": np.array([0.02, 0.025, 0.021, 0.005]),
                "Peak_flux": np.array([0.01, 0.01, 0.02, 0.004]),
                "Isl_id": np.array([0, 0, 1, 2])}
    stats = recovery_statistics(truth, detected, radius_arcsec=10.0, n_bins=2)
    assert stats["completeness"] == 1.0 and stats["n_islands"] == 3
    assert stats["n_false"] == 1 and stats["false_detection_rate"] == pytest.approx(1 / 3)
    ratios = np.array(stats["_points"]["flux_ratio"])
    np.testing.assert_allclose(ratios, [0.045 / 0.05, 0.021 / 0.02])
    # the same list without island ids: the far lobe counts as a false detection of its own
    del detected["Isl_id"]
    stats = recovery_statistics(truth, detected, radius_arcsec=10.0, n_bins=2)
    assert stats["n_false"] == 2 and stats["n_islands"] == 4


def test_catalogue_sizes_condition_a_model_that_takes_them(tmp_path, monkeypatch):
    """A catalogue's major axes reach a model conditioned on them (NaN: left free), and the
    truth catalogue records them; a peak-flux-only model gets none."""
    Table({"ra": [150.0, 150.005], "dec": [30.0, 30.003], "peak_flux": [0.02, 0.05] * u.Jy,
           "Maj": [0.5, np.nan] * u.arcmin}).write(tmp_path / "sized.fits")
    sources = read_catalog(tmp_path / "sized.fits")
    np.testing.assert_allclose(sources.major_axis, [30.0, np.nan])
    seen = []

    def sample(model, n, seeds=None, **kw):
        seen.append(kw)
        return np.stack([gaussian(2.0) for _ in seeds])
    monkeypatch.setattr(api, "sample", sample)
    from helpers import tiny_model_config
    from radiogen.models import Denoiser
    cfg = tiny_model_config(context_dim=2, column_mask=True, image_size=CUTOUT)
    conditions = [{"name": "peak_flux", "unit": "Jy/beam", "transform": "boxcox", "mean": -12.3,
                   "std": 4.78, "lam": -0.48, "lo": 0.005, "hi": 0.98},
                  {"name": "major_axis", "unit": "arcsec", "transform": "log", "mean": 3.38,
                   "std": 0.57, "lam": 0.0, "lo": 4.5, "hi": 150.0}]
    model = api.Model(Denoiser(cfg), cfg, {**FLUX_META, "conditions": conditions}, "fake-sized",
                      Path("fake-sized"))
    result = api.make_map(tmp_path / "sized-map.fits", model, sources=sources, size=(120, 120),
                          centre=(150.0, 30.0), progress=False)
    given = seen[0]["conditions"]
    np.testing.assert_allclose(given["major_axis"], [30.0, np.nan])
    np.testing.assert_allclose(given["peak_flux"], [0.02, 0.05])
    truth = Table.read(result.truth_path)
    np.testing.assert_allclose(truth["conditioned_major_axis"], [30.0, np.nan])
    seen.clear()
    flux_cfg = tiny_model_config(context_dim=1, image_size=CUTOUT)
    flux = api.Model(Denoiser(flux_cfg), flux_cfg, dict(FLUX_META), "fake-flux", Path("f"))
    api.make_map(tmp_path / "flux-map.fits", flux, sources=sources, size=(120, 120),
                 centre=(150.0, 30.0), progress=False)
    assert "conditions" not in seen[0] and "scaled_flux" in seen[0]

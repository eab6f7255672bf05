"""PyBDSF source models, A50% and Δ+ (Sections 5.1–5.2, Eq. 26)."""

import math
import os

import numpy as np
import pytest

from radiogen.evaluation.inputs import load_image_set
from radiogen.evaluation.sources import (PyBDSFSettings, a50_area, bdsf_available,
                                         beam_area_pixels, model_flux, positive_residual,
                                         run_pybdsf)

N = 80
ROWS, COLS = np.mgrid[:N, :N].astype(np.float64)


def gaussian(sigma, peak=1.0, centre=(39.5, 39.5)):
    return peak * np.exp(-((ROWS - centre[0]) ** 2 + (COLS - centre[1]) ** 2) / (2 * sigma ** 2))


@pytest.mark.parametrize("sigma", [3.0, 5.0, 8.0])
def test_a50_of_a_gaussian_matches_the_analytic_area(sigma):
    # a circular Gaussian holds half its flux within r² = 2σ² ln 2: area 2π ln2 σ²
    assert a50_area(gaussian(sigma)) == pytest.approx(2 * math.pi * math.log(2) * sigma ** 2,
                                                      rel=0.03)


def test_a50_counts_the_brightest_pixels():
    model = np.zeros((4, 4))
    model[0, :3] = [5.0, 3.0, 2.0]   # total 10: 5 alone is half
    assert a50_area(model) == 1
    model[0, 0] = 4.9                # 4.9 < 4.95: the next brightest pixel is needed too
    assert a50_area(model) == 2
    with pytest.raises(ValueError, match="no positive flux"):
        a50_area(np.zeros((4, 4)))


def test_positive_residual_matches_hand_computation():
    x = np.array([[0.5, 0.2], [0.9, 0.0]])
    x_tilde = np.array([[0.3, 0.4], [0.5, 0.1]])
    # residuals 0.2, −0.2, 0.4, −0.1: only the positive ones count
    assert positive_residual(x, x_tilde) == pytest.approx(0.6)
    batch = positive_residual(np.stack([x, x_tilde]), np.stack([x_tilde, x]))
    assert batch == pytest.approx([0.6, 0.3])


def test_model_flux_of_a_beam_shaped_source_is_its_peak():
    settings = PyBDSFSettings(pixel_scale_arcsec=1.8, beam_arcsec=(5.0, 5.0, 0.0))
    sigma = 5.0 / 1.8 / (2 * math.sqrt(2 * math.log(2)))
    assert beam_area_pixels(settings) == pytest.approx(2 * math.pi * sigma ** 2)
    assert model_flux(gaussian(sigma, peak=0.7), beam_area_pixels(settings)) == pytest.approx(0.7)


def test_settings_take_the_beam_of_the_image_set():
    settings = PyBDSFSettings.for_images({"pixel_scale_arcsec": 1.8, "beam_bmaj_arcsec": 5.0},
                                         thresh_isl=4.0)
    assert settings.beam_arcsec == (5.0, 5.0, 0.0)
    assert settings.pixel_scale_arcsec == 1.8 and settings.thresh_isl == 4.0
    assert settings.bdsf_options()["beam"][0] == pytest.approx(5.0 / 3600)
    assert settings.frequency_hz == PyBDSFSettings().frequency_hz       # none given: the default
    first = PyBDSFSettings.for_images(load_image_set("first:test").attrs)
    assert first.bdsf_options()["frequency"] == 1.4e9 and first.beam_arcsec == (5.0, 5.0, 0.0)


@pytest.mark.skipif(not bdsf_available(), reason="PyBDSF (pip install bdsf) is not installed")
def test_pybdsf_recovers_a_point_source_and_reports_failures(tmp_path, monkeypatch):
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    monkeypatch.chdir(work)                # PyBDSF must not leave files in the working folder
    # no time limit: a loaded CI machine must not turn a slow fit into a failure
    settings = PyBDSFSettings(pixel_scale_arcsec=1.8, beam_arcsec=(5.0, 5.0, 0.0), timeout_s=0)
    sigma = 5.0 / 1.8 / (2 * math.sqrt(2 * math.log(2)))   # unresolved: the beam itself
    rng = np.random.default_rng(0)
    point = gaussian(sigma, peak=0.8, centre=(40.3, 38.6)) + rng.normal(0, 0.005, (N, N))
    point = point - point.min()
    blank = np.zeros((N, N))
    result = run_pybdsf(np.stack([point, blank]), settings, workers=1, progress=False,
                        cache_dir=cache)
    # the noise pedestal shifts the min-max image by point.min(); PyBDSF subtracts the mean
    assert result.fitted.tolist() == [True, False]
    assert result.model_flux[0] == pytest.approx(0.8, rel=0.03)
    assert np.isnan(result.model_flux[1]) and np.isnan(result.a50[1])
    assert result.a50[0] == pytest.approx(2 * math.pi * math.log(2) * sigma ** 2, rel=0.25)
    summary = result.summary()
    assert summary["n_fitted"] + summary["n_no_source"] + summary["n_failed"] == 2
    assert summary["n_failed"] == sum(summary["failure_reasons"].values())
    assert os.listdir(work) == []
    # a rerun fits nothing again: every image comes from the cache, in any order and company
    import radiogen.evaluation.sources as sources

    class NoPool:
        def __init__(self, *args, **kwargs):
            raise AssertionError("PyBDSF ran again")
    monkeypatch.setattr(sources, "ProcessPoolExecutor", NoPool)
    again = run_pybdsf(np.stack([blank, point, point]), settings, progress=False, cache_dir=cache)
    assert again.fitted.tolist() == [False, True, True]
    assert np.array_equal(again.model_images[1], result.model_images[0])
    assert again.n_gaussians[2] == result.n_gaussians[0]


def test_select_keeps_failures_with_their_images():
    from radiogen.evaluation.sources import SourceModels

    models = SourceModels(np.zeros((4, 2, 2), np.float32), np.array([1, 0, 0, 2]),
                          {1: "RuntimeError: unphysical rms"})
    part = models.select(slice(1, 4))
    assert part.failures == {0: "RuntimeError: unphysical rms"}
    assert part.fitted.tolist() == [False, False, True]
    assert part.summary()["n_no_source"] == 1 and part.summary()["n_failed"] == 1


def test_time_limit_stops_a_slow_fit():
    import time

    from radiogen.evaluation.sources import _time_limit

    with pytest.raises(TimeoutError, match="longer than 0.05 s"):
        with _time_limit(0.05):
            time.sleep(2)
    with _time_limit(0):                     # no limit
        time.sleep(0.01)

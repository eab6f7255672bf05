"""Peak-flux conditioning: Box-Cox (Eq. 12) fit, round trip and inverse, and the histogram draw
of conditioning values (Section 6.1)."""

import numpy as np
import pytest
from scipy import stats

from radiogen.data.flux import (BoxCox, boxcox_forward, boxcox_inverse, draw_from_histogram,
                                draw_scaled_flux, fit_boxcox)


@pytest.fixture
def peaks():
    # log-normal peak fluxes from 0.3 mJy/beam to a few Jy/beam, like a survey's
    return np.exp(np.random.default_rng(1).normal(np.log(3e-3), 1.5, size=2000))


def test_fit_is_maximum_likelihood_and_standardises(peaks):
    params = fit_boxcox(peaks)
    _, lam_scipy = stats.boxcox(peaks)            # scipy's own MLE
    assert params.lam == pytest.approx(lam_scipy, abs=1e-4)
    # the log-likelihood is maximal at λ: both neighbours are worse
    llf = [stats.boxcox_llf(params.lam + d, peaks) for d in (-0.05, 0.0, 0.05)]
    assert llf[1] > llf[0] and llf[1] > llf[2]
    z = boxcox_forward(peaks, params)
    assert z.mean() == pytest.approx(0.0, abs=1e-9)
    assert z.std() == pytest.approx(1.0, rel=1e-9)


def test_eq_12_by_hand():
    params = BoxCox(lam=-0.23, mean=0.0, std=1.0)
    f = 0.01
    assert boxcox_forward(f, params) == pytest.approx((f ** -0.23 - 1) / -0.23, rel=1e-12)
    log_params = BoxCox(lam=0.0, mean=1.0, std=2.0)
    assert boxcox_forward(f, log_params) == pytest.approx((np.log(f) - 1.0) / 2.0, rel=1e-12)


def test_round_trip_recovers_peak_fluxes(peaks):
    params = fit_boxcox(peaks)
    back = boxcox_inverse(boxcox_forward(peaks, params), params)
    np.testing.assert_allclose(back, peaks, rtol=1e-6)
    # the float32 context the store holds still gives the flux to 1e-6 for typical values
    z32 = boxcox_forward(peaks, params).astype(np.float32)
    typical = np.abs(z32) < 2
    np.testing.assert_allclose(boxcox_inverse(z32[typical], params), peaks[typical], rtol=1e-5)


def test_attrs_round_trip_and_missing_attrs():
    params = BoxCox(-0.23, -10.0, 1.5)
    assert BoxCox.from_attrs(params.to_attrs()) == params
    with pytest.raises(ValueError, match="boxcox_lambda"):
        BoxCox.from_attrs({"kind": "class"})


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="positive"):
        fit_boxcox(np.array([0.1, 0.0, 0.3]))
    with pytest.raises(ValueError, match="two distinct"):
        fit_boxcox(np.array([0.1, 0.1]))
    params = BoxCox(-0.5, 0.0, 1.0)       # f̂_scaled must stay below −1/λ = 2
    with pytest.raises(ValueError, match="z must be <"):
        boxcox_inverse(3.0, params)


def test_draw_follows_the_histogram():
    rng = np.random.default_rng(0)
    # two clumps with an empty gap between them, three times as many in the upper one
    scaled = np.concatenate([rng.uniform(-2, -1, 1000), rng.uniform(1, 2, 3000)])
    draws = draw_scaled_flux(scaled, 20000, np.random.default_rng(5))
    assert draws.min() >= scaled.min() and draws.max() <= scaled.max()
    counts, edges = np.histogram(scaled, bins=100)
    empty = counts[np.clip(np.searchsorted(edges, draws, side="right") - 1, 0, 99)] == 0
    assert not empty.any()                  # nothing drawn from an empty bin
    assert np.mean(draws > 0) == pytest.approx(0.75, abs=0.02)
    again = draw_scaled_flux(scaled, 20000, np.random.default_rng(5))
    np.testing.assert_array_equal(draws, again)          # seeded: reproducible
    assert len(np.unique(draws)) == len(draws)           # uniform within bins, not bin centres


def test_draw_from_a_stored_histogram():
    # what a model card keeps: 100 counts over [min, max] of the training scaled flux
    scaled = np.random.default_rng(2).normal(size=5000)
    counts, edges = np.histogram(scaled, bins=100)
    from_card = draw_from_histogram(counts, np.linspace(scaled.min(), scaled.max(), 101), 1000,
                                    np.random.default_rng(7))
    np.testing.assert_allclose(from_card, draw_scaled_flux(scaled, 1000, np.random.default_rng(7)),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="edges"):
        draw_from_histogram(counts, edges[:-1], 10, np.random.default_rng(0))

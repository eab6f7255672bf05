"""Selection cuts of Section 3.1: S/N_σ (Eq. 9–10) on hand-computed images, bright edges, the
order of the cuts and the Table-1 report."""

import numpy as np
import pytest

from radiogen.data.selection import (CUTS, Judgement, SelectionReport, SelectionSettings,
                                     bright_edges, first_failed_cut, judge, snr_sigma)


def _image(values):
    """A 10×10 image holding ``values`` (100 of them) in a fixed shuffled order."""
    values = np.asarray(values, dtype=np.float64)
    return np.random.default_rng(0).permutation(values).reshape(10, 10)


def test_snr_sigma_at_tau_5():
    # 49 ones, 49 threes, two source pixels of 100. Sigma clipping drops the 100s, leaving
    # x̃ = 2 and σ = 1 (half the pixels at 2 − 1, half at 2 + 1). τ = 5: x > 7 is the two 100s.
    # S/N_σ = 100 / mean(49·1 + 49·3)/98 = 100 / 2 = 50.
    x = _image([1.0] * 49 + [3.0] * 49 + [100.0] * 2)
    snr, tau = snr_sigma(x)
    assert tau == 5.0
    assert snr == pytest.approx(50.0, rel=1e-12)


def test_snr_sigma_lowers_tau_until_a_source_region_exists():
    # 48 ones, 48 threes, two pixels of 5.5 and two of −1.5: median 2, mean 2,
    # σ = sqrt((96·1 + 4·3.5²)/100) = sqrt(1.45); nothing is clipped (2 ± 3σ = [−1.61, 5.61]).
    # x > 2 + τσ first holds for 5.5 at τ = 2.5 (τ = 3 gives 5.61): the source is the two 5.5s,
    # the background the rest: (48 + 144 − 3)/98 = 189/98. S/N_σ = 5.5·98/189 = 539/189.
    x = _image([1.0] * 48 + [3.0] * 48 + [5.5] * 2 + [-1.5] * 2)
    snr, tau = snr_sigma(x)
    assert tau == 2.5
    assert snr == pytest.approx(539 / 189, rel=1e-12)
    # the τ-lowering follows the step: with steps of 1.0 from 5, τ = 2 is the first that works
    assert snr_sigma(x, tau_step=1.0)[1] == 2.0


def test_snr_sigma_degenerate_images_give_nan():
    assert np.isnan(snr_sigma(np.full((8, 8), 3.0))[0])           # σ = 0
    assert np.isnan(snr_sigma(np.full((8, 8), np.nan))[0])        # nothing to measure
    x = _image([1.0] * 49 + [3.0] * 49 + [100.0] * 2)
    x[0, :] = np.nan                                               # NaN pixels are ignored
    assert np.isfinite(snr_sigma(x)[0])


def test_snr_on_choices_give_the_hand_computed_ratios():
    x = _image([1.0] * 49 + [3.0] * 49 + [100.0] * 2)
    # min-max scaled (Eq. 11): (100 − 1)/(2 − 1) = 99; negatives clipped: unchanged = 50
    assert judge(x, None, SelectionSettings(snr_on="minmax")).snr_sigma == pytest.approx(99.0)
    assert judge(x, None, SelectionSettings(snr_on="clipped")).snr_sigma == pytest.approx(50.0)
    # zero-mean background: raw S/N_σ is negative, min-max positive
    shifted = x - 2.5
    assert judge(shifted, None, SelectionSettings(snr_on="raw")).snr_sigma < 0
    assert judge(shifted, None, SelectionSettings(snr_on="minmax")).snr_sigma == pytest.approx(99.0)


def test_bright_edges():
    x = np.zeros((10, 10))
    x[5, 5] = 1.0
    assert not bright_edges(x)
    x[0, 3] = 0.81                    # a border pixel above 0.8 × max
    assert bright_edges(x)
    x[0, 3] = 0.79
    assert not bright_edges(x)
    x[1, 5] = 0.9                     # second ring: only a 2-pixel border sees it
    assert not bright_edges(x, width=1)
    assert bright_edges(x, width=2)
    assert bright_edges(x, fraction=0.7)  # 0.79 > 0.7


def _checkerboard_with_source(n=20):
    """1 and 3 alternating, with a two-pixel source of 100 at the centre."""
    x = np.where(np.indices((n, n)).sum(axis=0) % 2, 3.0, 1.0)
    x[n // 2, n // 2 - 1: n // 2 + 1] = 100.0
    return x


def test_judge_flags_each_cut():
    settings = SelectionSettings()
    clean = judge(_checkerboard_with_source(), None, settings)
    assert not (clean.broken or clean.snr or clean.edge or clean.incomplete)
    holed = _checkerboard_with_source()
    holed[7, 7] = np.nan
    assert judge(holed, None, settings).broken
    partial = _checkerboard_with_source()
    partial[:, :3] = np.nan                      # beyond the mosaic: incomplete, not broken
    inside = np.isfinite(partial)
    j = judge(partial, inside, settings)
    assert j.incomplete and not j.broken and not j.snr
    edged = _checkerboard_with_source()
    edged[0, 4] = 90.0                           # a border pixel at 0.9 × max
    assert judge(edged, None, settings).edge
    assert judge(_checkerboard_with_source(), None, SelectionSettings(snr_threshold=1000)).snr


def test_first_failed_cut_follows_the_order():
    j = Judgement(broken=False, snr=True, edge=True, incomplete=True, snr_sigma=1.0)
    assert first_failed_cut(j, CUTS) == 1
    assert first_failed_cut(j, ("incomplete", "edge", "snr", "broken")) == 0
    ok = Judgement(False, False, False, False, 9.0)
    assert first_failed_cut(ok, CUTS) == len(CUTS)
    with pytest.raises(ValueError, match="cut order"):
        SelectionSettings(order=("broken", "snr", "edge"))


def test_report_rows_are_table_1():
    codes = [0, 1, 1, 1, 2, 3, 4, 4, 4, 4]      # broken 1, snr 3, edge 1, incomplete 1, kept 4
    report = SelectionReport.from_codes(codes, {"broken": 1, "snr": 5, "edge": 2, "incomplete": 3},
                                        CUTS, [("bad.fits", "not FITS")], ["a note"])
    assert report.rows() == [("Cut-outs", 0, 10), ("Broken", 1, 9), ("S/N_σ", 3, 6),
                             ("Edge pixels", 1, 5), ("Incomplete", 1, 4), ("Total", 6, 4)]
    assert report.n_selected == 4
    text = report.format()
    assert "bad.fits: not FITS" in text and "S/N_σ" in text
    again = SelectionReport.from_dict(report.to_dict())
    assert again.rows() == report.rows() and again.skipped_files == [["bad.fits", "not FITS"]]

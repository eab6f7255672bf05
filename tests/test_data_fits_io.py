"""Tolerant FITS reading (real MiraBest originals with tabs, cubes, units, blanks, bad files) and
physical-unit FITS writing for flux-conditioned samples."""

import gc
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from radiogen.data.fits_io import (Beam, FitsReadError, header_beam, read_fits_image,
                                   write_physical_fits)

DATA = Path(__file__).parent / "data"
RAW = DATA / "mirabest-raw" / "100_010.451-009.284_0.0529_0080.60.fits"


def _sky_header(nx=20, ny=20):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [150.0, 30.0]
    w.wcs.crpix = [nx / 2, ny / 2]
    w.wcs.cdelt = [-1.5 / 3600, 1.5 / 3600]
    return w.to_header()


def test_raw_skyview_header_needs_repair():
    with fits.open(RAW) as hdul:
        with pytest.warns(VerifyWarning):          # astropy alone: tabs are illegal
            WCS(hdul[0].header)


def test_raw_skyview_file_is_read_with_repairs_recorded():
    image = read_fits_image(RAW)                   # no warning escapes (warnings are errors)
    assert any("tabs" in fix for fix in image.fixes)
    assert "\t" not in image.header.tostring()
    assert image.data.shape == (300, 300)
    assert image.flux_scale == 1.0                 # BUNIT = 'JY/BEAM'
    assert image.pixel_scale_arcsec == pytest.approx(1.8)
    ra, dec = image.wcs.pixel_to_world_values(149.5, 149.5)
    assert (ra, dec) == pytest.approx((10.4509, -9.28422), abs=1e-4)   # the file name's position
    raw = fits.getdata(RAW)                        # pixels read independently
    assert np.nanmax(image.data) == np.nanmax(raw) == pytest.approx(0.03456, rel=1e-4)


def test_non_fits_and_table_files_are_named(tmp_path):
    text = tmp_path / "notes.fits"
    text.write_text("this is not FITS\n" * 10)
    with pytest.raises(FitsReadError, match="notes.fits: not a readable FITS file"):
        read_fits_image(text)
    with pytest.raises(FitsReadError, match="no such file"):
        read_fits_image(tmp_path / "missing.fits")
    with pytest.raises(FitsReadError, match="no data in the primary HDU and no image extension"):
        read_fits_image(DATA / "lotss-dr1" / "catalog_shimwell_reduced.srl.fits")


def test_missing_celestial_wcs_and_wrong_unit(tmp_path):
    plain = tmp_path / "plain.fits"
    fits.PrimaryHDU(np.zeros((10, 10), np.float32)).writeto(plain)
    with pytest.raises(FitsReadError, match="plain.fits: no celestial WCS"):
        read_fits_image(plain)
    kelvin = tmp_path / "kelvin.fits"
    header = _sky_header()
    header["BUNIT"] = "K"
    fits.PrimaryHDU(np.zeros((20, 20), np.float32), header).writeto(kelvin)
    with pytest.raises(FitsReadError, match="BUNIT 'K'"):
        read_fits_image(kelvin)


def test_mjy_unit_blank_integers_and_cube(tmp_path):
    header = _sky_header()
    header["BUNIT"] = "mJy/beam"
    data = np.arange(400, dtype=np.float32).reshape(20, 20)
    fits.PrimaryHDU(data, header).writeto(tmp_path / "mjy.fits")
    assert read_fits_image(tmp_path / "mjy.fits").flux_scale == 1e-3

    header = _sky_header()
    header["BLANK"] = -32768
    ints = np.arange(400, dtype=np.int16).reshape(20, 20)
    ints[3, 4] = -32768
    fits.PrimaryHDU(ints, header).writeto(tmp_path / "ints.fits")
    image = read_fits_image(tmp_path / "ints.fits")
    assert np.isnan(image.data[3, 4]) and np.isfinite(image.data).sum() == 399
    assert image.data.dtype.kind == "f" and image.data[0, 5] == 5.0

    w = WCS(naxis=4)                               # RA, Dec, FREQ, STOKES like radio images
    w.wcs.ctype = ["RA---SIN", "DEC--SIN", "FREQ", "STOKES"]
    w.wcs.crval = [150.0, 30.0, 1.44e8, 1.0]
    w.wcs.crpix = [10, 10, 1, 1]
    w.wcs.cdelt = [-1.5 / 3600, 1.5 / 3600, 1e6, 1]
    fits.PrimaryHDU(data[None, None], w.to_header()).writeto(tmp_path / "cube.fits")
    cube = read_fits_image(tmp_path / "cube.fits")
    assert cube.data.shape == (20, 20) and cube.wcs.naxis == 2
    assert cube.frequency_hz == pytest.approx(1.44e8)
    fits.PrimaryHDU(np.zeros((2, 20, 20), np.float32), _sky_header()).writeto(tmp_path / "c2.fits")
    with pytest.raises(FitsReadError, match="cube"):
        read_fits_image(tmp_path / "c2.fits")


def test_beam_from_keywords_or_aips_history():
    header = fits.Header()
    assert header_beam(header) is None
    header["HISTORY"] = "AIPS   CLEAN BMAJ=  1.6667E-03 BMIN=  1.3889E-03 BPA=  12.50"
    assert header_beam(header) == Beam(pytest.approx(6.0, rel=1e-4), pytest.approx(5.0, rel=1e-4),
                                       12.5)
    header["BMAJ"], header["BMIN"], header["BPA"] = 5 / 3600, 5 / 3600, 0.0
    assert header_beam(header) == Beam(pytest.approx(5.0), pytest.approx(5.0), 0.0)


def test_memory_mapped_mosaic_reads_the_same_pixels():
    path = DATA / "lotss-dr1" / "P218+55-mosaic.fits"
    with read_fits_image(path, memmap=True) as image:
        assert image.beam == Beam(pytest.approx(6.0), pytest.approx(6.0), 90.0)
        np.testing.assert_array_equal(image.data[50:60, 70:80], fits.getdata(path)[50:60, 70:80])
    assert image.data is None                      # closed


def _blob(n=80, sigma=1.7, floor=0.05, noise=0.01, seed=0):
    y, x = np.mgrid[:n, :n]
    rng = np.random.default_rng(seed)
    img = floor + np.exp(-((x - n // 2) ** 2 + (y - n // 2) ** 2) / (2 * sigma ** 2))
    img = img + noise * rng.standard_normal(img.shape)
    return (img - img.min()) / (img.max() - img.min())


def test_physical_fits_has_requested_peak_units_beam_and_wcs(tmp_path):
    path = write_physical_fits(tmp_path / "s.fits", _blob(), 0.05, pixel_scale_arcsec=1.5,
                               beam=Beam(6.0, 6.0, 0.0), frequency_hz=1.44e8, ra_deg=210.5,
                               dec_deg=54.25, extra={"SCLFLUX": (0.3, "scaled peak flux")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.fits"]   # no temporary left
    with fits.open(path) as hdul:                  # plain astropy, warnings are errors
        header, data = hdul[0].header, hdul[0].data
        assert data.max() == pytest.approx(0.05, rel=1e-6)
        assert data.min() == pytest.approx(0.0, abs=1e-12)
        assert header["BUNIT"] == "JY/BEAM"
        assert header["BMAJ"] * 3600 == pytest.approx(6.0) and header["BPA"] == 0.0
        assert header["SCLFLUX"] == 0.3
        w = WCS(header)
    assert w.has_celestial and w.wcs.ctype[0] == "RA---SIN"
    assert proj_plane_pixel_scales(w) * 3600 == pytest.approx([1.5, 1.5])
    assert w.pixel_to_world_values(39.5, 39.5) == pytest.approx((210.5, 54.25), abs=1e-9)
    back = read_fits_image(path)                   # and our own reader, without repairs
    assert back.fixes == [] and back.frequency_hz == 1.44e8


def test_physical_fits_peak_is_exact_for_a_sample_below_one(tmp_path):
    sample = 0.1 + 0.8 * _blob()                   # a clamped sample need not reach 0 and 1
    path = write_physical_fits(tmp_path / "s.fits", sample, 0.0123, pixel_scale_arcsec=1.8,
                               beam=Beam(5.0, 5.0), frequency_hz=1.4e9)
    data = fits.getdata(path)
    assert data.max() == pytest.approx(0.0123, rel=1e-6) and data.min() == 0.0
    expected = 0.0123 * (sample - sample.min()) / (sample.max() - sample.min())   # Eq. (11)
    np.testing.assert_allclose(data, expected, rtol=1e-6, atol=1e-12)


def test_physical_fits_rejects_bad_input(tmp_path):
    kwargs = dict(pixel_scale_arcsec=1.5, beam=Beam(6, 6), frequency_hz=1.44e8)
    with pytest.raises(ValueError, match="not all equal"):
        write_physical_fits(tmp_path / "a.fits", np.full((8, 8), 0.5), 0.05, **kwargs)
    with pytest.raises(ValueError, match="peak flux"):
        write_physical_fits(tmp_path / "a.fits", _blob(), -1.0, **kwargs)
    assert not any(tmp_path.iterdir())


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # bdsf leaves a file open
def test_pybdsf_reads_physical_fits(tmp_path):
    bdsf = pytest.importorskip("bdsf", reason="PyBDSF is not installed (pip install bdsf)")
    path = write_physical_fits(tmp_path / "s.fits", _blob(), 0.05, pixel_scale_arcsec=1.5,
                               beam=Beam(6.0, 6.0, 0.0), frequency_hz=1.44e8, ra_deg=180.0,
                               dec_deg=45.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # PyBDSF's own deprecation and numpy warnings
        result = bdsf.process_image(str(path), quiet=True, rms_map=False, mean_map="const")
        gc.collect()
    assert result.frequency == pytest.approx(1.44e8)
    assert np.array(result.beam[:2]) * 3600 == pytest.approx([6.0, 6.0])
    assert result.nsrc == 1
    source = result.sources[0]
    assert source.peak_flux_max == pytest.approx(0.05, rel=0.1)
    assert source.posn_sky_centroid == pytest.approx([180.0, 45.0], abs=2 / 3600)

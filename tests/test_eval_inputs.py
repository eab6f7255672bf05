"""Image sets to evaluate: stores, FITS folders, FIRST splits, and bad input."""

import numpy as np
import pytest
from astropy.io import fits

from radiogen.data.store import write_store
from radiogen.evaluation.inputs import check_compatible, image_set, load_image_set


def _fits(path, data, **cards):
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header).writeto(path)


def test_store_with_labels_flux_and_beam(tmp_path):
    rng = np.random.default_rng(0)
    write_store(tmp_path / "s.h5", rng.uniform(size=(5, 16, 16)),
                {"labels": np.array([0, 1, 2, 3, 1]), "scaled_flux": rng.normal(size=5)},
                {"pixel_scale_arcsec": 1.5, "beam_bmaj_arcsec": 6.0})
    s = load_image_set(tmp_path / "s.h5")
    assert len(s) == 5 and s.shape == (16, 16)
    assert s.labels.tolist() == [0, 1, 2, 3, 1] and s.scaled_flux.shape == (5,)
    assert s.attrs == {"pixel_scale_arcsec": 1.5, "beam_bmaj_arcsec": 6.0}
    assert s.subset(np.array([True, False, True, False, False])).labels.tolist() == [0, 2]


def test_fits_folder_with_class_cards_cubes_and_physical_units(tmp_path):
    rng = np.random.default_rng(1)
    _fits(tmp_path / "a.fits", rng.uniform(size=(8, 8)), CLASS="FRII", SCLFLUX=0.5)
    _fits(tmp_path / "b.fits", rng.uniform(size=(2, 8, 8)), CLASS=2, SCLFLUX=-1.0)
    jy = rng.normal(0.001, 0.002, size=(8, 8))        # Jy/beam with negative pixels
    _fits(tmp_path / "c.fits", jy, CLASS="Bent", SCLFLUX=0.0, BUNIT="JY/BEAM", CDELT2=1.5 / 3600)
    (tmp_path / "notes.txt").write_text("not an image")
    s = load_image_set(tmp_path)
    assert s.labels.tolist() == [1, 2, 2, 3]
    assert s.scaled_flux.tolist() == [0.5, -1.0, -1.0, 0.0]
    assert s.names == ["a.fits", "b.fits[0]", "b.fits[1]", "c.fits"]
    scaled = np.clip(jy, 0, None)
    np.testing.assert_allclose(s.images[3], scaled / scaled.max(), rtol=1e-5, atol=1e-6)


def test_cube_labels_from_the_samplers_table(tmp_path):
    from radiogen.outputs import write_fits_cube

    images = np.random.default_rng(2).uniform(size=(3, 8, 8)).astype(np.float32)
    write_fits_cube(tmp_path / "samples.fits", images, [], labels=["Compact", "FRI", "Bent"])
    s = load_image_set(tmp_path / "samples.fits")
    assert s.labels.tolist() == [2, 0, 3]
    np.testing.assert_allclose(s.images, images)


def test_first_split():
    s = load_image_set("first:valid")
    assert s.shape == (80, 80) and s.labels is not None and s.attrs["pixel_scale_arcsec"] == 1.8


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        image_set(np.zeros((0, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        image_set(np.full((2, 8, 8), np.nan))
    with pytest.raises(ValueError, match=r"not \[0, 1\]"):
        image_set(np.full((2, 8, 8), 3.0))
    with pytest.raises(ValueError, match="class indices"):
        image_set(np.zeros((2, 8, 8)), labels=[0, 7])
    with pytest.raises(ValueError, match="different sizes"):
        check_compatible(image_set(np.zeros((1, 8, 8)), source="a"),
                         image_set(np.zeros((1, 9, 9)), source="b"))
    with pytest.raises(ValueError, match="needs class labels"):
        image_set(np.zeros((1, 8, 8))).require_labels("accuracy")
    with pytest.raises(ValueError, match="no FITS files"):
        load_image_set(tmp_path)
    _fits(tmp_path / "a.fits", np.zeros((8, 8)), CLASS="FRI")
    _fits(tmp_path / "b.fits", np.zeros((8, 8)))
    with pytest.raises(ValueError, match="1 of 2 images carry CLASS"):
        load_image_set(tmp_path)
    _fits(tmp_path / "c.fits", np.zeros((9, 9)), CLASS="FRI")
    with pytest.raises(ValueError, match="different sizes"):
        load_image_set(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_image_set(tmp_path / "missing.h5")

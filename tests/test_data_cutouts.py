"""Cut-outs from real LoTSS-DR1 mosaic sections and from synthetic mosaics with known sources."""

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from radiogen.data.cutouts import (CatalogColumns, assign_sources, cutout, cutout_from_file,
                                   list_fits_files, mosaic_ids, read_catalog, scan_mosaic)
from radiogen.data.fits_io import FitsReadError, read_fits_image
from synthetic_sky import (NOISE, Source, render, sky_position, sky_wcs, write_catalog_csv,
                           write_mosaic)

DATA = Path(__file__).parent / "data"
LOTSS = DATA / "lotss-dr1"
CATALOG = LOTSS / "catalog_shimwell_reduced.srl.fits"
SIZE = 80


@pytest.fixture(scope="module")
def lotss_cutouts():
    """Every catalog source inside the two real sections, with its cut-out and margin."""
    sources = read_catalog(CATALOG)
    table = Table.read(CATALOG)
    mosaics = [scan_mosaic(LOTSS / f"{m}-mosaic.fits") for m in ("P205+55", "P218+55")]
    index, x, y = assign_sources(sources, mosaics)
    cuts = []
    for k, mosaic in enumerate(mosaics):
        ny, nx = mosaic.shape
        with read_fits_image(mosaic.path, memmap=True) as image:
            for i in np.flatnonzero(index == k):
                margin = min(x[i], nx - 1 - x[i], y[i], ny - 1 - y[i])
                cuts.append((table[i], cutout(image, x[i], y[i], SIZE), margin))
    return sources, index, cuts


def test_lotss_sources_inside_the_sections(lotss_cutouts):
    sources, index, cuts = lotss_cutouts
    assert len(sources) == 12093
    assert np.bincount(index[index >= 0]).tolist() == [27, 7]   # P205+55, P218+55
    assert len(cuts) == 34
    assert all(c.data.shape == (SIZE, SIZE) for _, c, _ in cuts)
    assert sum(c.inside is None for _, c, _ in cuts) == 19          # complete 80×80 cut-outs


def test_lotss_incomplete_coverage_near_section_borders(lotss_cutouts):
    _, _, cuts = lotss_cutouts
    for row, cut, margin in cuts:
        complete = cut.inside is None
        assert complete == (margin >= SIZE / 2 - 1), row["Source_Name"]
        if not complete:      # NaN exactly beyond the section, data everywhere inside it
            assert np.isnan(cut.data[~cut.inside]).all()
            assert np.isfinite(cut.data[cut.inside]).all()
            assert 0 < cut.inside.sum() < SIZE * SIZE


def test_lotss_cutouts_are_centred_on_compact_sources(lotss_cutouts):
    _, _, cuts = lotss_cutouts
    compact = [(row, cut) for row, cut, _ in cuts if row["S_Code"].strip() == "S"]
    assert len(compact) >= 25
    for row, cut in compact:
        window = cut.data[36:44, 36:44]
        py, px = np.unravel_index(np.nanargmax(window), window.shape)
        assert abs(36 + py - 39.5) <= 2 and abs(36 + px - 39.5) <= 2, row["Source_Name"]
        peak = row["Peak_flux"] * 1e-3                       # catalog mJy/beam → Jy/beam
        if row["Peak_flux"] >= 5 * row["Isl_rms"]:          # well above the noise
            assert np.nanmax(window) == pytest.approx(peak, rel=0.25), row["Source_Name"]


def test_catalog_errors_name_file_and_columns(tmp_path):
    with pytest.raises(ValueError, match="no column 'RA_X'.*Source_Name"):
        read_catalog(CATALOG, CatalogColumns(ra="RA_X"))
    with pytest.raises(FileNotFoundError, match="no such catalog"):
        read_catalog(tmp_path / "none.fits")
    sexagesimal = write_catalog_csv(tmp_path / "hms.csv", [("a", "13h40m", "+54d56m")],
                                    ("Source_Name", "RA", "DEC"))
    with pytest.raises(ValueError, match="hms.csv: column 'RA' does not hold numbers"):
        read_catalog(sexagesimal)
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="junk.fits: not a readable catalog"):
        read_catalog(junk)


def test_mosaic_ids_from_names():
    assert {"P205+55"} <= mosaic_ids("x/P205+55-mosaic.fits")
    assert "P205+55" in mosaic_ids("mosaics/P205+55/mosaic-blanked.fits")


# ---- synthetic mosaics: every source where it was put ---------------------------------------

SOURCES = [Source("centre", 150, 150, 0.02), Source("left-edge", 10, 150, 0.01),
           Source("near-nan", 230, 60, 0.01), Source("faint", 200, 230, 2 * NOISE),
           Source("neighbour", 100, 100, 0.004), Source("bright", 139, 100, 0.03),
           Source("optical", 250, 200, 0.01)]
NAN_BOX = ((40, 80), (245, 262))  # rows, columns


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    wcs = sky_wcs((300, 300))
    image = render((300, 300), SOURCES, np.random.default_rng(3), nan_box=NAN_BOX)
    write_mosaic(folder / "M1-mosaic.fits", image, wcs)
    rows = []
    for s in SOURCES:
        ra, dec = sky_position(wcs, s.x, s.y)
        id_ra, id_dec = sky_position(wcs, s.x + 6, s.y) if s.name == "optical" else (None, None)
        rows.append((s.name, ra, dec, id_ra, id_dec, "M1"))
    rows.append(("outside", *sky_position(wcs, -60, 100), None, None, "M1"))
    catalog = write_catalog_csv(folder / "catalog.csv", rows,
                                ("Source_Name", "RA", "DEC", "ID_RA", "ID_DEC", "Mosaic_ID"))
    return folder, catalog


def _cut_all(folder, catalog):
    sources = read_catalog(catalog)
    mosaics = [scan_mosaic(p) for p in list_fits_files(folder)]
    index, x, y = assign_sources(sources, mosaics)
    with read_fits_image(mosaics[0].path, memmap=True) as image:
        return sources, index, {sources.names[i]: cutout(image, x[i], y[i], SIZE)
                                for i in np.flatnonzero(index == 0)}


def test_synthetic_cutouts_land_where_expected(synthetic):
    sources, index, cuts = _cut_all(*synthetic)
    assert index[list(sources.names).index("outside")] == -1
    assert set(cuts) == {s.name for s in SOURCES}
    by_name = {s.name: s for s in SOURCES}
    for name in ("centre", "neighbour", "bright"):
        cut = cuts[name]
        assert cut.inside is None
        py, px = np.unravel_index(np.nanargmax(cut.data[30:50, 30:50]), (20, 20))
        assert {30 + py, 30 + px} <= {39, 40}                # the source pixel is a central one
        assert cut.data[30 + py, 30 + px] == pytest.approx(by_name[name].peak, abs=5 * NOISE)
    edge = cuts["left-edge"]                                 # 10 px from the left border
    assert edge.inside is not None
    outside = (~edge.inside).all(axis=0).sum()             # columns beyond the mosaic: 40 − 10
    assert outside in (29, 30, 31)
    assert (~edge.inside[:, :outside]).all() and edge.inside[:, outside:].all()
    assert np.nanmax(edge.data) == pytest.approx(0.01, abs=5 * NOISE)
    holed = cuts["near-nan"]                                 # the NaN box lies in its cut-out
    assert holed.inside is None and np.isnan(holed.data).sum() == 40 * 17
    assert np.nanmax(cuts["neighbour"].data[:, 78:]) == pytest.approx(0.03, abs=5 * NOISE)


def test_optical_counterpart_centres_the_cutout(synthetic):
    sources, _, cuts = _cut_all(*synthetic)
    i = list(sources.names).index("optical")
    assert sources.optical[i] and sources.optical.sum() == 1
    cut = cuts["optical"]                                    # radio source 6 px left of centre
    py, px = np.unravel_index(np.nanargmax(cut.data), cut.data.shape)
    assert py in (39, 40) and px in (33, 34)


def test_mosaic_id_wins_over_wcs(tmp_path):
    sky = sky_wcs((300, 300))
    shifted = sky_wcs((300, 300))
    shifted.wcs.crpix = [150 - 130, 150]                     # pixel x' = x − 130
    source = Source("s", 150, 150, 0.02)
    for name, wcs in (("A", sky), ("B", shifted)):
        image = render((300, 300), [Source("s", source.x - (130 if name == "B" else 0), 150, 0.02)],
                       np.random.default_rng(0))
        write_mosaic(tmp_path / f"{name}-mosaic.fits", image, wcs)
    ra, dec = sky_position(sky, source.x, source.y)
    mosaics = [scan_mosaic(tmp_path / f"{n}-mosaic.fits") for n in ("A", "B")]
    with_id = read_catalog(write_catalog_csv(tmp_path / "id.csv", [("s", ra, dec, "B")]))
    without = read_catalog(write_catalog_csv(tmp_path / "no.csv", [("s", ra, dec)],
                                             ("Source_Name", "RA", "DEC")))
    index, x, _ = assign_sources(with_id, mosaics)
    assert index[0] == 1 and x[0] == pytest.approx(20.0)     # the named mosaic, near its edge
    index, x, _ = assign_sources(without, mosaics)
    assert index[0] == 0 and x[0] == pytest.approx(150.0)    # by WCS: the one it is deepest in


def test_fits_file_crop_is_recentred():
    path = DATA / "mirabest" / "100_010.451-009.284_0.0529_0080.60.fits"
    cut, image = cutout_from_file(path, SIZE)
    assert cut.inside is None and cut.data.shape == (SIZE, SIZE)
    np.testing.assert_array_equal(cut.data, image.data[24:104, 24:104])
    raw = DATA / "mirabest-raw" / path.name                  # the 300×300 original
    raw_cut, _ = cutout_from_file(raw, SIZE)
    np.testing.assert_array_equal(raw_cut.data, cut.data)
    with pytest.raises(FitsReadError, match="too small: 128×128 pixels, the cut-outs are 160"):
        cutout_from_file(path, 160)                          # larger than the file

"""The survey data pipeline end to end: real LoTSS-DR1 sections and MiraBest files, synthetic
mosaics with one source per selection cut, resuming, reproducibility, bad input and the CLI."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS

from radiogen.cli import main
from radiogen.data import pipeline
from radiogen.data.flux import BoxCox, boxcox_inverse
from radiogen.data.pipeline import PipelineSettings, build_cutout_store, build_lotss_store
from radiogen.data.selection import SelectionSettings
from radiogen.data.store import read_store
from test_data_cutouts import NAN_BOX, SOURCES
from synthetic_sky import render, sky_position, sky_wcs, write_catalog_csv, write_mosaic

DATA = Path(__file__).parent / "data"
LOTSS = DATA / "lotss-dr1"
CATALOG = LOTSS / "catalog_shimwell_reduced.srl.fits"
RUN = dict(workers=1, progress=False)


@pytest.fixture(scope="module")
def lotss_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("lotss") / "lotss.h5"
    return build_lotss_store(LOTSS, CATALOG, out, PipelineSettings(chunk_size=10), **RUN)


def test_lotss_store_counts_and_report(lotss_store):
    report = lotss_store.report
    assert report.n_cutouts == 34
    assert report.failing["incomplete"] == 15 and report.failing["broken"] == 0
    rows = report.rows()
    assert [r[0] for r in rows] == ["Cut-outs", "Broken", "S/N_σ", "Edge pixels", "Incomplete",
                                    "Total"]
    assert all(a[2] - b[1] == b[2] for a, b in zip(rows[:-2], rows[1:-1]))  # remaining adds up
    assert rows[-1][2] == lotss_store.n_images == report.n_selected >= 2
    assert ["catalog_shimwell_reduced.srl.fits"] not in [s[:1] for s in report.skipped_files]
    assert any("12059 of 12093" in note for note in report.notes)


def test_lotss_store_content_matches_the_mosaics(lotss_store):
    store = read_store(lotss_store.path)
    c, a = store.columns, store.attrs
    assert store.kind == "flux" and store.images.shape == (lotss_store.n_images, 80, 80)
    assert a["pixel_scale_arcsec"] == pytest.approx(1.5) and a["beam_bmaj_arcsec"] == pytest.approx(6.0)
    assert a["frequency_hz"] == pytest.approx(1.4365e8)
    assert a["selection_report"]["table"][-1][2] == len(store)
    assert a["settings"]["selection"]["snr_threshold"] == 5.0
    assert (c["snr_sigma"] >= 5).all()
    assert np.allclose(store.images.max(axis=(1, 2)), 1) and np.allclose(store.images.min(axis=(1, 2)), 0)
    boxcox = BoxCox.from_attrs(a)
    np.testing.assert_allclose(boxcox_inverse(c["scaled_flux"], boxcox), c["peak_flux"], rtol=1e-5)
    for i, name in enumerate(c["names"]):           # independently, with plain astropy
        path = LOTSS / c["source_file"][i]
        with fits.open(path) as hdul:
            raw = Cutout2D(hdul[0].data, SkyCoord(c["ra"][i], c["dec"][i], unit="deg"), 80,
                           wcs=WCS(hdul[0].header)).data
        assert c["peak_flux"][i] == pytest.approx(raw.max(), rel=1e-12), name
        assert c["min_flux"][i] == 0.0                                      # negatives → 0
        np.testing.assert_allclose(store.images[i] * c["peak_flux"][i], np.maximum(raw, 0),
                                   atol=1e-7 * raw.max())                  # Eq. (11) inverted


def test_rerun_is_reproducible_and_processes_agree(lotss_store, tmp_path):
    again = build_lotss_store(LOTSS, CATALOG, tmp_path / "again.h5", PipelineSettings(chunk_size=10),
                              workers=2, progress=False)
    assert again.path.read_bytes() == lotss_store.path.read_bytes()
    assert not (tmp_path / "again.h5.parts").exists()


def test_interrupted_run_resumes(lotss_store, tmp_path, monkeypatch):
    real, calls = pipeline._process_unit, []

    def interrupted(unit, settings):
        calls.append(unit["index"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(unit, settings)

    out = tmp_path / "resumed.h5"
    monkeypatch.setattr(pipeline, "_process_unit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_lotss_store(LOTSS, CATALOG, out, PipelineSettings(chunk_size=10), **RUN)
    assert not out.exists()
    assert len(list((tmp_path / "resumed.h5.parts").glob("*.npz"))) == 2
    calls.clear()
    monkeypatch.setattr(pipeline, "_process_unit",
                        lambda unit, settings: calls.append(unit["index"]) or real(unit, settings))
    build_lotss_store(LOTSS, CATALOG, out, PipelineSettings(chunk_size=10), **RUN)
    assert calls == [2, 3]                           # only the units not finished before
    assert out.read_bytes() == lotss_store.path.read_bytes()


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sky")
    (folder / "mosaics").mkdir()
    wcs = sky_wcs((300, 300))
    image = render((300, 300), SOURCES, np.random.default_rng(3), nan_box=NAN_BOX)
    write_mosaic(folder / "mosaics" / "M1-mosaic.fits", image, wcs)
    rows = [(s.name, *sky_position(wcs, s.x, s.y)) for s in SOURCES]
    rows.append(("outside", *sky_position(wcs, -60, 100)))
    write_catalog_csv(folder / "catalog.csv", rows, ("Source_Name", "RA", "DEC"))
    (folder / "mosaics" / "README.fits").write_text("not a mosaic")
    return folder


def test_synthetic_mosaic_one_source_per_cut(synthetic_dir, tmp_path):
    result = build_lotss_store(synthetic_dir / "mosaics", synthetic_dir / "catalog.csv",
                               tmp_path / "s.h5", **RUN)
    store = read_store(result.path)
    assert sorted(store.columns["names"]) == ["bright", "centre", "optical"]
    assert result.report.rows()[1:5] == [("Broken", 1, 6), ("S/N_σ", 1, 5), ("Edge pixels", 1, 4),
                                         ("Incomplete", 1, 3)]
    assert [name for name, _ in result.report.skipped_files] == ["README.fits"]
    assert "not a readable FITS file" in result.report.skipped_files[0][1]
    peaks = dict(zip(store.columns["names"], store.columns["peak_flux"]))
    assert peaks["centre"] == pytest.approx(0.02, abs=5e-4) and peaks["bright"] == pytest.approx(0.03, abs=5e-4)
    # another order counts the same failures under other steps
    order = ("incomplete", "edge", "snr", "broken")
    other = build_lotss_store(synthetic_dir / "mosaics", synthetic_dir / "catalog.csv",
                              tmp_path / "o.h5", PipelineSettings(selection=SelectionSettings(order=order)),
                              **RUN)
    assert [r[0] for r in other.report.rows()[1:5]] == ["Incomplete", "Edge pixels", "S/N_σ", "Broken"]
    assert other.report.failing == result.report.failing and other.n_images == 3


def test_mirabest_folder_peaks_in_jy_per_beam_and_bad_files(tmp_path):
    folder = tmp_path / "fits"
    shutil.copytree(DATA / "mirabest", folder)
    for raw in (DATA / "mirabest-raw").iterdir():
        shutil.copy(raw, folder / f"raw_{raw.name}")
    (folder / "truncated.fits").write_bytes((folder / f"raw_{raw.name}").read_bytes()[:2880])
    (folder / "empty.fits").write_bytes(b"")
    result = build_cutout_store(folder, tmp_path / "mb.h5", PipelineSettings(beam_arcsec=(5.4, 5.4, 0)),
                                **RUN)
    skipped = dict(map(tuple, result.report.skipped_files))
    assert set(skipped) == {"truncated.fits", "empty.fits"}
    assert result.report.n_cutouts == 8
    assert any("tabs" in note and "3 files" in note for note in result.report.notes)
    store = read_store(result.path)
    assert store.attrs["pixel_scale_arcsec"] == pytest.approx(1.8)
    assert store.attrs["beam_bmaj_arcsec"] == 5.4
    for name, peak in zip(store.columns["names"], store.columns["peak_flux"]):
        pixels = fits.getdata(folder / f"{name}.fits")      # plain astropy, Jy/beam
        n = pixels.shape[0]
        crop = pixels[(n - 80) // 2:(n + 80) // 2, (n - 80) // 2:(n + 80) // 2]
        assert peak == pytest.approx(max(crop.max(), 0), rel=1e-6), name
        assert 1e-4 < peak < 10                              # mJy to Jy: FIRST peak fluxes
    peaks = dict(zip(store.columns["names"], store.columns["peak_flux"]))
    same = "100_010.451-009.284_0.0529_0080.60"             # processed crop and raw original
    assert peaks[f"raw_{same}"] == peaks[same] == pytest.approx(0.03456, rel=1e-4)


def test_minmax_scale_with_a_reference_image():
    from radiogen.data.transforms import clip_negative, minmax_scale
    raw = np.array([[-0.5, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(minmax_scale(raw, reference=clip_negative(raw)),
                               [[-0.25, 0.0], [0.5, 1.0]])
    np.testing.assert_allclose(minmax_scale(raw), [[0.0, 0.2], [0.6, 1.0]])
    assert not minmax_scale(raw, reference=np.ones((2, 2))).any()    # nothing to scale by


def test_keep_noise_store_is_the_paper_store_with_its_negative_noise(tmp_path, capsys):
    stores = {}
    for name, extra in (("paper", []), ("noise", ["--keep-noise"])):
        out = tmp_path / f"{name}.h5"
        assert main(["data", "cutouts", "--fits-dir", str(DATA / "mirabest"), "--out", str(out),
                     "--beam", "5", "--workers", "1", "--no-progress"] + extra) == 0
        stores[name] = read_store(out)
    paper, noise = stores["paper"], stores["noise"]
    assert noise.attrs["settings"]["keep_noise"] and not paper.attrs["settings"]["keep_noise"]
    for column in ("names", "peak_flux", "min_flux", "scaled_flux", "snr_sigma"):
        np.testing.assert_array_equal(noise.columns[column], paper.columns[column])
    assert paper.images.min() == 0 and 0.3 < np.mean(noise.images < 0) < 0.7
    np.testing.assert_array_equal(np.maximum(noise.images, 0), paper.images)   # same positives
    for i, name in enumerate(noise.columns["names"]):       # plain astropy: pixels / peak
        pixels = fits.getdata(DATA / "mirabest" / f"{name}.fits").astype(np.float64)
        n = pixels.shape[0]
        crop = pixels[(n - 80) // 2:(n + 80) // 2, (n - 80) // 2:(n + 80) // 2]
        np.testing.assert_allclose(noise.images[i], crop / noise.columns["peak_flux"][i],
                                   atol=1e-6)
    assert main(["data", "info", str(tmp_path / "noise.h5")]) == 0
    assert "Background noise kept" in capsys.readouterr().out
    # evaluation compares such a store as the paper's images: negatives set to 0
    from radiogen.evaluation.inputs import load_image_set
    np.testing.assert_array_equal(load_image_set(str(tmp_path / "noise.h5")).images,
                                  load_image_set(str(tmp_path / "paper.h5")).images)


def test_nan_files_are_removed_as_broken(tmp_path, capsys):
    out = tmp_path / "raw.h5"
    code = main(["data", "cutouts", "--fits-dir", str(DATA / "mirabest-raw"), "--out", str(out),
                 "--size", "300", "--workers", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and not (tmp_path / "raw.h5.parts").exists()
    assert "of 3 cut-outs passed" in err and "Broken 2" in err and len(err.strip().splitlines()) == 1


def test_runs_that_cannot_start_write_nothing(tmp_path, synthetic_dir):
    out = tmp_path / "x.h5"
    with pytest.raises(FileNotFoundError, match="no such folder"):
        build_lotss_store(tmp_path / "nope", CATALOG, out, **RUN)
    with pytest.raises(FileNotFoundError, match="no such catalog"):
        build_lotss_store(LOTSS, tmp_path / "none.fits", out, **RUN)
    with pytest.raises(ValueError, match="no column 'RA'"):
        write_catalog_csv(tmp_path / "bad.csv", [("a", 1.0)], ("Source_Name", "ALPHA"))
        build_lotss_store(LOTSS, tmp_path / "bad.csv", out, **RUN)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.fits").write_text("nothing")
    with pytest.raises(ValueError, match="none of the 1 FITS files is usable"):
        build_cutout_store(junk, out, **RUN)
    with pytest.raises(ValueError, match="lies inside"):
        far = write_catalog_csv(tmp_path / "far.csv", [("x", 10.0, -60.0)], ("Source_Name", "RA", "DEC"))
        build_lotss_store(synthetic_dir / "mosaics", far, out, **RUN)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "far.csv", "junk"]
    out.write_bytes(b"precious")
    with pytest.raises(ValueError, match="already exists"):
        build_cutout_store(DATA / "mirabest", out, **RUN)
    assert out.read_bytes() == b"precious"


def test_cli_lotss_info_and_errors(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    assert main(["data", "lotss", "--mosaics", str(LOTSS), "--catalog", str(CATALOG),
                 "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Total selected" in printed and "Incomplete" in printed and str(out) in printed
    assert main(["data", "info", str(out), "--bins", "5"]) == 0
    info = capsys.readouterr().out
    assert "kind 'flux'" in info and "Box-Cox (Eq. 12)" in info and "Peak flux" in info
    assert main(["data", "lotss", "--mosaics", str(tmp_path / "none"), "--catalog", str(CATALOG),
                 "--out", str(tmp_path / "n.h5")]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and len(err.strip().splitlines()) == 1
    assert main(["data", "info", str(tmp_path / "none.h5")]) == 2


def test_cli_first_store(tmp_path, capsys):
    out = tmp_path / "first.h5"
    assert main(["data", "first", "--out", str(out), "--split", "valid"]) == 0
    store = read_store(out)
    assert store.kind == "class" and store.class_names == ("FRI", "FRII", "Compact", "Bent")
    assert np.bincount(store.labels).tolist() == [50, 50, 50, 49]
    assert store.attrs["pixel_scale_arcsec"] == 1.8 and store.images.shape[1:] == (80, 80)
    assert "Compact" in capsys.readouterr().out


@pytest.mark.parametrize("command, words", [
    (["data"], ["lotss", "cutouts", "first", "info", "Table 1"]),
    (["data", "lotss"], ["catalog", "mosaic", "S/N_σ", "Box-Cox", "resume", "--snr-threshold"]),
    (["data", "cutouts"], ["folder", "FITS", "skipped", "--edge-fraction"]),
    (["data", "first"], ["FIRST", "class", "--split"]),
    (["data", "info"], ["report", "histogram"]),
])
def test_help_says_what_each_command_does(command, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(command + ["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for word in words:
        assert word in text, word

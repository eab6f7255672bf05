"""Attacks on the command line: out-of-range numbers, bad FITS files (cubes, too small, NaN,
not FITS, wrong units), output paths that are files or cannot be written, checkpoints of
another architecture, Ctrl-C while writing. Each gets a one-line error naming the culprit, a
non-zero exit status, and no partial output under the final names."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from synthetic_sky import sky_wcs

from radiogen.cli import main
from radiogen.data.store import read_store, write_store

DATA = Path(__file__).parent / "data"
MIRABEST = sorted((DATA / "mirabest").glob("*.fits"))


def _fails(argv, capsys, code=2) -> str:
    """Run ``radiogen argv``: exit status ``code`` and one line on stderr, which is returned."""
    try:
        status = main(argv)
    except SystemExit as exit_:               # argparse refuses before main's own handling
        status = exit_.code
    err = capsys.readouterr().err
    assert status == code, err
    assert len(err.strip().splitlines()) == 1, err
    return err


def _leftovers(folder: Path) -> list[str]:
    """Temporary or partial files anywhere under ``folder``."""
    return [str(p) for p in folder.rglob("*") if p.name.endswith((".tmp", ".old"))]


# ---------------------------------------------------------------- numbers at the boundary

@pytest.mark.parametrize("argv, option", [
    (["sample", "--class", "FRII", "-n", "0"], "-n/--num"),
    (["sample", "--class", "FRII", "-n", "many"], "-n/--num"),
    (["sample", "--class", "FRII", "--steps", "-3"], "--steps"),
    (["sample", "--class", "FRII", "--guidance", "nan"], "--guidance/-w"),
    (["sample", "--class", "FRII", "-w", "-1"], "--guidance/-w"),
    (["sample", "--peak-flux", "0"], "--peak-flux"),
    (["sample", "--peak-flux", "inf"], "--peak-flux"),
    (["sample", "--class", "FRII", "--batch-size", "0"], "--batch-size"),
    (["sample", "--class", "FRII", "--seed", "-1"], "--seed"),
    (["sample", "--peak-flux", "0.1", "--dec", "91"], "--dec"),
    (["sample", "--class", "FRII", "--guidance-interval", "-1", "2"], "--guidance-interval"),
    (["train", "--max-steps", "0"], "--max-steps"),
    (["train", "--max-minutes", "-1"], "--max-minutes"),
    (["data", "cutouts", "--fits-dir", "f", "--size", "4"], "--size"),
    (["data", "cutouts", "--fits-dir", "f", "--workers", "0"], "--workers"),
    (["data", "cutouts", "--fits-dir", "f", "--chunk-size", "0"], "--chunk-size"),
    (["data", "cutouts", "--fits-dir", "f", "--edge-fraction", "1.5"], "--edge-fraction"),
    (["data", "cutouts", "--fits-dir", "f", "--snr-threshold", "nan"], "--snr-threshold"),
    (["data", "cutouts", "--fits-dir", "f", "--pixel-scale", "0"], "--pixel-scale"),
    (["data", "info", "s.h5", "--bins", "0"], "--bins"),
    (["evaluate", "--real", "r", "--generated", "g", "--pybdsf-limit", "0"], "--pybdsf-limit"),
    (["evaluate", "--real", "r", "--generated", "g", "-k", "0"], "-k"),
    (["evaluate", "--real", "r", "--generated", "g", "--noise-floor", "-0.1"], "--noise-floor"),
    (["classifier", "train", "--epochs", "0"], "--epochs"),
    (["classifier", "train", "--batch-size", "1"], "--batch-size"),
    (["classifier", "train", "--lr", "0"], "--lr"),
    (["classifier", "sweep", "--model", "m", "-n", "0"], "-n/--num"),
    (["models", "ema", "run", "--sigma-rel", "0.5"], "--sigma-rel"),
])
def test_numeric_options_are_checked_before_any_work(argv, option, capsys, tmp_path):
    out = [] if argv[:2] == ["data", "info"] else ["--out", str(tmp_path / "out")]
    err = _fails(argv + out, capsys)
    assert f"argument {option}:" in err and ("out of range" in err or "expected" in err)
    assert not (tmp_path / "out").exists()


def test_bad_beam_is_named(capsys, tmp_path):
    err = _fails(["data", "cutouts", "--fits-dir", str(DATA / "mirabest"), "--out",
                  str(tmp_path / "s.h5"), "--beam", "0", "5"], capsys)
    assert "--beam 0 5: the beam axes BMAJ and BMIN must be > 0" in err


def test_peak_flux_in_the_wrong_unit_is_refused(capsys, tmp_path):
    err = _fails(["sample", "--model", "first-flux", "--peak-flux", "50", "--out",
                  str(tmp_path / "s")], capsys)
    assert "--peak-flux 50: outside" in err and "50 mJy/beam is 0.05" in err
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------- bad FITS files

def _write(path: Path, data, header=None) -> Path:
    fits.PrimaryHDU(data, header).writeto(path)
    return path


def _sky_header(shape, bunit="JY/BEAM"):
    header = sky_wcs(shape).to_header()
    header["BUNIT"] = bunit
    return header


@pytest.fixture
def bad_fits(tmp_path) -> Path:
    """A folder of FITS files, each unusable for its own reason."""
    folder = tmp_path / "bad"
    folder.mkdir()
    _write(folder / "cube3.fits", np.ones((3, 100, 100), np.float32), _sky_header((100, 100)))
    _write(folder / "cube4.fits", np.ones((2, 3, 100, 100), np.float32), _sky_header((100, 100)))
    _write(folder / "small.fits", np.ones((40, 40), np.float32), _sky_header((40, 40)))
    _write(folder / "nan.fits", np.full((100, 100), np.nan, np.float32), _sky_header((100, 100)))
    _write(folder / "inf.fits", np.full((100, 100), np.inf, np.float32), _sky_header((100, 100)))
    _write(folder / "kelvin.fits", np.ones((100, 100), np.float32), _sky_header((100, 100), "K"))
    _write(folder / "nowcs.fits", np.ones((100, 100), np.float32))
    _write(folder / "empty.fits", None)
    (folder / "text.fits").write_text("SIMPLE = T, or so I am told\n")
    return folder


REASONS = {"cube3.fits": "a cube of shape (3, 100, 100)", "cube4.fits": "a cube of shape",
           "small.fits": "too small: 40×40 pixels", "nan.fits": "no finite pixel",
           "inf.fits": "no finite pixel", "kelvin.fits": "BUNIT 'K' is not a flux density",
           "nowcs.fits": "no celestial WCS", "empty.fits": "no data in the primary HDU",
           "text.fits": "not a readable FITS file"}


def test_a_folder_of_bad_fits_files_names_each_file_and_writes_nothing(bad_fits, capsys,
                                                                       tmp_path):
    out = tmp_path / "s.h5"
    err = _fails(["data", "cutouts", "--fits-dir", str(bad_fits), "--out", str(out),
                  "--workers", "1", "--no-progress"], capsys)
    assert "none of the 9 FITS files is usable" in err
    for name, reason in REASONS.items():
        assert f"{name}: {reason}" in err, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


def test_bad_files_beside_good_ones_are_named_in_the_report(bad_fits, capsys, tmp_path):
    for path in MIRABEST:
        shutil.copy(path, bad_fits / path.name)
    out = tmp_path / "s.h5"
    assert main(["data", "cutouts", "--fits-dir", str(bad_fits), "--out", str(out),
                 "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    skipped = dict(map(tuple, read_store(out).attrs["selection_report"]["skipped_files"]))
    assert set(skipped) == set(REASONS)
    for name, reason in REASONS.items():
        assert reason in skipped[name] and f"{name}: {reason}" in printed, name


def test_evaluate_names_every_bad_fits_file(bad_fits, capsys, tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    _write(good / "ok.fits", np.random.default_rng(0).uniform(size=(2, 80, 80)))
    _write(bad_fits / "nan_pixel.fits", np.where(np.eye(80) > 0, np.nan, 0.5))
    (bad_fits / "empty.fits").unlink()       # no data at all: looked for in any HDU
    out = tmp_path / "report"
    err = _fails(["evaluate", "--real", str(good), "--generated", str(bad_fits), "--out",
                  str(out), "--no-progress"], capsys)
    # a cube is N images, and physical units are min-max scaled: only these cannot be used
    assert "5 of 9 FITS files cannot be used" in err
    for name, reason in (("cube4.fits", "expected an image (H, W) or a cube (N, H, W)"),
                         ("nan.fits", "holds NaN or infinite"),
                         ("inf.fits", "holds NaN or infinite"),
                         ("text.fits", "not a readable FITS file"),
                         ("nan_pixel.fits", "holds NaN or infinite")):
        assert f"{name}: {reason}" in err, name
    assert not out.exists()


def test_training_on_images_of_another_size(capsys, tmp_path):
    write_store(tmp_path / "small.h5", np.zeros((6, 40, 40)), {"labels": np.arange(6) % 4})
    err = _fails(["train", "--preset", "tiny", "--data", str(tmp_path / "small.h5"), "--out",
                  str(tmp_path / "run"), "--no-progress"], capsys)
    assert "small.h5: images of 40×40 pixels, but the network takes 80×80" in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- output paths

def _unwritable(tmp_path: Path) -> Path:
    """A folder no file can be created in (even by root: a read-only file system), or skip."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    for candidate in (folder, Path("/proc/self")):
        try:
            (candidate / ".probe").touch()
            (candidate / ".probe").unlink()
        except OSError:
            return candidate
    pytest.skip("no unwritable folder on this machine")


@pytest.mark.parametrize("command", [
    ["sample", "--class", "FRII"],
    ["evaluate", "--real", "first:test", "--generated", "first:valid"],
    ["train", "--preset", "tiny"],
    ["data", "cutouts", "--fits-dir", str(DATA / "mirabest")],
])
def test_output_that_is_a_file_or_unwritable(command, capsys, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("precious")
    wants_file = command[0] == "data"
    err = _fails(command + ["--out", str(blocker / "x.h5" if wants_file else blocker)], capsys)
    assert "file.txt" in err and ("is a file" in err or "under a file" in err)
    locked = _unwritable(tmp_path)
    target = locked / ("x.h5" if wants_file else "out")
    err = _fails(command + ["--out", str(target)], capsys)
    assert "cannot write in" in err and str(locked) in err
    assert blocker.read_text() == "precious"


def test_store_path_that_is_a_folder(capsys, tmp_path):
    err = _fails(["data", "cutouts", "--fits-dir", str(DATA / "mirabest"), "--out",
                  str(tmp_path)], capsys)
    assert "is a folder, not a file name" in err


# ---------------------------------------------------------------- checkpoints of another kind

def test_checkpoint_of_another_architecture(tiny_run, capsys, tmp_path):
    from radiogen.evaluation.classifier import ClassifierConfig, RadioClassifier, save_classifier
    from radiogen.training.checkpoint import read_model_file, resolve_model_path, save_model_file

    classifier = save_classifier(RadioClassifier(ClassifierConfig(width=4)),
                                 tmp_path / "classifier.safetensors")
    err = _fails(["sample", "--checkpoint", str(classifier), "--class", "FRII", "--out",
                  str(tmp_path / "s")], capsys)
    assert "classifier.safetensors: safetensors file without radiogen model metadata" in err
    state, cfg, meta = read_model_file(resolve_model_path(tiny_run))
    cfg.channels = 16                                # the weights are of 8 channels
    mislabelled = save_model_file(tmp_path / "wide.safetensors", state, cfg, meta)
    err = _fails(["sample", "--checkpoint", str(mislabelled), "--class", "FRII", "--out",
                  str(tmp_path / "s")], capsys)
    assert "wide.safetensors: weights of another architecture" in err
    err = _fails(["train", "--out", str(tiny_run), "--resume", "--preset", "tiny", "--set",
                  "model.channels=16", "--no-progress"], capsys)
    assert "another architecture than the settings given" in err and "model.channels 8 ≠ 16" in err
    err = _fails(["evaluate", "--real", "first:test", "--generated", "first:valid", "--out",
                  str(tmp_path / "r"), "--classifier", str(mislabelled)], capsys)
    assert "wide.safetensors: not a radiogen classifier" in err
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


# ---------------------------------------------------------------- Ctrl-C while writing

def _interrupt_after_writing(monkeypatch, cls, method: str, calls: int = 1):
    """Make ``cls.method`` write its file, then raise KeyboardInterrupt on call ``calls``,
    as a Ctrl-C inside the writer would."""
    original, count = getattr(cls, method), [0]

    def write_then_interrupt(self, *args, **kwargs):
        original(self, *args, **kwargs)
        count[0] += 1
        if count[0] == calls:
            raise KeyboardInterrupt
    monkeypatch.setattr(cls, method, write_then_interrupt)


def test_ctrl_c_during_sample_leaves_no_file(tiny_run, monkeypatch, capsys, tmp_path):
    _interrupt_after_writing(monkeypatch, fits.HDUList, "writeto")
    out = tmp_path / "s"
    assert main(["sample", "--checkpoint", str(tiny_run), "--class", "FRII", "-n", "2",
                 "--steps", "2", "--out", str(out), "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_ctrl_c_during_data_leaves_no_store(monkeypatch, capsys, tmp_path):
    import h5py
    _interrupt_after_writing(monkeypatch, h5py.File, "create_dataset")
    out = tmp_path / "s.h5"
    assert main(["data", "cutouts", "--fits-dir", str(DATA / "mirabest"), "--out", str(out),
                 "--workers", "1", "--no-progress"]) == 130
    assert not out.exists() and _leftovers(tmp_path) == []
    # the finished work is kept for the rerun, which resumes and completes
    assert main(["data", "cutouts", "--fits-dir", str(DATA / "mirabest"), "--out", str(out),
                 "--workers", "1", "--no-progress"]) == 0
    assert len(read_store(out)) > 0


def test_ctrl_c_during_evaluate_leaves_whole_files(monkeypatch, capsys, tmp_path):
    from matplotlib.figure import Figure
    rng = np.random.default_rng(0)
    for name in ("real", "gen"):
        write_store(tmp_path / f"{name}.h5", rng.uniform(size=(12, 80, 80)),
                    attrs={"pixel_scale_arcsec": 1.8})
    _interrupt_after_writing(monkeypatch, Figure, "savefig", calls=3)
    out = tmp_path / "report"
    assert main(["evaluate", "--real", str(tmp_path / "real.h5"), "--generated",
                 str(tmp_path / "gen.h5"), "--out", str(out), "--no-pybdsf", "--no-classifier",
                 "--no-progress"]) == 130
    assert _leftovers(out) == []
    for png in (out / "figures").iterdir():
        assert png.read_bytes()[-8:] == b"IEND\xaeB`\x82", png    # complete PNGs only
    assert not (out / "report.json").exists()   # the first section never finished

"""`radiogen evaluate` and `radiogen classifier` end to end on small synthetic sets."""

import json

import numpy as np
import pytest

from radiogen.cli import main
from radiogen.data.store import write_store
from radiogen.evaluation.classifier import ClassifierConfig, RadioClassifier, save_classifier
from radiogen.evaluation.sources import bdsf_available

N = 80
ROWS, COLS = np.mgrid[:N, :N].astype(np.float64)


def _sky(rng, n, noise):
    """Point-like sources whose background noise falls with the scaled flux (as in Fig. 10)."""
    flux = rng.normal(size=n)
    images = []
    for f in flux:
        r0, c0 = rng.uniform(36, 44, 2)
        width = rng.uniform(1.5, 4)
        image = np.exp(-((ROWS - r0) ** 2 + (COLS - c0) ** 2) / (2 * width ** 2))
        image += rng.normal(0, noise * np.exp(-f), (N, N))
        image = np.clip(image, 0, None)
        images.append(image / image.max())
    return np.stack(images), flux


@pytest.fixture
def sets(tmp_path):
    rng = np.random.default_rng(0)
    real, real_flux = _sky(rng, 24, 0.01)
    generated, gen_flux = _sky(rng, 16, 0.01)
    write_store(tmp_path / "real.h5", real, {"labels": rng.integers(0, 4, 24),
                                            "scaled_flux": real_flux},
                {"pixel_scale_arcsec": 1.8, "beam_bmaj_arcsec": 5.0, "beam_bmin_arcsec": 5.0})
    write_store(tmp_path / "gen.h5", generated, {"labels": rng.integers(0, 4, 16),
                                                "scaled_flux": gen_flux})
    save_classifier(RadioClassifier(ClassifierConfig(width=4)).eval(), tmp_path / "c.safetensors")
    return tmp_path


def test_evaluate_writes_the_report(sets, capsys):
    out = sets / "report"
    argv = ["evaluate", "--real", str(sets / "real.h5"), "--generated", str(sets / "gen.h5"),
            "--out", str(out), "--classifier", str(sets / "c.safetensors"), "--pybdsf-limit", "4",
            "--baseline", "first:valid", "first:test",
            "--workers", "1", "-k", "3", "--no-progress"]
    if not bdsf_available():
        argv.append("--no-pybdsf")
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    stats = report["image_statistics"]
    assert stats["pixel_values"]["n_real"] == 24 * N * N
    assert 0 <= stats["image_mean"]["ks_statistic"] <= 1
    cls = report["classification"]
    assert sum(map(sum, cls["generated"]["confusion"])) == 16
    assert sum(map(sum, cls["real"]["confusion"])) == 24
    frechet = report["frechet"]
    assert frechet["real_vs_generated"] >= 0 and frechet["baseline_real_vs_real"] >= 0
    memo = report["memorisation"]
    assert memo["n_held_out"] == 2 and memo["n_training"] == 22 and memo["k"] == 3
    if bdsf_available():
        assert report["sources"]["real"]["n_images"] == 4
        fc = report["flux_conditioning"]
        assert -1 <= fc["real"]["spearman_rho"] <= 1
        assert fc["spearman_difference"] == pytest.approx(
            fc["generated"]["spearman_rho"] - fc["real"]["spearman_rho"])
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"hist_pixel_values.png", "confusion_generated.png", "top_matches.png"} <= figures
    page = (out / "report.md").read_text()
    for name in figures:
        assert f"figures/{name}" in page
    assert "report written" in capsys.readouterr().out


def test_evaluate_reports_skips_and_refuses_bad_input(sets, tmp_path, capsys):
    write_store(tmp_path / "unlabelled.h5", np.random.default_rng(1).uniform(size=(6, N, N)))
    write_store(tmp_path / "small.h5", np.zeros((6, 40, 40)))
    out = tmp_path / "r"
    assert main(["evaluate", "--real", str(sets / "real.h5"), "--generated",
                 str(tmp_path / "unlabelled.h5"), "--out", str(out), "--no-pybdsf",
                 "--no-memorisation", "--no-classifier", "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert "no classifier weights" in report["classification"]["skipped"]
    assert "disabled" in report["memorisation"]["skipped"]
    assert "Skipped" in (out / "report.md").read_text()
    assert main(["evaluate", "--real", str(sets / "real.h5"), "--generated",
                 str(tmp_path / "small.h5"), "--out", str(out), "--no-progress"]) == 2
    assert "different sizes" in capsys.readouterr().err


def test_classifier_test_command(sets, capsys):
    write_store(sets / "labelled.h5", np.random.default_rng(2).uniform(size=(6, N, N)),
                {"labels": np.array([0, 1, 2, 3, 0, 1])})
    assert main(["classifier", "test", "--weights", str(sets / "c.safetensors"), "--data",
                 str(sets / "labelled.h5"), "--out", str(sets / "t"), "--device", "cpu"]) == 0
    result = json.loads((sets / "t" / "result.json").read_text())
    assert sum(map(sum, result["confusion"])) == 6 and (sets / "t" / "confusion.png").exists()
    assert "accuracy" in capsys.readouterr().out
    assert main(["classifier", "test", "--weights", str(sets / "c.safetensors"), "--data",
                 str(sets / "gen.h5"), "--device", "cpu"]) == 0


@pytest.fixture
def tiny_model(tmp_path):
    """A random class-conditioned denoiser of the smallest shape, as a model file."""
    from helpers import perturb, tiny_model_config
    from radiogen.models import Denoiser
    from radiogen.training.checkpoint import save_model_file

    config = tiny_model_config()
    # Zero-initialised layers (output, FiLM) would make D = c_skip·x whatever the class; with
    # weights everywhere, the class label, and hence ω, changes the images.
    denoiser = perturb(Denoiser(config), scale=0.1)
    return save_model_file(tmp_path / "tiny.safetensors", denoiser.state_dict(), config,
                           {"kind": "class", "class_names": ["FRI", "FRII", "Compact", "Bent"]})


def test_guidance_sweep_on_a_tiny_model(tiny_model, sets, tmp_path):
    out = tmp_path / "table7.json"
    assert main(["classifier", "sweep", "--weights", str(sets / "c.safetensors"),
                 "--checkpoint", str(tiny_model), "--guidance", "0.1", "0.75", "-n", "2",
                 "--steps", "3", "--reference", str(sets / "real.h5"), "--out", str(out),
                 "--device", "cpu", "--no-progress"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["guidance"] for r in rows] == [0.1, 0.75]
    assert all(sum(map(sum, r["confusion"])) == 8 and 0 <= r["accuracy"] <= 1 for r in rows)
    # the same seeds at both ω: different images (N = 3 puts σ_1 = 2.5 inside the default
    # guidance interval), so different distances to the real set
    assert all(r["frechet"] > 0 for r in rows) and rows[0]["frechet"] != rows[1]["frechet"]


def test_classifier_export_half_precision(sets, tmp_path, capsys):
    import torch
    from radiogen.evaluation.classifier import load_classifier

    out = tmp_path / "c16.safetensors"
    assert main(["classifier", "export", str(sets / "c.safetensors"), "--out", str(out)]) == 0
    assert "fp16" in capsys.readouterr().out
    full, _ = load_classifier(sets / "c.safetensors")
    half, _ = load_classifier(out)
    for (name, a), b in zip(full.state_dict().items(), half.state_dict().values()):
        assert b.dtype == a.dtype                                   # read back as float32
        expected = a.half().to(a.dtype) if a.is_floating_point() else a
        assert torch.equal(b, expected), name


@pytest.mark.parametrize("name", ["first-morphology", "first-morphology-2"])
def test_bundled_classifiers_load_and_classify_real_images(name, tmp_path, capsys):
    """Each shipped classifier loads, is small, and `classifier test` takes it by name (the
    first without --weights: it is the default)."""
    from radiogen.data.first import load_first
    from radiogen.evaluation.classifier import bundled_classifier, classifier_path, load_classifier

    path = bundled_classifier(name)
    assert classifier_path(name) == path and path.stat().st_size < 16 * 2 ** 20
    model, record = load_classifier(path)
    assert record["test"]["accuracy"] > 0.7 and record["best_epoch"] >= 0
    test = load_first("test")
    pick = np.concatenate([np.flatnonzero(test.labels == c)[:10] for c in range(4)])
    write_store(tmp_path / "few.h5", test.images[pick], {"labels": test.labels[pick]})
    weights = [] if name == "first-morphology" else ["--weights", name]
    assert main(["classifier", "test", "--data", str(tmp_path / "few.h5"), "--device", "cpu",
                 *weights]) == 0
    accuracy = float(capsys.readouterr().out.split("accuracy ")[1].split()[0])
    assert accuracy >= 0.6                                          # real FIRST images, 4 classes


def test_stores_without_a_beam_skip_pybdsf_and_keep_the_other_sections(tmp_path, capsys):
    """The issue's case: stores built by `radiogen data cutouts` from FITS cut-outs whose
    headers hold no beam. PyBDSF is skipped before it runs, saying why; the rest stands."""
    from pathlib import Path

    from radiogen.data.pipeline import build_cutout_store
    from radiogen.data.store import read_store

    folder = Path(__file__).parent / "data" / "mirabest"
    for name in ("real", "gen"):
        build_cutout_store(folder, tmp_path / f"{name}.h5", workers=1, progress=False)
    assert np.isnan(read_store(tmp_path / "real.h5").attrs["beam_bmaj_arcsec"])
    out = tmp_path / "report"
    assert main(["evaluate", "--real", str(tmp_path / "real.h5"), "--generated",
                 str(tmp_path / "gen.h5"), "--out", str(out), "--no-classifier",
                 "--workers", "1", "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    if bdsf_available():
        assert "records no beam (--beam BMAJ BMIN BPA)" in report["sources"]["skipped"]
        assert not (out / "pybdsf-cache").exists()               # nothing was fitted
    assert report["flux_conditioning"]["skipped"].startswith("no PyBDSF fits: ")
    n = len(read_store(tmp_path / "real.h5"))
    assert report["image_statistics"]["image_mean"]["n_real"] == n
    assert report["memorisation"]["n_generated"] == n
    assert "skipped sources" in capsys.readouterr().out


def test_delta_plus_needs_three_fitted_sources_per_set(tmp_path):
    from radiogen.evaluation.inputs import image_set
    from radiogen.evaluation.sources import SourceModels
    from radiogen.evaluation.suite import SectionSkipped, _flux_conditioning

    images = image_set(np.zeros((4, 8, 8)), scaled_flux=np.arange(4.0), source="a")
    models = SourceModels(np.zeros((4, 8, 8), np.float32), np.array([1, 1, 0, 0]))
    with pytest.raises(SectionSkipped, match="a source in 2 of the 4 real images; a rank "
                                             "correlation needs at least 3"):
        _flux_conditioning({"real": (images, models), "generated": (images, models)}, tmp_path)


def test_a_failing_section_leaves_the_others_in_the_report(sets, monkeypatch, capsys):
    from radiogen.evaluation import suite

    def broken(*args):
        raise RuntimeError("out of memory")
    monkeypatch.setattr(suite, "_memorisation", broken)
    out = sets / "report"
    assert main(["evaluate", "--real", str(sets / "real.h5"), "--generated",
                 str(sets / "gen.h5"), "--out", str(out), "--no-pybdsf", "--no-classifier",
                 "--no-progress"]) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["memorisation"] == {"skipped": "failed: RuntimeError: out of memory",
                                      "error": "RuntimeError"}
    assert report["image_statistics"]["image_mean"]["n_real"] == 24
    assert "memorisation failed" in capsys.readouterr().err

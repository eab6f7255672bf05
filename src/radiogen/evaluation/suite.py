"""``radiogen evaluate``: every metric of Sections 5–6 and Appendix A, from two image sets to a report.

Sections, each independent (a section that cannot run is recorded as skipped with its reason,
never filled with a made-up number, and the others stand; the report is rewritten after every
section, and PyBDSF's fits are kept for the next run):

``image_statistics``   pixel, mean and standard-deviation distributions (always);
``sources``            PyBDSF model flux and A50% distributions (needs ``bdsf``, and the beam and
                       pixel scale from the real set or the settings);
``flux_conditioning``  Δ+ against f̂_scaled (needs PyBDSF, scaled fluxes in both sets and at
                       least 3 images with fitted sources in each);
``classification``     accuracy and confusion matrices (needs classifier weights and labels);
``frechet``            radio Fréchet distance with a real-vs-real baseline (needs weights);
``memorisation``       best-match SSIM of generated and held-out real images (always).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from radiogen.evaluation import figures as fig
from radiogen.evaluation.inputs import ImageSet, check_compatible, load_image_set
from radiogen.evaluation.report import write_json, write_markdown
from radiogen.evaluation.sources import (PyBDSFSettings, bdsf_available, positive_residual,
                                         run_pybdsf)
from radiogen.evaluation.statistics import (PIXEL_EDGES, compare, image_means, image_stds,
                                            rank_correlation)

__all__ = ["EvaluationSettings", "SectionSkipped", "evaluate"]


class SectionSkipped(Exception):
    """A section's prerequisites are missing; the message is the reason shown in the report."""


@dataclass
class EvaluationSettings:
    """What ``evaluate`` runs and how.

    Attributes
    ----------
    pybdsf : bool
        Run PyBDSF (source models, A50%, Δ+).
    pybdsf_settings : dict
        Overrides of :class:`~radiogen.evaluation.sources.PyBDSFSettings`; the beam and pixel
        scale come from the real set where it has them.
    pybdsf_limit : int, optional
        Fit at most this many (randomly chosen) images per set: PyBDSF takes about a second
        per image and core.
    workers : int, optional
        PyBDSF processes (all cores by default).
    classifier : path, optional
        Classifier weights (``radiogen classifier train``); without them the classification
        and Fréchet sections are skipped.
    baseline : tuple of str
        Two real sets whose Fréchet distance gives the scale of the real-vs-generated one.
    memorisation : bool
        Run the SSIM nearest-neighbour search.
    k : int
        Neighbours kept per generated image.
    held_out_fraction : float
        Without explicit held-out images, this fraction of the real set (at most 1000 images)
        is held out as the memorisation baseline.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"`` for the classifier and SSIM.
    seed : int
    progress : bool
    """

    pybdsf: bool = True
    pybdsf_settings: dict = field(default_factory=dict)
    pybdsf_limit: int | None = None
    workers: int | None = None
    classifier: str | None = None
    baseline: tuple[str, str] = ("first:train", "first:test")
    memorisation: bool = True
    k: int = 5
    held_out_fraction: float = 0.1
    device: str = "auto"
    seed: int = 0
    progress: bool = True


def _image_statistics(real: ImageSet, gen: ImageSet, out: Path, s: EvaluationSettings) -> dict:
    quantities = {"pixel_values": (real.images, gen.images, PIXEL_EDGES, "pixel value"),
                  "image_mean": (image_means(real.images), image_means(gen.images), 50,
                                 "image mean"),
                  "image_std": (image_stds(real.images), image_stds(gen.images), 50,
                                "image standard deviation")}
    result, figures = {"notes": [
        "The KS p-value assumes independent values: it holds for per-image quantities, not "
        "for pixel values, whose pixels are correlated within an image (read D and W1)."]}, {}
    for name, (a, b, edges, label) in quantities.items():
        comparison = compare(a, b, edges, seed=s.seed)
        result[name] = comparison.to_dict()
        figures[label] = fig.histogram_figure(comparison, label, out / f"hist_{name}.png")
    figures["examples"] = fig.image_grid_figure({"real": real.images[:8],
                                                 "generated": gen.images[:8]},
                                                out / "examples.png")
    return {**result, "figures": figures}


def _fit_sources(sets: dict, s: EvaluationSettings, cache_dir: Path) -> dict:
    if not s.pybdsf:
        raise SectionSkipped("PyBDSF disabled (--no-pybdsf)")
    if not bdsf_available():
        raise SectionSkipped("PyBDSF is not installed: pip install bdsf (or radiogen[eval])")
    missing = PyBDSFSettings.unknown_geometry(sets["real"].attrs, s.pybdsf_settings)
    if missing:
        raise SectionSkipped(f"the real set ({sets['real'].source}) records no "
                             f"{' and no '.join(missing)}, which PyBDSF's fits and the "
                             "beam-area fluxes need")
    rng = np.random.default_rng(s.seed)
    settings = PyBDSFSettings.for_images(sets["real"].attrs, **s.pybdsf_settings)
    chosen = {}
    for name, images in sets.items():
        index = np.arange(len(images))
        if s.pybdsf_limit and len(images) > s.pybdsf_limit:
            index = np.sort(rng.choice(len(images), s.pybdsf_limit, replace=False))
        chosen[name] = images.subset(index)
    # one pool for both sets: the workers start once and stay busy
    models = run_pybdsf(np.concatenate([c.images for c in chosen.values()]), settings,
                        s.workers, seed=s.seed, progress=s.progress, cache_dir=cache_dir)
    fits, start = {}, 0
    for name, images in chosen.items():
        fits[name] = (images, models.select(slice(start, start + len(images))))
        start += len(images)
    return fits


def _sources(fits: dict, out: Path, s: EvaluationSettings) -> dict:
    result = {name: models.summary() for name, (_, models) in fits.items()}
    figures = {}
    (real, rm), (gen, gm) = fits["real"], fits["generated"]
    for name, label, get in (("model_flux", "PyBDSF model flux (image peak × beam)",
                              lambda m: m.model_flux),
                             ("a50", "A50% (pixels)", lambda m: m.a50)):
        a, b = get(rm)[rm.fitted], get(gm)[gm.fitted]
        if len(a) == 0 or len(b) == 0:
            result[name] = {"skipped": "PyBDSF fitted no source in one of the sets"}
            continue
        comparison = compare(a, b, 50, seed=s.seed)
        result[name] = comparison.to_dict()
        figures[label] = fig.histogram_figure(comparison, label, out / f"hist_{name}.png")
    figures["source models"] = fig.image_grid_figure(
        {"real": real.images[:8], "real model": rm.model_images[:8],
         "generated": gen.images[:8], "generated model": gm.model_images[:8]},
        out / "source_models.png")
    return {**result, "figures": figures}


def _flux_conditioning(fits: dict, out: Path) -> dict:
    result, points = {}, {}
    for name, colour in (("real", fig.REAL_COLOUR), ("generated", fig.GENERATED_COLOUR)):
        images, models = fits[name]
        if images.scaled_flux is None:
            raise SectionSkipped(f"the {name} set ({images.source}) has no scaled peak flux")
        ok = models.fitted
        if ok.sum() < 3:
            raise SectionSkipped(f"PyBDSF fitted a source in {ok.sum()} of the {len(ok)} {name} "
                                 "images; a rank correlation needs at least 3")
        delta = positive_residual(images.images[ok], models.model_images[ok])  # Eq. (26)
        result[name] = rank_correlation(images.scaled_flux[ok], delta)
        points[name] = (images.scaled_flux[ok], delta, colour)
    result["spearman_difference"] = (result["generated"]["spearman_rho"]
                                     - result["real"]["spearman_rho"])
    result["figures"] = {"Δ+ against f̂_scaled": fig.scatter_figure(
        points, "scaled peak flux f̂_scaled", "positive residual Δ+", out / "delta_plus.png")}
    return result


def _classifier(s: EvaluationSettings):
    if not s.classifier:
        raise SectionSkipped("no classifier weights (--no-classifier, or the bundled "
                             "classifier is not installed; --classifier names a weights file)")
    from radiogen.evaluation.classifier import load_classifier

    return load_classifier(s.classifier, s.device)


def _classification(real: ImageSet, gen: ImageSet, out: Path, s: EvaluationSettings) -> dict:
    from radiogen.evaluation.classifier import classify

    model, record = _classifier(s)
    result, figures = {}, {}
    if "test" in record:
        result["reference_first_test_accuracy"] = record["test"]["accuracy"]
    for name, images in (("real", real), ("generated", gen)):
        if images.labels is None:
            result[name] = {"skipped": f"{images.source} has no class labels"}
            continue
        c = classify(model, images.images, images.labels, device=s.device)
        result[name] = c.to_dict()
        figures[f"confusion {name}"] = fig.confusion_figure(
            c.confusion, f"{name}: accuracy {c.accuracy:.3f} (n = {c.n})",
            out / f"confusion_{name}.png")
    if real.labels is None and gen.labels is None:
        raise SectionSkipped("neither set has class labels")
    return {**result, "figures": figures}


def _frechet(real: ImageSet, gen: ImageSet, s: EvaluationSettings) -> dict:
    from radiogen.evaluation.classifier import encode
    from radiogen.evaluation.frechet import frechet_distance_features

    model, _ = _classifier(s)
    features = {name: encode(model, images.images, device=s.device)
                for name, images in (("real", real), ("generated", gen))}
    a, b = (load_image_set(spec) for spec in s.baseline)
    try:
        check_compatible(real, a, b)
        baseline = frechet_distance_features(encode(model, a.images, device=s.device),
                                             encode(model, b.images, device=s.device))
        described = f"{a.source} (n = {len(a)}) vs {b.source} (n = {len(b)})"
    except ValueError as err:
        baseline, described = None, f"not computed: {err}"
    return {"real_vs_generated": frechet_distance_features(features["real"],
                                                           features["generated"]),
            "baseline_real_vs_real": baseline, "baseline_sets": described,
            "n_real": len(real), "n_generated": len(gen),
            "notes": ["Squared Fréchet distance (as FID) between Gaussian fits of the "
                      "classifier's encoder features; the baseline is two real sets."]}


def _memorisation(real: ImageSet, gen: ImageSet, held_out: ImageSet | None, out: Path,
                  s: EvaluationSettings) -> dict:
    from radiogen.evaluation.classifier import resolve_device
    from radiogen.evaluation.memorisation import memorisation_check

    if not s.memorisation:
        raise SectionSkipped("memorisation check disabled (--no-memorisation)")
    training, note = real, f"held-out real images: {held_out.source}" if held_out else ""
    if held_out is None:
        n = min(1000, max(1, int(round(s.held_out_fraction * len(real)))))
        if len(real) - n < 1:
            raise SectionSkipped("the real set is too small to hold images out")
        pick = np.random.default_rng(s.seed).permutation(len(real))
        held_out, training = real.subset(np.sort(pick[:n])), real.subset(np.sort(pick[n:]))
        note = f"held-out real images: a random {n} of the real set, the rest as training set"
    check = memorisation_check(gen.images, training.images, held_out.images, s.k,
                               str(resolve_device(s.device)), s.progress)
    neighbours, aligned = check["generated"], check["aligned"]
    top = np.argsort(neighbours.best)[::-1][:6]
    compare_best = compare(check["held_out"].best, neighbours.best, 50, seed=s.seed)
    figures = {"best-match SSIM": fig.histogram_figure(
        compare_best, "best-match SSIM with the training set", out / "hist_ssim.png",
        log=False, labels=("held-out real", "generated")),
        "closest training images": fig.matches_figure(
            aligned["generated"][top], aligned["training"][neighbours.index[top]],
            neighbours.ssim[top], out / "top_matches.png")}
    return {**check["summary"], "best_match_distance": compare_best.distances(),
            "notes": [note], "figures": figures}


#: The sections in report order.
SECTIONS = ("image_statistics", "sources", "flux_conditioning", "classification", "frechet",
            "memorisation")
#: Where PyBDSF's finished fits are kept, inside the report folder.
PYBDSF_CACHE = "pybdsf-cache"


class _Report:
    """The report folder, rewritten (atomically) after every section, so that finished
    sections are on disk whatever happens to the ones after them."""

    def __init__(self, out: Path, results: dict, title: str):
        self.out, self.results, self.title = out, results, title
        for key in SECTIONS:
            results[key] = {"skipped": "not computed: the run stopped before this section"}

    @staticmethod
    def attempt(fn, *args) -> tuple:
        """(value, None), or (None, what the report says instead) when ``fn`` cannot be
        computed: skipped with its reason (``error`` names an unexpected failure's type)."""
        try:
            return fn(*args), None
        except SectionSkipped as reason:
            return None, {"skipped": str(reason)}
        except ValueError as err:
            return None, {"skipped": f"cannot be computed: {err}"}
        except Exception as err:  # noqa: BLE001 - the report stands; the error is recorded
            return None, {"skipped": f"failed: {type(err).__name__}: {err}",
                          "error": type(err).__name__}

    def run(self, key: str, fn, *args) -> None:
        """Compute one section (or record why not), then rewrite the report."""
        value, instead = self.attempt(fn, *args)
        self.results[key] = instead or value
        self.write()

    def write(self) -> None:
        write_json(self.results, self.out / "report.json")
        write_markdown(self.results, self.out / "report.md", self.title)


def evaluate(real: ImageSet | str, generated: ImageSet | str, out: str | os.PathLike,
             settings: EvaluationSettings | None = None,
             held_out: ImageSet | str | None = None) -> dict:
    """Compare generated images with real ones and write the report folder ``out``.

    Parameters
    ----------
    real, generated : ImageSet or str
        Image sets, or specifications for :func:`~radiogen.evaluation.inputs.load_image_set`.
        ``real`` is also the training set of the memorisation check.
    out : path
        Report folder: ``report.json``, ``report.md``, ``figures/`` and ``pybdsf-cache/``
        (PyBDSF's fits, reused by a later run on the same images with the same PyBDSF
        settings). The report is rewritten after each section: a section that cannot be
        computed is recorded as skipped with its reason, and the others stand.
    settings : EvaluationSettings, optional
    held_out : ImageSet or str, optional
        Real images not used for training, the memorisation baseline.

    Returns
    -------
    dict
        Everything written to ``report.json``.
    """
    s = settings or EvaluationSettings()
    load = (lambda x: x if x is None or isinstance(x, ImageSet) else load_image_set(x))
    real, generated, held_out = load(real), load(generated), load(held_out)
    check_compatible(*[x for x in (real, generated, held_out) if x is not None])
    out, figures = Path(out), Path(out) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    results = {"inputs": {"real": real.source, "n_real": len(real),
                          "generated": generated.source, "n_generated": len(generated),
                          "image_size": list(real.shape), "settings": asdict(s)}}
    report = _Report(out, results, f"radiogen evaluation: {generated.source} against {real.source}")
    report.run("image_statistics", _image_statistics, real, generated, figures, s)
    fits, instead = report.attempt(_fit_sources, {"real": real, "generated": generated}, s,
                                   out / PYBDSF_CACHE)
    if instead:
        results["sources"] = instead
        results["flux_conditioning"] = {**instead, "skipped": f"no PyBDSF fits: "
                                                              f"{instead['skipped']}"}
        report.write()
    else:
        report.run("sources", _sources, fits, figures, s)
        report.run("flux_conditioning", _flux_conditioning, fits, figures)
    report.run("classification", _classification, real, generated, figures, s)
    report.run("frechet", _frechet, real, generated, s)
    report.run("memorisation", _memorisation, real, generated, held_out, figures, s)
    return results

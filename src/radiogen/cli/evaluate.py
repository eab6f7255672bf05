"""``radiogen evaluate``: compare generated images with real ones and write a report."""

from __future__ import annotations

import argparse
import sys

from radiogen.cli import CommandError
from radiogen.cli.checks import COUNT, POSITIVE, SEED, beam, check_output_folder, number

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, but not the empty ones (None, False) that say nothing."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


SETS_HELP = ("an HDF5 store, a FITS file or folder of FITS files, or first:SPLIT "
             "(train, valid, test, all) for the bundled FIRST dataset")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="compare generated images with real ones: metrics, figures, report",
        description="Compare generated radio-galaxy images with real ones as in Sections 5-6 and "
                    "Appendix A of the paper: pixel / mean / std distributions, PyBDSF model flux "
                    "and A50%, the positive residual Δ+ against the scaled peak flux, classifier "
                    "accuracy and confusion matrices, a radio Fréchet distance, and a "
                    "memorisation check by SSIM. Writes report.json, report.md and figures/ "
                    "into --out. A section that cannot be computed (inputs missing, too few "
                    "detections, ...) is reported as skipped with its reason and the others "
                    "stand; PyBDSF's fits are kept in --out/pybdsf-cache/ and reused by a rerun "
                    "on the same images with the same PyBDSF settings.",
        formatter_class=HelpFormatter)
    p.add_argument("--real", required=True, metavar="R",
                   help=f"real images (also the memorisation training set): {SETS_HELP}")
    p.add_argument("--generated", required=True, metavar="G", help=f"generated images: {SETS_HELP}")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder")
    p.add_argument("--classifier", metavar="WEIGHTS",
                   help="classifier weights (.safetensors from `radiogen classifier train`) or "
                        "a bundled classifier's name (default: first-morphology; also "
                        "first-morphology-2)")
    p.add_argument("--no-classifier", action="store_true",
                   help="skip the classification and Fréchet sections")
    p.add_argument("--baseline", nargs=2, metavar=("A", "B"), default=["first:train", "first:test"],
                   help="two real sets whose Fréchet distance is printed as the scale")
    p.add_argument("--held-out", metavar="H",
                   help="real images not used in training, the memorisation baseline "
                        "(default: a random 10%% of --real, at most 1000)")
    p.add_argument("--no-pybdsf", action="store_true", help="skip the PyBDSF sections")
    p.add_argument("--pybdsf-limit", type=COUNT, metavar="N",
                   help="run PyBDSF on at most N random images per set (about 1 s per image "
                        "and core)")
    p.add_argument("--workers", type=COUNT, help="PyBDSF processes (default: all cores)")
    p.add_argument("--thresh-isl", type=POSITIVE, default=3.0, help="PyBDSF island threshold (σ)")
    p.add_argument("--thresh-pix", type=POSITIVE, default=5.0, help="PyBDSF peak threshold (σ)")
    p.add_argument("--noise-floor", type=number(0, 1), default=1e-2,
                   help="noise added before PyBDSF, relative to the image maximum")
    p.add_argument("--pixel-scale", type=POSITIVE, metavar="ARCSEC",
                   help="pixel scale (default: from the real set; without either, the PyBDSF "
                        "sections are skipped)")
    p.add_argument("--beam", type=number(), nargs=3, metavar=("BMAJ", "BMIN", "BPA"),
                   help="beam FWHM axes in arcsec and position angle in degrees "
                        "(default: from the real set; without either, the PyBDSF sections are "
                        "skipped)")
    p.add_argument("--no-memorisation", action="store_true", help="skip the SSIM search")
    p.add_argument("-k", type=COUNT, default=5, help="nearest training images kept per image")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=SEED, default=0, help="seed of every random choice")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _pybdsf_overrides(args) -> dict:
    overrides = {"thresh_isl": args.thresh_isl, "thresh_pix": args.thresh_pix,
                 "noise_floor": args.noise_floor}
    if args.pixel_scale is not None:
        overrides["pixel_scale_arcsec"] = args.pixel_scale
    if args.beam is not None:
        overrides["beam_arcsec"] = beam(args.beam)
    return overrides


def _bundled_classifier() -> str | None:
    from radiogen.evaluation.classifier import bundled_classifier
    try:
        return str(bundled_classifier())
    except FileNotFoundError:
        return None


def run(args) -> int:
    from radiogen.evaluation.suite import EvaluationSettings, evaluate

    check_output_folder(args.out)
    if args.classifier:
        from radiogen.evaluation.classifier import classifier_path
        args.classifier = str(classifier_path(args.classifier))
    classifier = None if args.no_classifier else args.classifier or _bundled_classifier()
    if args.classifier and not args.no_classifier:
        from radiogen.evaluation.classifier import load_classifier
        load_classifier(args.classifier)          # a wrong file fails now, not after PyBDSF
    settings = EvaluationSettings(
        pybdsf=not args.no_pybdsf, pybdsf_settings=_pybdsf_overrides(args),
        pybdsf_limit=args.pybdsf_limit, workers=args.workers, classifier=classifier,
        baseline=tuple(args.baseline), memorisation=not args.no_memorisation, k=args.k,
        device=args.device, seed=args.seed, progress=not args.no_progress)
    results = evaluate(args.real, args.generated, args.out, settings, held_out=args.held_out)
    skipped = [k for k, v in results.items() if isinstance(v, dict) and "skipped" in v]
    print(f"report written to {args.out}/report.md (numbers in report.json)")
    for key in skipped:
        print(f"  skipped {key}: {results[key]['skipped']}")
    failed = [k for k in skipped if "error" in results[k]]
    if failed:
        print(f"radiogen evaluate: error: {', '.join(failed)} failed (reasons above and in the "
              "report); the other sections stand", file=sys.stderr)
    return 1 if failed else 0

"""``radiogen evaluate``: compare generated images with real ones and write a report."""

from __future__ import annotations

import argparse

from radiogen.cli import CommandError

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
                    "into --out. Sections whose inputs are missing are reported as skipped.",
        formatter_class=HelpFormatter)
    p.add_argument("--real", required=True, metavar="R",
                   help=f"real images (also the memorisation training set): {SETS_HELP}")
    p.add_argument("--generated", required=True, metavar="G", help=f"generated images: {SETS_HELP}")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder")
    p.add_argument("--classifier", metavar="WEIGHTS",
                   help="classifier weights (.safetensors from `radiogen classifier train`; "
                        "default: the bundled FIRST classifier)")
    p.add_argument("--no-classifier", action="store_true",
                   help="skip the classification and Fréchet sections")
    p.add_argument("--baseline", nargs=2, metavar=("A", "B"), default=["first:train", "first:test"],
                   help="two real sets whose Fréchet distance is printed as the scale")
    p.add_argument("--held-out", metavar="H",
                   help="real images not used in training, the memorisation baseline "
                        "(default: a random 10%% of --real, at most 1000)")
    p.add_argument("--no-pybdsf", action="store_true", help="skip the PyBDSF sections")
    p.add_argument("--pybdsf-limit", type=int, metavar="N",
                   help="run PyBDSF on at most N random images per set (about 1 s per image "
                        "and core)")
    p.add_argument("--workers", type=int, help="PyBDSF processes (default: all cores)")
    p.add_argument("--thresh-isl", type=float, default=3.0, help="PyBDSF island threshold (σ)")
    p.add_argument("--thresh-pix", type=float, default=5.0, help="PyBDSF peak threshold (σ)")
    p.add_argument("--noise-floor", type=float, default=1e-2,
                   help="noise added before PyBDSF, relative to the image maximum")
    p.add_argument("--pixel-scale", type=float, metavar="ARCSEC",
                   help="pixel scale (default: from the real set, else 1.5)")
    p.add_argument("--beam", type=float, nargs=3, metavar=("BMAJ", "BMIN", "BPA"),
                   help="beam FWHM axes in arcsec and position angle in degrees "
                        "(default: from the real set, else 6 6 0)")
    p.add_argument("--no-memorisation", action="store_true", help="skip the SSIM search")
    p.add_argument("-k", type=int, default=5, help="nearest training images kept per image")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _pybdsf_overrides(args) -> dict:
    overrides = {"thresh_isl": args.thresh_isl, "thresh_pix": args.thresh_pix,
                 "noise_floor": args.noise_floor}
    if args.pixel_scale is not None:
        overrides["pixel_scale_arcsec"] = args.pixel_scale
    if args.beam is not None:
        overrides["beam_arcsec"] = tuple(args.beam)
    return overrides


def _bundled_classifier() -> str | None:
    from radiogen.evaluation.classifier import bundled_classifier
    try:
        return str(bundled_classifier())
    except FileNotFoundError:
        return None


def run(args) -> int:
    from radiogen.evaluation.suite import EvaluationSettings, evaluate

    for name in ("pybdsf_limit", "workers", "k"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
    classifier = None if args.no_classifier else args.classifier or _bundled_classifier()
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
    return 0

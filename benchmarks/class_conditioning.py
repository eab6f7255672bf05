"""How well class-conditioned models' denoisers tell the classes apart, side by side in one run.

For each model and noise level σ, real labelled images (the FIRST test split by default) are
noised once and denoised under every class label (:mod:`radiogen.evaluation.conditioning`):
``acc`` is the fraction whose error is smallest under their own label, ``gain`` the fraction of
the other labels' error that the own label removes. "extended" compares FRI, FRII and Bent only
(chance 1/3), the classes that differ in shape rather than size. No sampling and no classifier:
seconds per model, for choosing training settings before the slower accuracy of generated images.

    python benchmarks/class_conditioning.py first-class runs/trials/A runs/trials/B
"""

from __future__ import annotations

import argparse

from _bench import machine, print_table
from radiogen import api
from radiogen.data.first import CLASSES
from radiogen.evaluation.conditioning import class_discrimination, denoising_errors
from radiogen.evaluation.inputs import load_image_set


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="bundled model names, model files or run folders")
    p.add_argument("--real", default="first:test", help="labelled real images")
    p.add_argument("--sigmas", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    args = p.parse_args()

    real = load_image_set(args.real)
    labels = real.require_labels("class discrimination")
    extended = [CLASSES.index(c) for c in ("FRI", "FRII", "Bent")]
    print(f"class discrimination on {machine('cpu')}: {real.source}, {len(real)} images")
    rows = []
    for name in args.models:
        errors = denoising_errors(api.load_model(name).denoiser, real.images, len(CLASSES), args.sigmas)
        for label, among in (("all", None), ("extended", extended)):
            for sigma, e in zip(args.sigmas, errors):
                r = class_discrimination(e, labels, among)
                rows.append({"model": name, "classes": label, "σ": f"{sigma:g}",
                             "acc": f"{r['accuracy']:.2f}", "gain": f"{r['gain']:.4f}"})
    print_table(rows, ["model", "classes", "σ", "acc", "gain"])


if __name__ == "__main__":
    main()

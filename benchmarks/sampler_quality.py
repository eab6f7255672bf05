"""Quality against cost of the ODE samplers, side by side in one run.

For every sampler and budget of network evaluations per image, the same seeds are sampled
(guidance ω) and each setting is scored against the reference (Heun, 49 evaluations = the
paper's 25 steps). A class-conditioned model draws n images per class; a flux-conditioned one
draws 4n images whose peak fluxes are drawn from the real set (the same ones for every setting).

- ``rms``: RMS pixel difference from the reference images of the same seeds (the solver error;
  the same ODE is being solved, so this goes to 0 as evaluations grow);
- ``RFD``: radio Fréchet distance to the real images (``--real``), on the classifier features;
- ``img/s``: images per second on this machine (guided evaluations count twice);
- class models: ``acc``, classifier accuracy against the requested class, and ``agree``, the
  fraction of images the classifier labels as it labels the reference image;
- ``W1 mean`` and ``W1 std``: Wasserstein-1 distances of the per-image mean and standard
  deviation (pixels in [0, 1]) to those of the real images.

    python benchmarks/sampler_quality.py --model first-class --n 50 \\
        --samplers euler heun dpmpp-2m ipndm --evals 4 6 8 10 15 20 --out runs/sampler-quality
    python benchmarks/sampler_quality.py --model first-flux --real runs/mirabest-flux.h5 --n 25
    python benchmarks/sampler_quality.py --model first-class --samplers dpmpp-2m --evals 15 \
        --consistency runs/first-class-consistency --consistency-steps 1 2 3 4

``--consistency`` adds rows for a consistency-tuned model (its own weights, so ``rms`` there is
the difference from another model's images, not a solver error) with the consistency sampler at
each N, last noise level σ_min and ω (by default that model's own).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from _bench import machine, print_table
from radiogen import api
from radiogen.data.first import CLASSES
from radiogen.diffusion import (SAMPLERS, GuidedDenoiser, evaluations, noise_levels,
                                steps_for_evaluations)
from radiogen.evaluation.classifier import bundled_classifier, encode, load_classifier, predict
from radiogen.evaluation.frechet import frechet_distance_features
from radiogen.evaluation.inputs import load_image_set
from radiogen.evaluation.statistics import compare, image_means, image_stds


def draw(model, n_per_class, sampler, steps, args, interval=None, precision=None, guidance=None,
         sigma_min=None):
    """Class models: n per class, class c from seeds seed + c·n; flux models: one image per
    entry of ``args.flux`` from seeds seed, seed + 1, …; returns (images, labels, seconds)."""
    t = time.perf_counter()
    options = dict(guidance=args.guidance if guidance is None else guidance, steps=steps,
                   sampler=sampler, batch_size=args.batch_size, sigma_min=sigma_min,
                   precision=precision or args.precision,
                   guidance_interval=interval or api.EVERY_SIGMA, progress=False)
    if model.kind != "class":
        images = api.sample(model, len(args.flux), scaled_flux=args.flux, seed=args.seed, **options)
        return images, None, time.perf_counter() - t
    images = np.concatenate([
        api.sample(model, n_per_class, class_label=c, seed=args.seed + c * n_per_class, **options)
        for c in range(len(CLASSES))])
    return images, np.repeat(np.arange(len(CLASSES)), n_per_class), time.perf_counter() - t


def network_evaluations(sampler, steps, guidance, interval=None) -> int:
    """Network passes per image: the sampler run on a 1-pixel dummy denoiser, counted."""
    D = GuidedDenoiser(lambda x, sigma, context, mask: x, torch.ones(1, 1), guidance, interval)
    SAMPLERS[sampler](D, torch.ones(1, 1, 1, 1), noise_levels(sampler, steps))
    return D.n_network_evals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="first-class")
    p.add_argument("--classifier", default=None, help="classifier weights (default: the bundled one)")
    p.add_argument("--real", default=None,
                   help="real images for the Fréchet distance (and the fluxes and distributions of "
                        "a flux model; an HDF5 store with scaled_flux); default: first:train")
    p.add_argument("--samplers", nargs="*", default=["euler", "heun", "dpmpp-2m", "ipndm"])
    p.add_argument("--evals", nargs="+", type=int, default=[4, 6, 8, 10, 15, 20])
    p.add_argument("--reference", nargs=2, default=["heun", "49"], metavar=("SAMPLER", "EVALS"))
    p.add_argument("--intervals", nargs="*", default=[], metavar="LO,HI",
                   help="guidance intervals σ_lo,σ_hi to try with --interval-sampler")
    p.add_argument("--interval-sampler", nargs="+", default=["dpmpp-2m", "10"],
                   metavar="SAMPLER EVALS", help="sampler and evaluation budgets for --intervals")
    p.add_argument("--precisions", nargs="*", default=[], help="extra precisions for the reference sampler")
    p.add_argument("--consistency", help="a consistency-tuned model to score beside the ODE samplers")
    p.add_argument("--consistency-steps", nargs="+", type=int, default=[1, 2, 3, 4])
    p.add_argument("--consistency-sigma-min", nargs="+", type=float,
                   default=[api.CONSISTENCY_SIGMA_MIN], help="last re-noising levels to try")
    p.add_argument("--consistency-guidance", nargs="+", type=float, default=None,
                   help="ω values for the consistency model (default: its own default)")
    p.add_argument("--n", type=int, default=50, help="images per class and setting")
    p.add_argument("--guidance", type=float, default=None, help="ω (default: the model kind's)")
    p.add_argument("--precision", default="bf16")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder for results.json and quality.png")
    args = p.parse_args()

    model = api.load_model(args.model)
    args.guidance = api.DEFAULT_GUIDANCE[model.kind] if args.guidance is None else args.guidance
    classifier_path = args.classifier or bundled_classifier()
    classifier, _ = load_classifier(classifier_path)
    real = load_image_set(args.real or "first:train")
    real_features = encode(classifier, real.images)
    is_class = model.kind == "class"
    if not is_class:
        if real.scaled_flux is None:
            raise SystemExit(f"{real.source}: a flux model needs real images with scaled fluxes "
                             "(--real STORE.h5 from `radiogen data cutouts`)")
        rng = np.random.default_rng(args.seed)
        args.flux = rng.choice(real.scaled_flux, size=4 * args.n)
    print(f"sampler quality on {machine('cpu')}: {args.model}, ω={args.guidance}, "
          f"{4 * args.n} images{' (n per class)' if is_class else ''}, {args.precision}; "
          f"classifier {Path(classifier_path).name}; real: {real.source}")

    def score(name, sampler, steps, images, labels, seconds, reference, net_evals=None, series=None):
        if net_evals is None:
            net_evals = network_evaluations(sampler, steps, args.guidance)
        row = {"setting": name, "sampler": sampler, "series": series, "steps": steps,
               "evals": evaluations(sampler, steps), "net evals": net_evals,
               "rms": float(np.sqrt(((images - reference[0]) ** 2).mean())),
               "RFD": frechet_distance_features(encode(classifier, images), real_features),
               "img/s": len(images) / seconds}
        if is_class:
            predicted = predict(classifier, images)
            row["acc"] = float((predicted == labels).mean())
            row["agree"] = float((predicted == reference[1]).mean())
        row["W1 mean"] = compare(image_means(real.images), image_means(images)).wasserstein
        row["W1 std"] = compare(image_stds(real.images), image_stds(images)).wasserstein
        return row

    ref_sampler, ref_evals = args.reference[0], int(args.reference[1])
    ref_steps = steps_for_evaluations(ref_sampler, ref_evals)
    images, labels, seconds = draw(model, args.n, ref_sampler, ref_steps, args)
    reference = (images, predict(classifier, images) if is_class else None)
    ref_row = score(f"{ref_sampler}-{ref_evals} (reference)", ref_sampler, ref_steps, images, labels,
                    seconds, reference)
    rows = [ref_row]
    for precision in args.precisions:
        imgs, _, sec = draw(model, args.n, ref_sampler, ref_steps, args, precision=precision)
        rows.append(score(f"{ref_sampler}-{ref_evals} {precision}", ref_sampler, ref_steps, imgs,
                          labels, sec, reference))
    for sampler in args.samplers:
        for n_evals in args.evals:
            try:
                steps = steps_for_evaluations(sampler, n_evals)
            except ValueError:
                continue
            imgs, _, sec = draw(model, args.n, sampler, steps, args)
            rows.append(score(f"{sampler}-{evaluations(sampler, steps)}", sampler, steps, imgs,
                              labels, sec, reference, series=sampler))
    sampler = args.interval_sampler[0]
    for text in args.intervals:
        lo, hi = (float(v) for v in text.split(","))
        for n_evals in args.interval_sampler[1:]:
            steps = steps_for_evaluations(sampler, int(n_evals))
            net_evals = network_evaluations(sampler, steps, args.guidance, (lo, hi))
            imgs, _, sec = draw(model, args.n, sampler, steps, args, interval=(lo, hi))
            rows.append(score(f"{sampler}-{evaluations(sampler, steps)} σ∈({lo:g},{hi:g}]", sampler,
                              steps, imgs, labels, sec, reference, net_evals=net_evals))

    if args.consistency:
        cm = api.load_model(args.consistency)
        for omega in args.consistency_guidance or [api.sampling_defaults(cm)["guidance"]]:
            for sigma_min in args.consistency_sigma_min:
                for steps in args.consistency_steps:
                    imgs, _, sec = draw(cm, args.n, "consistency", steps, args, guidance=omega,
                                        sigma_min=sigma_min)
                    name = f"consistency σmin={sigma_min:g} ω={omega:g}"
                    rows.append(score(f"{name} N={steps}", "consistency", steps, imgs, labels, sec,
                                      reference, network_evaluations("consistency", steps, omega),
                                      series=name))

    quality = ["acc", "agree", "W1 mean", "W1 std"] if is_class else ["W1 mean", "W1 std"]
    columns = ["setting", "evals", "net evals", *quality, "rms", "RFD", "img/s"]
    formatted = [{c: (f"{r[c]:.4f}" if c.startswith("W1") else f"{r[c]:.3f}" if isinstance(r[c], float)
                      else r[c]) for c in columns} for r in rows]
    for r, f in zip(rows, formatted):
        f["RFD"] = f"{r['RFD']:.2f} ({r['RFD'] / ref_row['RFD']:.2f}x)"
        f["img/s"] = f"{r['img/s']:.2f} ({r['img/s'] / ref_row['img/s']:.1f}x)"
    print_table(formatted, columns)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(
            {"model": args.model, "guidance": args.guidance, "n_per_class": args.n, "real": real.source,
             "precision": args.precision, "machine": machine("cpu"), "rows": rows}, indent=1))
        plot(rows, out / "quality.png", quality[0])


def plot(rows, path, first="acc"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for series in dict.fromkeys(r["series"] for r in rows[1:] if r["series"]):
        rs = [r for r in rows[1:] if r["series"] == series]
        e = [r["evals"] for r in rs]
        axes[0].plot(e, [r[first] for r in rs], "o-", label=series)
        axes[1].plot(e, [r["RFD"] for r in rs], "o-", label=series)
        axes[2].plot(e, [r["rms"] for r in rs], "o-", label=series)
    ref = rows[0]
    labels = {"acc": "accuracy", "W1 mean": "W1 of per-image means to real"}
    for ax, key, label in zip(axes, (first, "RFD", None), (labels[first], "radio Fréchet distance",
                                                          "RMS difference from reference")):
        if key:
            ax.axhline(ref[key], color="k", ls="--", lw=1, label=ref["setting"])
        ax.set_xlabel("network evaluations per image")
        ax.set_ylabel(label)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()

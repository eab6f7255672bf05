"""The realism protocol for class models (issue 13), several settings side by side in one run.

Every setting (a model with its sampling and guidance options) draws n images per class from
each seed set (class c of set s from seeds s + c·n onwards, the same seeds for every setting),
and every classifier scores them: accuracy, recall per class and confusion matrix against the
requested class, radio Fréchet distance (RFD, on that classifier's features) to the reference
images, and the Wasserstein-1 distances of per-image mean and standard deviation to them. Islands
per image (8-connected regions above 5% of the peak), by requested class, measure how often a
source is split into blobs, without a classifier; the reference's figures by true class are
printed first. With ``--memorisation first:train``, the memorisation check of Appendix A:
each generated image's best-match SSIM to the training images after PCA alignment, beside the
reference's own (held-out real images: the scale), and the fraction of generated images closer
to a training image than any reference image is.

Choose settings against a reference the models did not train on that is not the test split
(``run-valid:RUN``: the 10% a run held out for its validation loss), with a classifier that will
not report the result; report the final choice against ``first:test`` with both classifiers.

    python benchmarks/class_realism.py --n 500 --seed-sets 0 1000000 \\
        --setting shipped:model=first-class \\
        --setting new:model=runs/first-patch/ema.safetensors,guide_model=runs/early.safetensors,autoguidance=0.5 \\
        --classifier first-morphology --classifier first-morphology-2 \\
        --reference first:test --out runs/realism

Setting keys: model (bundled name or path), guidance (ω), steps, sampler, interval (lo/hi),
guide_model, autoguidance, guide_classifier, classifier_scale, background_clip, churn (S_churn of
the heun-sde sampler). Images are kept as .npy in --out, so scoring with another classifier later
needs no sampling (--rescore), and an interrupted run draws only what is missing (--reuse).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _bench import machine, parse_setting, print_table
from radiogen import api
from radiogen.atomic import atomic_path
from radiogen.data.first import CLASSES
from radiogen.evaluation.classifier import classifier_path, classify, encode, load_classifier
from radiogen.evaluation.frechet import frechet_distance_features
from radiogen.evaluation.inputs import load_image_set
from radiogen.evaluation.memorisation import memorisation_check
from radiogen.evaluation.report import write_json
from radiogen.evaluation.statistics import image_means, image_stds, island_counts
from scipy.stats import wasserstein_distance


def reference_images(spec: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Real images in [0, 1] and their class labels (None where the set has none):
    ``run-valid:RUN`` (a run's held-out validation images) or any image-set spec of radiogen
    evaluate (first:SPLIT, store, FITS)."""
    if spec.startswith("run-valid:"):
        from radiogen.config import Config
        from radiogen.data.datasets import load_training_set, split_train_valid
        run = Path(spec.split(":", 1)[1])
        cfg = Config.from_json(run / "config.json")
        data = load_training_set(cfg.data, cfg.training.seed)
        valid = split_train_valid(data, cfg.data.valid_fraction, cfg.training.seed)[1]
        return (((valid.images[:, 0].numpy() + 1) / 2).astype(np.float32),
                valid.context.numpy().argmax(axis=1))
    images = load_image_set(spec)
    return images.images, images.labels


def draw(options: dict, n: int, seed: int, batch_size) -> tuple[np.ndarray, float]:
    model = api.load_model(options["model"])
    kw = {k: v for k, v in options.items() if k != "model"}
    t = time.perf_counter()
    images = np.concatenate([api.sample(model, n, class_label=c, seed=seed + c * n,
                                        batch_size=batch_size, progress=False, **kw)
                             for c in range(len(CLASSES))])
    return images, time.perf_counter() - t


def islands_per_class(images, labels) -> list[float]:
    """Mean islands per image (:func:`island_counts`) of each class."""
    counts = island_counts(images)
    return [float(counts[labels == c].mean()) if np.any(labels == c) else float("nan")
            for c in range(len(CLASSES))]


def score(images, labels, classifier, reference_features, reference) -> dict:
    result = classify(classifier, images, labels)
    return {"accuracy": result.accuracy, "recall": result.to_dict()["recall_per_class"],
            "confusion": result.confusion.tolist(),
            "rfd": frechet_distance_features(reference_features, encode(classifier, images)),
            "w1_mean": wasserstein_distance(image_means(images), image_means(reference)),
            "w1_std": wasserstein_distance(image_stds(images), image_stds(reference))}


def memorisation(images, training, reference) -> dict:
    """Best-match SSIM quantiles of ``images`` and of the held-out ``reference`` against
    ``training`` (Appendix A), and the fraction of ``images`` above the reference's maximum."""
    return memorisation_check(images, training, reference, k=1, progress=False)["summary"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", action="append", required=True, metavar="LABEL:KEY=VALUE,...")
    p.add_argument("--n", type=int, default=500, help="images per class and seed set")
    p.add_argument("--seed-sets", nargs="+", type=int, default=[0, 1_000_000])
    p.add_argument("--classifier", action="append", default=None,
                   help="classifier weights (repeatable; bundled: first-morphology, "
                        "first-morphology-2)")
    p.add_argument("--reference", default="first:test",
                   help="real images: first:SPLIT, run-valid:RUN, a store or FITS")
    p.add_argument("--memorisation", metavar="TRAIN",
                   help="training images (first:SPLIT, a store or FITS) for the memorisation "
                        "check; the reference must be held out from them")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--rescore", action="store_true",
                   help="score the images already in --out instead of sampling")
    p.add_argument("--reuse", action="store_true",
                   help="draw only the settings and seed sets whose images are not in --out yet "
                        "(an interrupted run goes on; images drawn before, e.g. the bundled "
                        "model's, are scored again)")
    p.add_argument("--out", required=True, help="folder for images (.npy) and results.json")
    args = p.parse_args()

    out = Path(args.out)
    settings = [parse_setting(s) for s in args.setting]
    paths = [str(classifier_path(c)) for c in (args.classifier or ["first-morphology"])]
    classifiers = [load_classifier(path)[0] for path in paths]
    reference, reference_labels = reference_images(args.reference)
    reference_features = [encode(c, reference) for c in classifiers]
    reference_islands = (None if reference_labels is None
                         else islands_per_class(reference, reference_labels))
    print(f"class realism on {machine('cpu')}: {args.n} per class, seed sets {args.seed_sets}, "
          f"reference {args.reference} ({len(reference)} images), classifiers "
          + ", ".join(Path(c).name for c in paths))
    if reference_islands is not None:
        print("islands per image in the reference, FRI/FRII/Compact/Bent: "
              + "/".join(f"{v:.2f}" for v in reference_islands))
    training = load_image_set(args.memorisation).images if args.memorisation else None
    labels = np.repeat(np.arange(len(CLASSES)), args.n)
    rows, results = [], []
    for label, options in settings:
        for seed in args.seed_sets:
            npy = out / f"{label}-seed{seed}.npy"
            if args.rescore or (args.reuse and npy.exists()):
                images, seconds = np.load(npy), float("nan")
                if len(images) != len(labels):
                    raise SystemExit(f"{npy}: {len(images)} images, expected {len(labels)} "
                                     f"({args.n} per class)")
            else:
                images, seconds = draw(options, args.n, seed, args.batch_size)
                with atomic_path(npy) as tmp, open(tmp, "wb") as f:   # --reuse trusts what is there
                    np.save(f, images)
            scores = [score(images, labels, c, f, reference) for c, f in zip(classifiers, reference_features)]
            islands = islands_per_class(images, labels)
            results.append({"label": label, "options": options, "seed": seed, "seconds": seconds,
                            "islands_per_class": islands, "scores": dict(zip(paths, scores))})
            if training is not None:
                results[-1]["memorisation"] = copies = memorisation(images, training, reference)
            row = {"setting": label, "seeds": seed}
            for i, s in enumerate(scores):
                row[f"acc{i}"] = f"{s['accuracy']:.3f}"
                row[f"FRI/FRII/C/B{i}"] = "/".join(f"{r:.2f}" for r in s["recall"])
                row[f"RFD{i}"] = f"{s['rfd']:.1f}"
            row["W1 mean"] = f"{scores[0]['w1_mean']:.4f}"
            row["W1 std"] = f"{scores[0]['w1_std']:.4f}"
            row["islands FRI/FRII/C/B"] = "/".join(f"{v:.2f}" for v in islands)
            if training is not None:
                q_gen, q_ref = copies["generated_best_quantiles"], copies["held_out_best_quantiles"]
                row["SSIM median (ref)"] = f"{q_gen['0.5']:.3f} ({q_ref['0.5']:.3f})"
                row["> ref max"] = f"{copies['fraction_generated_above_held_out_max']:.3f}"
            row["img/s"] = f"{len(images) / seconds:.2f}" if seconds == seconds else "-"
            rows.append(row)
            print_table(rows[-1:], list(row))
    print()
    print_table(rows, list(rows[0]))
    write_json({"reference": args.reference, "classifiers": paths, "n_per_class": args.n,
                "seed_sets": args.seed_sets, "reference_islands_per_class": reference_islands,
                "results": results}, out / "results.json")
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()

"""Step 6, the score: 500 images per class (FRI, FRII, Compact, Bent) from each exported model,
the trained EMA first, with the default sampler, labelled by the bundled classifier (accuracy,
recall per class, confusion matrix) and compared with the FIRST test split (radio Fréchet
distance on the classifier's features, Wasserstein-1 of per-image mean and standard deviation);
then, with time left, the first model with the paper's sampler (Heun, N = 25, guided at every σ).
A PNG grid shows eight images per class of the first model. Without exported models (training
failed) the bundled first-class is scored instead, to check this path on the GPU."""

from __future__ import annotations

import time
import traceback

import numpy as np

from oneshot.common import Step

N_PER_CLASS, SMOKE_N_PER_CLASS = 500, 2
#: --smoke samples with 3 noise levels whatever the sampler (plumbing, not quality).
SMOKE_STEPS = 3
SMOKE_REAL = 24                                   # real test images used by --smoke
MODEL_FILES = ("model.safetensors", "ema-0.100.safetensors", "ema-0.050.safetensors")
PAPER_SAMPLER = {"sampler": "heun", "steps": 25, "guidance_interval": (0.0, float("inf"))}
GRID_PER_CLASS = 8


def _per_image(images: np.ndarray, reference: np.ndarray) -> dict:
    """Wasserstein-1 distances of per-image mean and standard deviation to the reference."""
    from scipy.stats import wasserstein_distance
    return {f"w1_{name}": float(wasserstein_distance(fn(images.reshape(len(images), -1), axis=1),
                                                     fn(reference.reshape(len(reference), -1), axis=1)))
            for name, fn in (("mean", np.mean), ("std", np.std))}


def score_model(model, classifier, real, real_features, n: int, device, options=None) -> tuple:
    """(row of scores, images) for ``n`` images per class of ``model``."""
    from radiogen import api
    from radiogen.data.first import CLASSES
    from radiogen.evaluation.classifier import classify, encode
    from radiogen.evaluation.frechet import frechet_distance_features
    start = time.perf_counter()
    batch = min(n, 500)                        # a guided batch runs 2 × 500 images
    images = np.concatenate([api.sample(model, n, class_label=c, seed=c * n, batch_size=batch,
                                        progress=False, **(options or {}))
                             for c in range(len(CLASSES))])
    sampled = time.perf_counter() - start
    labels = np.repeat(np.arange(len(CLASSES)), n)
    row = classify(classifier, images, labels, device=device).to_dict()
    row["frechet_to_test"] = frechet_distance_features(real_features, encode(classifier, images, device=device))
    row.update(_per_image(images, real.images), sampling_seconds=sampled,
               seconds=time.perf_counter() - start, n_per_class=n,
               sampler=options or "default (api.sampling_defaults)")
    return row, images


def _needed(rows: list, options) -> float:
    """Seconds the next row will take, from the first: its sampling time scaled by the network
    passes (Heun-25 guided everywhere: 98 per image, the default: 13) plus the rest, +20%."""
    first = next((row for row in rows if "seconds" in row), None)
    if first is None:
        return 0.0
    passes = 98 / 13 if (options or {}).get("sampler") == "heun" else 1.0
    return 1.2 * (first["sampling_seconds"] * passes + first["seconds"] - first["sampling_seconds"])


def _grid(path, images: np.ndarray, n: int) -> None:
    from radiogen.data.first import CLASSES
    from radiogen.outputs import write_png_grid
    k = min(GRID_PER_CLASS, n)
    picks = np.concatenate([images[c * n:c * n + k] for c in range(len(CLASSES))])
    write_png_grid(path, picks, ncols=k, titles=[c for c in CLASSES for _ in range(k)])


def run(step: Step) -> None:
    import torch

    from radiogen import api
    from radiogen.data.first import load_first
    from radiogen.evaluation.classifier import bundled_classifier, encode, load_classifier
    from radiogen.evaluation.frechet import frechet_distance_features
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = SMOKE_N_PER_CLASS if step.smoke else N_PER_CLASS
    models = [step.out / f for f in MODEL_FILES if (step.out / f).is_file()] or ["first-class"]
    classifier, _ = load_classifier(bundled_classifier(), device)
    real = load_first("test")
    if step.smoke:
        real = real.subset(np.arange(SMOKE_REAL))
    real_features = encode(classifier, real.images, device=device)
    r = step.result
    r.update(device=device, reference=f"FIRST test split ({len(real.images)} images)", rows=[])
    if not step.smoke:                             # the scale: two real sets (README: 9.8)
        train = load_first("train")
        r["frechet_real_train_to_test"] = frechet_distance_features(
            encode(classifier, train.images, device=device), real_features)
    step.save()
    runs = [(m, None) for m in models] + [(models[0], PAPER_SAMPLER)]
    for i, (path, options) in enumerate(runs):
        if step.left() < _needed(r["rows"], options):
            r["rows"].append({"model": getattr(path, "name", path), "sampler": options,
                              "skipped": "out of time"})
            continue
        if step.smoke:
            options = {**(options or {}), "steps": SMOKE_STEPS}
        try:                                  # a failed row does not stop the next
            model = api.load_model(str(path), device=device)
            row, images = score_model(model, classifier, real, real_features, n, device, options)
        except Exception:
            r["rows"].append({"model": getattr(path, "name", str(path)), "sampler": options,
                              "error": traceback.format_exc()[-3000:]})
            step.save()
            continue
        r["rows"].append({"model": getattr(path, "name", str(path)), **row})
        print(f"{r['rows'][-1]['model']} {options or ''}: accuracy {row['accuracy']:.3f}, "
              f"RFD {row['frechet_to_test']:.1f} ({row['seconds']:.1f} s)", flush=True)
        if i == 0:
            _grid(step.out / "samples.png", images, n)
            r["grid"] = f"samples.png: {GRID_PER_CLASS} images per class of {r['rows'][-1]['model']}"
        step.save()
    failed = [row["model"] for row in r["rows"] if "error" in row]
    if failed:
        raise RuntimeError(f"scoring failed for {', '.join(failed)} (tracebacks in the rows)")

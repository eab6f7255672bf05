"""The realism protocol for flux models (issue 13), several settings side by side in one run.

Real images the model did not train on are the reference H: the validation split its training
run held out (the same store, ``--valid-fraction`` and seed as the run: 74 of the 737 MiraBest
cut-outs for ``first-flux``). Every setting draws n images per seed set, their peak fluxes drawn
from the training histogram as ``radiogen sample`` does (Section 6.1), and is compared with H by
the Wasserstein-1 distance of four quantities: pixel values (min-max scaled), per-image mean,
per-image standard deviation and log10 of the peak flux (Jy/beam). The scale of each distance is
the same distance from n real training images (drawn afresh for each seed set) to H: the ratio
generated/real is 1 for a model as close to H as real images are (issue goal: ≤ 1.5 for each).
The fraction of pixels that are exactly 0 (real cut-outs: negatives set to 0) is printed beside.
With ``--pybdsf N``, PyBDSF fits the first N images of each set (H included) and the model flux and
A50% distances are given the same way. With ``--bootstrap B``, each setting's distances minus the
first setting's are resampled B times (held-out and generated images drawn again with replacement)
and their 5–95% range printed, per seed set and with the seed sets pooled: whether two settings
differ by more than the draw of images does.

That scale is itself uncertain: which n training images are drawn changes it (the pixel values,
strongly correlated within an image, by up to 8× between draws of 150 MiraBest images). So the real
floor is also measured over ``--floor-draws`` independent draws of n training images (no
PyBDSF), its median and 10–90% range printed, and every setting's W1 given as a ratio to that
median too: a steadier figure than the per-seed-set ratio, which stays the protocol's. How far
the per-set ratio moves by the draw alone is printed beside: the ratios that a model drawing
exactly from the training images would score (one floor draw's W1 over another's, all pairs).
Last, each setting's images of all seed sets are pooled and compared with H against all the
training images' W1 to H: the figure with the most images behind it (its scale holds the
held-out images' own deviation from the training set, so a model that had learnt the training
set exactly scores about 1).

    python benchmarks/flux_realism.py --store runs/mirabest-flux.h5 --n 300 \\
        --setting shipped:model=first-flux \\
        --setting clip:model=first-flux,background_clip=0.004 --out runs/flux-realism

Build the store as ``scripts/train_first_flux_cpu.sh`` does (``radiogen data cutouts --fits-dir
../shared/data/mirabest-fits --beam 5 --frequency 1.4e9``). Setting keys as in
``class_realism.py``. Images are kept as .npz in --out; ``--reuse`` draws only what is missing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _bench import machine, parse_setting, print_table
from radiogen import api
from radiogen.atomic import atomic_path
from radiogen.config import DataConfig
from radiogen.data.datasets import load_training_set, split_train_valid
from radiogen.data.flux import BoxCox, boxcox_inverse
from radiogen.data.transforms import clip_background, from_model_range
from radiogen.evaluation.inputs import load_image_set
from radiogen.evaluation.report import write_json
from radiogen.evaluation.statistics import compare, image_means, image_stds
from tqdm.auto import tqdm

#: The quantities compared, by name: images in [0, 1] and peak fluxes (Jy/beam) → values.
QUANTITIES = {
    "pixel": lambda images, peaks: images.reshape(-1),
    "mean": lambda images, peaks: image_means(images),
    "std": lambda images, peaks: image_stds(images),
    "log peak": lambda images, peaks: np.log10(peaks),
}


#: Seeds of the real-floor draws (apart from the seed sets' own draws).
FLOOR_SEED = 7_000_000


def real_split(store: str, valid_fraction: float, seed: int):
    """The store's training and held-out images in [0, 1] with their peak fluxes (Jy/beam), split
    as ``radiogen train`` splits it (:func:`split_train_valid` with the run's seed); negatives
    set to 0 where the store kept the background noise (``--keep-noise``), as in the samples."""
    data = load_training_set(DataConfig(source=store), seed)
    if data.meta.get("kind") != "flux":
        raise SystemExit(f"{store}: not a peak-flux store")
    boxcox = BoxCox(*(data.meta["boxcox"][k] for k in ("lambda", "mean", "std")))
    parts = []
    for part in split_train_valid(data, valid_fraction, seed):
        images = from_model_range(part.images[:, 0].numpy()).astype(np.float32)
        parts.append((images, boxcox_inverse(part.context[:, 0].numpy(), boxcox)))
    return parts, data.meta["boxcox"]


def w1(quantity: str, a, b, seed: int) -> float:
    """W1 between the ``quantity`` of two sets (images, peaks); :func:`compare` draws a seeded
    subset where a set has more values than it takes (the pixels)."""
    return compare(*(QUANTITIES[quantity](*s) for s in (b, a)), seed=seed).wasserstein


def real_draw(train, n: int, rng) -> tuple:
    """n training images (and their peak fluxes) drawn without replacement, in store order."""
    return tuple(v[np.sort(rng.permutation(len(train[0]))[:n])] for v in train)


def real_floor(train, held_out, n: int, draws: int) -> dict[str, np.ndarray]:
    """W1 of each quantity from ``draws`` independent draws of n training images to H."""
    floor = {q: np.empty(draws) for q in QUANTITIES}
    for k in tqdm(range(draws), desc="real floor", leave=False):
        real = real_draw(train, n, np.random.default_rng(FLOOR_SEED + k))
        for q in QUANTITIES:
            floor[q][k] = w1(q, real, held_out, FLOOR_SEED + k)
    return floor


def null_ratios(floor: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-set ratios that a model drawing exactly from the training images would score: the
    W1 of one real-floor draw to H over that of another, for every ordered pair of draws. The
    draws share training images, so if anything this understates the spread."""
    off_diagonal = ~np.eye(len(next(iter(floor.values()))), dtype=bool)
    return {q: (v[:, None] / v[None, :])[off_diagonal] for q, v in floor.items()}


def bootstrap_differences(held_out, held_out_bdsf, first, other, reps: int, seed: int) -> dict:
    """5–95% range over ``reps`` bootstrap resamples of W1(other, H) − W1(first, H) for each
    quantity: H and both settings' images (with their PyBDSF measures) drawn again with
    replacement, whole images at a time, since pixels are correlated within an image. The two
    settings draw the same peak fluxes and seeds, image for image, so they are resampled in pairs
    (the same indices; PyBDSF measures too where both sets have as many fits). A range that spans
    0 says the two settings are not told apart at this n. A quantity whose values the two
    settings share (the log peak: the same peak fluxes drawn) is left out: its difference is 0."""
    rng = np.random.default_rng(seed)
    (a, a_bdsf), (b, b_bdsf) = first, other
    differing = [q for q, f in QUANTITIES.items() if not np.array_equal(f(*a), f(*b))]

    def paired(n_a: int, n_b: int):
        i = rng.integers(0, n_a, n_a)
        return i, (i if n_b == n_a else rng.integers(0, n_b, n_b))

    diffs = {q: [] for q in (*differing, *held_out_bdsf)}
    for _ in tqdm(range(reps), desc="bootstrap", leave=False):
        h = rng.integers(0, len(held_out[0]), len(held_out[0]))
        ia, ib = paired(len(a[0]), len(b[0]))
        hh, aa, bb = (tuple(v[i] for v in s) for s, i in ((held_out, h), (a, ia), (b, ib)))
        for q in differing:
            diffs[q].append(w1(q, bb, hh, seed) - w1(q, aa, hh, seed))
        for q, v in held_out_bdsf.items():
            vh = v[rng.integers(0, len(v), len(v))]
            ia, ib = paired(len(a_bdsf[q]), len(b_bdsf[q]))
            diffs[q].append(compare(vh, b_bdsf[q][ib]).wasserstein
                            - compare(vh, a_bdsf[q][ia]).wasserstein)
    return {q: np.percentile(d, [5, 95]).tolist() for q, d in diffs.items()}


def draw(options: dict, n: int, seed: int, batch_size, boxcox: dict, cache: dict):
    """n images of a flux model and their peak fluxes (Jy/beam), drawn as ``radiogen sample``
    draws them without ``--peak-flux``. Settings that differ only in ``background_clip`` (a pixel
    operation after sampling) share one draw through ``cache``."""
    model = api.load_model(options["model"])
    if model.kind != "flux":
        raise SystemExit(f"{options['model']}: a {model.kind} model, not a peak-flux model")
    if not np.isclose(model.meta["boxcox"]["lambda"], boxcox["lambda"]):
        raise SystemExit(f"{options['model']}: trained on another store (Box-Cox λ "
                         f"{model.meta['boxcox']['lambda']:.4f}, the store's {boxcox['lambda']:.4f})")
    context = api.draw_flux_context(model, n, seed)
    kw = {k: v for k, v in options.items() if k not in ("model", "background_clip")}
    clip = options.get("background_clip", api.sampling_defaults(model)["background_clip"])
    key = (options["model"], seed, tuple(sorted(kw.items())))
    if key not in cache:
        t = time.perf_counter()
        cache[key] = (api.sample(model, n, scaled_flux=context, seed=seed, batch_size=batch_size,
                                 progress=False, background_clip=0.0, **kw),
                      time.perf_counter() - t)
    images, seconds = cache[key]
    return clip_background(images, clip), api.peak_flux_of(model, context), seconds


def pybdsf_measures(images, attrs, cache) -> dict:
    """PyBDSF model flux and A50% of the images that it fits."""
    from radiogen.evaluation.sources import PyBDSFSettings, run_pybdsf
    models = run_pybdsf(images, PyBDSFSettings.for_images(attrs), cache_dir=cache, progress=False)
    ok = models.fitted
    return {"model flux": models.model_flux[ok], "A50%": models.a50[ok]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", action="append", required=True, metavar="LABEL:KEY=VALUE,...")
    p.add_argument("--store", required=True, help="the flux store the models trained on")
    p.add_argument("--valid-fraction", type=float, default=0.1,
                   help="the runs' data.valid_fraction (default: 0.1)")
    p.add_argument("--split-seed", type=int, default=0, help="the runs' training.seed (default: 0)")
    p.add_argument("--n", type=int, default=300, help="images per setting and seed set")
    p.add_argument("--seed-sets", nargs="+", type=int, default=[0, 1_000_000])
    p.add_argument("--pybdsf", type=int, default=0, metavar="N",
                   help="PyBDSF on N images of each set (0: off; about 1 s per image and core)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--floor-draws", type=int, default=50,
                   help="draws of n training images for the real floor's spread (default: 50)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="B",
                   help="B bootstrap resamples of each setting's W1 minus the first setting's "
                        "(5–95%% range; 0: off)")
    p.add_argument("--reuse", action="store_true", help="draw only what is not in --out yet")
    p.add_argument("--out", required=True, help="folder for images (.npz) and results.json")
    args = p.parse_args()

    out = Path(args.out)
    settings = [parse_setting(s) for s in args.setting]
    (train, held_out), boxcox = real_split(args.store, args.valid_fraction, args.split_seed)
    if args.n > len(train[0]):
        raise SystemExit(f"--n {args.n}: the store has only {len(train[0])} training images "
                         "for the real-to-real scale")
    attrs = load_image_set(args.store).attrs
    print(f"flux realism on {machine('cpu')}: {args.n} images per seed set {args.seed_sets}; "
          f"held out: {len(held_out[0])} of {len(train[0]) + len(held_out[0])} images of "
          f"{args.store}; zero pixels: {np.mean(held_out[0] == 0):.2f}")
    if args.pybdsf:
        held_out_bdsf = pybdsf_measures(held_out[0][:args.pybdsf], attrs, out / "pybdsf-cache")
    if args.floor_draws < 1:
        raise SystemExit(f"--floor-draws {args.floor_draws}: at least one draw is needed")
    floor = real_floor(train, held_out, args.n, args.floor_draws)
    median = {q: float(np.median(v)) for q, v in floor.items()}
    print(f"real floor, W1 of {args.n} training images to H over {args.floor_draws} draws: "
          + "; ".join(f"{q} {median[q]:.3g} ({np.percentile(v, 10):.3g}–{np.percentile(v, 90):.3g})"
                      for q, v in floor.items()))
    if args.floor_draws > 1:
        null = null_ratios(floor)
        print("per-set ratios of a model drawing exactly from the training images (floor draw over "
              "floor draw): " + "; ".join(
                  f"{q} median {np.median(r):.2f}, 90% {np.percentile(r, 90):.2f}, "
                  f"above 1.5 in {np.mean(r > 1.5):.0%}" for q, r in null.items()))
    rows, results, steady, pooled = [], [], [], {label: [] for label, _ in settings}
    for seed in args.seed_sets:
        rng, cache, drawn = np.random.default_rng(seed), {}, []
        real = real_draw(train, args.n, rng)
        scale = {q: w1(q, real, held_out, seed) for q in QUANTITIES}
        if args.pybdsf:
            real_bdsf = pybdsf_measures(real[0][:args.pybdsf], attrs, out / "pybdsf-cache")
            scale.update({q: compare(held_out_bdsf[q], v).wasserstein for q, v in real_bdsf.items()})
        rows.append({"setting": "real (train)", "seeds": seed,
                     **{f"W1 {q}": f"{d:.3g}" for q, d in scale.items()},
                     "zeros": f"{np.mean(real[0] == 0):.2f}", "img/s": "-"})
        for label, options in settings:
            npz = out / f"{label}-seed{seed}.npz"
            if args.reuse and npz.exists():
                with np.load(npz) as f:
                    images, peaks, seconds = f["images"], f["peaks"], float("nan")
            else:
                images, peaks, seconds = draw(options, args.n, seed, args.batch_size, boxcox, cache)
                with atomic_path(npz) as tmp, open(tmp, "wb") as f:
                    np.savez(f, images=images, peaks=peaks)
            d = {q: w1(q, (images, peaks), held_out, seed) for q in QUANTITIES}
            bdsf = {}
            if args.pybdsf:
                bdsf = pybdsf_measures(images[:args.pybdsf], attrs, out / "pybdsf-cache")
                d.update({q: compare(held_out_bdsf[q], v).wasserstein for q, v in bdsf.items()})
            ratio = {q: d[q] / scale[q] for q in d}
            results.append({"label": label, "options": options, "seed": seed, "seconds": seconds,
                            "w1": d, "real_w1": scale, "ratio": ratio,
                            "ratio_to_median_floor": {q: d[q] / median[q] for q in median},
                            "zero_fraction": float(np.mean(images == 0))})
            if args.bootstrap and drawn:
                results[-1]["bootstrap_minus_first"] = bootstrap_differences(
                    held_out, held_out_bdsf if args.pybdsf else {}, drawn[0],
                    ((images, peaks), bdsf), args.bootstrap, seed)
            drawn.append(((images, peaks), bdsf))
            pooled[label].append((images, peaks))
            rows.append({"setting": label, "seeds": seed,
                         **{f"W1 {q}": f"{d[q]:.3g} ({ratio[q]:.1f}×)" for q in d},
                         "zeros": f"{np.mean(images == 0):.2f}",
                         "img/s": f"{len(images) / seconds:.2f}" if seconds == seconds else "-"})
            steady.append({"setting": label, "seeds": seed,
                           **{f"W1 {q}": f"{d[q] / median[q]:.1f}×" for q in median}})
        print_table(rows[-1 - len(settings):], list(rows[0]))
    print()
    print("W1 to the held-out images (ratio to the real training images' W1 to them)")
    print_table(rows, list(rows[0]))
    print()
    print(f"W1 to the held-out images as a ratio to the real floor's median ({args.floor_draws} draws)")
    print_table(steady, list(steady[0]))
    whole = {q: w1(q, train, held_out, 0) for q in QUANTITIES}
    pooled_rows = [{"setting": f"all {len(train[0])} training images", "images": len(train[0]),
                    **{f"W1 {q}": f"{whole[q]:.3g}" for q in QUANTITIES}}]
    pooled_w1, pooled_boot = {}, {}
    for label, sets in pooled.items():
        images, peaks = (np.concatenate(v) for v in zip(*sets))
        pooled[label] = images, peaks
        pooled_w1[label] = {q: w1(q, (images, peaks), held_out, 0) for q in QUANTITIES}
        pooled_rows.append({"setting": label, "images": len(images),
                            **{f"W1 {q}": f"{d:.3g} ({d / whole[q]:.2f}×)"
                               for q, d in pooled_w1[label].items()}})
        if args.bootstrap and label != settings[0][0]:
            pooled_boot[label] = bootstrap_differences(
                held_out, {}, (pooled[settings[0][0]], {}), ((images, peaks), {}),
                args.bootstrap, 0)
    print()
    print("W1 to the held-out images, each setting's seed sets pooled (ratio to all the training "
          "images' W1 to them)")
    print_table(pooled_rows, list(pooled_rows[0]))
    first = {r["seed"]: r["w1"] for r in results if r["label"] == settings[0][0]}
    boot = [{"setting": f"{r['label']} − {settings[0][0]}", "seeds": r["seed"],
             **{f"ΔW1 {q}": f"{r['w1'][q] - first[r['seed']][q]:+.3g} [{lo:+.3g}, {hi:+.3g}]"
                for q, (lo, hi) in r["bootstrap_minus_first"].items()}}
            for r in results if "bootstrap_minus_first" in r]
    boot += [{"setting": f"{label} − {settings[0][0]}", "seeds": "pooled",
              **{f"ΔW1 {q}": f"{pooled_w1[label][q] - pooled_w1[settings[0][0]][q]:+.3g} "
                             f"[{lo:+.3g}, {hi:+.3g}]" for q, (lo, hi) in ranges.items()}}
             for label, ranges in pooled_boot.items()]
    if boot:
        print()
        print(f"W1 difference to the first setting ({args.bootstrap} bootstrap resamples, 5–95%)")
        columns = list(dict.fromkeys(c for r in boot for c in r))
        # a missing image quantity is one the two settings share; PyBDSF is not pooled
        blank = {c: "same values" if c.removeprefix("ΔW1 ") in QUANTITIES else "-"
                 for c in columns}
        print_table([{c: r.get(c, blank[c]) for c in columns} for r in boot], columns)
    write_json({"store": args.store, "n": args.n, "seed_sets": args.seed_sets,
                "held_out": len(held_out[0]), "pybdsf": args.pybdsf,
                "real_floor": {q: v.tolist() for q, v in floor.items()}, "results": results,
                "pooled": {"training_images_w1": whole, "w1": pooled_w1,
                           "bootstrap_minus_first": pooled_boot}},
               out / "results.json")
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()

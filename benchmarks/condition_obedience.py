"""Does a model conditioned on source properties obey its conditions? (issue 17)

Three checks, with sizes measured by PyBDSF (second moments of its Gaussian model of each image,
:mod:`radiogen.data.measure`; observed, beam-convolved FWHM) on generated and real images alike:

1. **Size asked for → size made.** n major axes log-uniform over the 5th–95th percentile of the
   training sizes, each with a peak flux drawn from the training sources nearest in size (as
   ``radiogen sample --condition major_axis=…`` does); Spearman ρ between asked and measured
   (goal ≥ 0.7), also with the image-moment measure the store was built with.
2. **Peak asked for → peak made.** The images are restored so that their maximum is the peak
   asked for (exact by construction); PyBDSF's model peak against it: median |ratio − 1| and the
   fraction within 5%.
3. **Only the peak given → the real size distribution.** Real sources split into halves A and B
   (n each); images conditioned on B's peaks alone; W1 of the major axis to A, against the real
   B-to-A distance (goal ≤ 1.5×). ``--baseline`` (e.g. ``first-flux``) runs the same for a
   peak-flux-only model beside it.

    python benchmarks/condition_obedience.py --model first-flux-size \\
        --store runs/mirabest-flux-size.h5 --n 200 --baseline first-flux --out runs/obedience

Prints the figures as a table, writes ``obedience.json`` and ``obedience.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import spearmanr, wasserstein_distance

from _bench import machine, print_table
from radiogen import api
from radiogen.data.measure import measure_images
from radiogen.data.store import read_store
from radiogen.evaluation.figures import save
from radiogen.evaluation.report import write_json
from radiogen.evaluation.sources import PyBDSFSettings, run_pybdsf


def pybdsf_sizes(images01: np.ndarray, settings: PyBDSFSettings, cache: Path, label: str):
    """(major axis in arcsec, PyBDSF model peak relative to the image maximum) per image."""
    fits = run_pybdsf(images01, settings, cache_dir=cache / label, desc=f"PyBDSF {label}")
    models = np.where(fits.fitted[:, None, None], fits.model_images, 0.0)
    m = measure_images(images01, settings.pixel_scale_arcsec, 1.0, models=models)
    peak = np.where(fits.fitted, models.max(axis=(1, 2)) / images01.max(axis=(1, 2)), np.nan)
    return m["major_axis"], peak


def moment_sizes(images01: np.ndarray, peaks: np.ndarray, scale: float) -> np.ndarray:
    """Major axis (arcsec) by image moments over the islands, as the store was measured."""
    return measure_images(images01 * peaks[:, None, None], scale, 1.0)["major_axis"]


def w1(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(wasserstein_distance(a[np.isfinite(a)], b[np.isfinite(b)]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a model conditioned on peak_flux and major_axis")
    p.add_argument("--store", required=True, type=Path,
                   help="the real images with their conditions (`radiogen data conditions`)")
    p.add_argument("--baseline", help="a peak-flux model to run check 3 beside (e.g. first-flux)")
    p.add_argument("--n", type=int, default=200, help="images per check and per real half")
    p.add_argument("--guidance", type=float, default=None,
                   help="ω for the property model (default: its sampling default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = api.load_model(args.model)
    names = [c.name for c in model.conditions]
    if not {"peak_flux", "major_axis"} <= set(names):
        raise SystemExit(f"{args.model}: conditioned on {names}, not peak_flux and major_axis")
    store = read_store(args.store)
    settings = PyBDSFSettings.for_images(store.attrs)
    scale = settings.pixel_scale_arcsec
    cache = args.out / "pybdsf-cache"
    rng = np.random.default_rng(args.seed)

    # 1 and 2: sizes asked for, peaks drawn from the nearest training sources
    table = np.asarray(model.meta["condition_table"]["major_axis"], np.float64)
    lo, hi = np.nanpercentile(table, [5, 95])
    asked = np.exp(rng.uniform(np.log(lo), np.log(hi), args.n))
    peaks = api.draw_free_conditions(model, {"major_axis": asked}, ["peak_flux"], args.n,
                                     args.seed)["peak_flux"]
    omega = api.sampling_defaults(model)["guidance"] if args.guidance is None else args.guidance
    images = api.sample(model, args.n, conditions={"major_axis": asked, "peak_flux": peaks},
                        seed=args.seed, guidance=omega)
    np.save(args.out / "sizes-asked.npy", images)
    size_bdsf, peak_ratio = pybdsf_sizes(images, settings, cache, "sizes-asked")
    size_moments = moment_sizes(images, peaks, scale)
    ok = np.isfinite(size_bdsf)
    rho_bdsf = spearmanr(asked[ok], size_bdsf[ok]).statistic
    rho_moments = spearmanr(asked, size_moments, nan_policy="omit").statistic
    good = np.isfinite(peak_ratio)
    peak_error = np.abs(peak_ratio[good] - 1)

    # 3: only the peak given, against real halves A and B
    order = rng.permutation(len(store))
    half = min(args.n, len(store) // 2)
    a, b = np.sort(order[:half]), np.sort(order[half:2 * half])
    real_a, _ = pybdsf_sizes(store.images[a], settings, cache, "real-A")
    real_b, _ = pybdsf_sizes(store.images[b], settings, cache, "real-B")
    peaks_b = np.asarray(store.columns["peak_flux"], np.float64)[b]
    rows = [{"images": "real B", "n": half, "W1 to real A (″)": f"{w1(real_b, real_a):.2f}",
             "ratio": "1.00", "median size (″)": f"{np.nanmedian(real_b):.1f}"}]
    results = {"real_B_to_A": w1(real_b, real_a)}
    models = [("model", model)] + ([("baseline", api.load_model(args.baseline))]
                                   if args.baseline else [])
    sizes_free = {}
    for label, m in models:
        if m.conditions:
            gen = api.sample(m, half, conditions={"peak_flux": peaks_b}, seed=args.seed + 10 ** 6,
                             guidance=omega)
        else:
            gen = api.sample(m, half, scaled_flux=api.flux_context(m, peaks_b),
                             seed=args.seed + 10 ** 6)
        np.save(args.out / f"peak-only-{label}.npy", gen)
        w = omega if m.conditions else api.sampling_defaults(m)["guidance"]
        sizes_free[label], _ = pybdsf_sizes(gen, settings, cache, f"peak-only-{label}")
        d = w1(sizes_free[label], real_a)
        results[f"{label}_to_A"] = d
        rows.append({"images": f"{m.name} (ω = {w}), peak only", "n": half,
                     "W1 to real A (″)": f"{d:.2f}",
                     "ratio": f"{d / results['real_B_to_A']:.2f}",
                     "median size (″)": f"{np.nanmedian(sizes_free[label]):.1f}"})

    print(f"{model.name} (ω = {omega}) on {machine('cpu')}; {args.n} images per check, PyBDSF "
          f"sizes ({time.perf_counter() - t0:.0f} s)")
    print(f"1. size asked for ({lo:.1f}–{hi:.1f}″, log-uniform) vs measured: Spearman ρ = "
          f"{rho_bdsf:.3f} (PyBDSF, {int(ok.sum())} fitted), {rho_moments:.3f} (image moments)")
    print(f"2. peak: image maximum = asked (by construction); PyBDSF model peak / asked: "
          f"median |ratio − 1| = {np.median(peak_error):.3f}, within 5%: "
          f"{np.mean(peak_error <= 0.05):.2f}")
    print("3. only the peak given: size distribution against real half A")
    print_table(rows, list(rows[0]))
    results.update(model=model.name, guidance=omega, n=args.n, size_range=[lo, hi],
                   spearman_pybdsf=rho_bdsf,
                   spearman_moments=rho_moments, n_fitted=int(ok.sum()),
                   peak_median_error=float(np.median(peak_error)),
                   peak_within_5pc=float(np.mean(peak_error <= 0.05)))
    write_json(results, args.out / "obedience.json")
    _figure(args.out / "obedience.png", asked, size_bdsf, size_moments, real_a, real_b, sizes_free)
    print(f"written to {args.out}/ (obedience.json, obedience.png)")


def _figure(path, asked, size_bdsf, size_moments, real_a, real_b, sizes_free) -> None:
    fig = Figure(figsize=(10, 4.2))
    left, right = fig.subplots(1, 2)
    left.loglog(asked, size_bdsf, ".", label="PyBDSF")
    left.loglog(asked, size_moments, ".", alpha=0.5, label="image moments")
    span = [asked.min(), asked.max()]
    left.plot(span, span, "k--", lw=1, label="asked = made")
    left.set(xlabel="major axis asked for (″)", ylabel="major axis measured (″)",
             title="1. size conditioning")
    left.legend()
    bins = np.geomspace(3, 200, 30)
    for label, values in [("real A", real_a), ("real B", real_b), *sizes_free.items()]:
        right.hist(values[np.isfinite(values)], bins, histtype="step", label=label, density=True)
    right.set(xscale="log", xlabel="major axis (″, PyBDSF)", title="3. only the peak given")
    right.legend()
    fig.tight_layout()
    save(fig, path)


if __name__ == "__main__":
    main()

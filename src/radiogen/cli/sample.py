"""``radiogen sample``: generate images with a trained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from radiogen.cli import CommandError
from radiogen.cli.checks import COUNT, POSITIVE, SEED, check_output_folder, guidance, number

# The API's defaults, repeated here so that --help does not import torch (tested to agree).
DEFAULT_SAMPLER = {"class": "dpmpp-2m", "flux": "heun-sde", "properties": "dpmpp-2m"}
DEFAULT_STEPS = {"class": 10, "flux": 13, "properties": 15}
DEFAULT_CHURN = {"flux": 4.0}
DEFAULT_GUIDANCE_INTERVAL = {"class": (0.28, 5.42)}
DEFAULT_BACKGROUND_CLIP = {"class": 0.01}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sample", help="generate radio-galaxy images with a trained model",
        description="Generate images by solving the probability-flow ODE on the Karras noise "
                    "levels (Eq. 25) with classifier-free guidance: by default DPM-Solver++(2M) "
                    "with 10 evaluations, guided only for 0.28 < σ ≤ 5.42, for class models "
                    "(13 network passes per image, as good as the paper's Heun, Algorithm 1, "
                    "with 98 on the bundled model; see the README); for peak-flux models EDM's "
                    "stochastic sampler (Algorithm 2, S_churn 4, 13 noise levels, 25 "
                    "evaluations), whose fresh noise brings the noise background closer to real "
                    "cut-outs, unless the model file records another default (the bundled "
                    "first-flux: DPM-Solver++(2M), 25 evaluations); or Heun, Euler or iPNDM; a "
                    "consistency-tuned model (experimental) samples in 1-4 evaluations with the "
                    "consistency sampler. Writes FITS "
                    "(a cube, or one file per image), a PNG grid of the first 64 images, and "
                    "optionally .npy / HDF5 files into --out.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None,
                     help="bundled model name (see `radiogen models`); default first-class")
    src.add_argument("--checkpoint", help="a model file, checkpoint folder or run folder")
    p.add_argument("--class", dest="classes", nargs="+", metavar="CLASS",
                   help="class(es) for a class-conditioned model, by name (FRI FRII Compact Bent) "
                        "or index; -n images of each")
    p.add_argument("--peak-flux", nargs="+", type=POSITIVE, metavar="JY",
                   help="peak flux(es) in Jy/beam for a flux-conditioned model, -n images of "
                        "each; without it the fluxes are drawn from the training distribution "
                        "(paper Section 6.1)")
    p.add_argument("--condition", action="append", metavar="NAME=VALUE[,VALUE…]",
                   help="for a model conditioned on source properties (`radiogen models` lists "
                        "them): a value with or without its unit, e.g. --condition "
                        "peak_flux=50mJy/beam --condition major_axis=30arcsec; several values "
                        "separated by commas give -n images each; properties not given are "
                        "left free (a peak flux not given is drawn from the training sources "
                        "nearest to what is given, to restore Jy/beam)")
    p.add_argument("--ra", type=number(0, 360), default=None,
                   help="RA (deg) of the image centre in the WCS of flux-model FITS (default 180)")
    p.add_argument("--dec", type=number(-90, 90), default=None,
                   help="Dec (deg) of the image centre (default 45)")
    p.add_argument("-n", "--num", type=COUNT, default=16,
                   help="images per class or per peak flux (default %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--guidance", "-w", type=guidance, default=None, metavar="OMEGA",
                   help="guidance strength ω (default: 0.75 for class models, 0.1 for flux "
                        "models, as in the paper, except for classes that a class model's file "
                        "guides otherwise: the bundled first-class guides Bent with 0.3; 1 for "
                        "models conditioned on several source properties; 0 for a consistency "
                        "model distilled from a guided teacher); class models also take ω per "
                        "class, CLASS=ω items with at most one bare ω for the rest, e.g. "
                        "'Bent=0.5' or '0.75,Bent=0.3'")
    p.add_argument("--steps", type=COUNT, default=None,
                   help=f"number of noise levels N (Eq. 25; default {DEFAULT_STEPS['class']} for "
                        f"class models, {DEFAULT_STEPS['flux']} for peak-flux models, "
                        f"{DEFAULT_STEPS['properties']} for models of several source properties, "
                        "2 for the consistency sampler, unless the model file records its "
                        "own: `radiogen models export --steps`); Heun and heun-sde make 2N − 1 "
                        "network evaluations per image, the other samplers N")
    p.add_argument("--sampler", default=None,
                   help="ODE solver: heun (paper Algorithm 1), euler, dpmpp-2m (DPM-Solver++(2M)) "
                        f"or ipndm (default {DEFAULT_SAMPLER['class']} for class models and "
                        "models of several source properties); heun-sde, EDM's stochastic "
                        f"sampler (with --churn; default {DEFAULT_SAMPLER['flux']} for peak-flux "
                        "models); consistency for a consistency-tuned model (its default); a "
                        "model file may record its own default (`radiogen models export "
                        "--sampler`)")
    p.add_argument("--churn", type=number(0), default=None, metavar="S_CHURN",
                   help="heun-sde only: noise added back before each step for 0.05 ≤ σ ≤ 50, "
                        "raising σ by the factor 1 + min(S_CHURN/N, √2 − 1) (Karras et al. "
                        f"2022, Algorithm 2; default {DEFAULT_CHURN['flux']:g} for peak-flux "
                        "models with their default sampler, else 0: Heun, unless the model "
                        "file records its own)")
    p.add_argument("--guidance-interval", type=number(0, allow_inf=True), nargs=2,
                   metavar=("SIGMA_LO", "SIGMA_HI"),
                   help="guide only for SIGMA_LO < σ ≤ SIGMA_HI, conditional model elsewhere "
                        "(Kynkäänniemi et al. 2024; default for class models: "
                        f"{' '.join(map(str, DEFAULT_GUIDANCE_INTERVAL['class']))}, for flux "
                        "models every σ; `0 inf` guides at every σ, as the paper does)")
    p.add_argument("--background-clip", type=number(0, 1), default=None,
                   metavar="T",
                   help="set scaled pixels below T to 0 and stretch [T, 1] back to [0, 1], as the "
                        "FIRST images were clipped at 3σ by their authors (default: "
                        f"{DEFAULT_BACKGROUND_CLIP['class']} for class models, whose real "
                        "backgrounds are exactly 0; 0, off, for flux models)")
    p.add_argument("--guide-model", metavar="MODEL",
                   help="autoguidance (Karras et al. 2024): guide away from this weaker model of "
                        "the same data and context (bundled name, model file or run folder), "
                        "with strength --autoguidance, inside the guidance interval (default: "
                        "the guide the model file records, if any; no bundled model records one)")
    p.add_argument("--autoguidance", type=number(0), default=None, metavar="OMEGA_A",
                   help="autoguidance strength ω_a: D + ω_a·(D − D_guide) (default 1 with "
                        "--guide-model, else the model file's; added to classifier-free "
                        "guidance, -w 0 for autoguidance alone; 0 turns it off)")
    p.add_argument("--guide-classifier", metavar="FILE",
                   help="classifier guidance (Dhariwal & Nichol 2021) by this noise-aware "
                        "classifier (`radiogen classifier train-guide`), with scale "
                        "--classifier-scale, inside the guidance interval")
    p.add_argument("--classifier-scale", type=number(0), default=None, metavar="S",
                   help="classifier guidance scale s: D + s·σ²·∇ log p(c | x; σ) (default 1 with "
                        "--guide-classifier)")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed of the first image; image k uses seed+k (default %(default)s)")
    p.add_argument("--batch-size", type=COUNT, default=None,
                   help="images per network batch (default 8 on a CPU, where small batches run "
                        "fastest, 64 on a GPU)")
    p.add_argument("--format", choices=["cube", "files"], default="cube",
                   help="FITS layout for class models: one cube (default), or one file per image "
                        "(flux models always write one file per image, in Jy/beam)")
    p.add_argument("--npy", action="store_true", help="also write samples.npy (N, H, W)")
    p.add_argument("--h5", action="store_true", help="also write samples.h5 (a radiogen store)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="network precision (default auto: bf16 on a GPU and on CPUs where it "
                        "samples faster, those with native bf16 (AVX512-BF16 or AMX), else fp32; "
                        "bf16 changes images by about 0.0005 RMS, fp32 gives the images of "
                        "api.sample and radiogen map to 1e-5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from radiogen import api, outputs
    check_output_folder(args.out)
    try:
        model = api.load_model(args.checkpoint or args.model or api.DEFAULT_MODEL, args.device)
    except api.NoModelError as err:
        raise CommandError(str(err)) from None
    defaults = api.sampling_defaults(model)
    omega, class_omegas = _guidance(api, model, args.guidance, defaults)
    out = Path(args.out)
    args.sampler = defaults["sampler"] if args.sampler is None else args.sampler
    args.steps = defaults["steps"] if args.steps is None else args.steps
    try:
        api.check_sampler(model, args.sampler)
    except ValueError as err:
        raise CommandError(f"--sampler: {err}") from None
    min_steps = 1 if args.sampler == "consistency" else 2
    if args.steps < min_steps:
        raise CommandError(f"--steps must be at least {min_steps}")
    if args.churn and args.sampler != "heun-sde":
        raise CommandError(f"--churn needs --sampler heun-sde (not {args.sampler})")
    args.churn = api.default_churn(model, args.sampler) if args.churn is None else args.churn
    if args.background_clip is not None and args.background_clip >= 1:
        raise CommandError("--background-clip must be below 1 (it is a fraction of the peak)")
    interval = tuple(args.guidance_interval or defaults["guidance_interval"])
    if not 0 <= interval[0] <= interval[1]:
        raise CommandError("--guidance-interval needs 0 ≤ SIGMA_LO ≤ SIGMA_HI")
    kw = dict(guidance=class_omegas or omega, steps=args.steps, sampler=args.sampler,
              batch_size=args.batch_size, precision=args.precision, guidance_interval=interval,
              progress=not args.no_progress, churn=args.churn,
              background_clip=(defaults["background_clip"] if args.background_clip is None
                               else args.background_clip),
              **_extra_guidance(args, api, model))
    if model.conditions:
        return _sample_properties(args, model, omega, kw)
    if args.condition:
        raise CommandError(f"--condition: model {model.name!r} is not conditioned on source "
                           "properties; " + ("give --class" if model.kind == "class"
                                             else "give --peak-flux"))
    if model.kind == "class":
        if not args.classes:
            raise CommandError(f"this model is class-conditioned: give --class, one of {model.class_names}")
        indices = [api.class_index(model, c) for c in args.classes]
        labels = np.repeat(indices, args.num)
        images = api.sample(model, len(labels), class_label=labels, seed=args.seed, **kw)
        names = [model.class_names[i] for i in labels]
    else:
        return _sample_flux(args, model, omega, kw)

    pixel_scale = model.meta.get("pixel_scale_arcsec")
    cards = outputs.provenance_cards(model.name, model.kind, args.sampler, args.steps, omega,
                                     args.seed, pixel_scale, model.meta.get("beam_arcsec"),
                                     kw["guidance_interval"], model.distilled_guidance,
                                     kw["background_clip"], churn=args.churn,
                                     class_guidance=class_omegas)
    cards += [_precision_card(model, kw["precision"])]
    cards += outputs.guidance_cards(**{k: kw[k] for k in _GUIDE_KEYS if k in kw})
    written = []
    if args.format == "cube":
        written.append(outputs.write_fits_cube(out / "samples.fits", images, cards, names))
    else:
        written += outputs.write_fits_images(out, images, cards, names, first_seed=args.seed)
    written.append(outputs.write_png_grid(out / "samples.png", images, titles=names))
    if args.npy:
        written.append(outputs.write_npy(out / "samples.npy", images))
    if args.h5:
        written.append(outputs.write_h5(out / "samples.h5", images, {"labels": labels},
                                        {"kind": "class", "class_names": model.class_names,
                                         "pixel_scale_arcsec": pixel_scale or 0.0}))
    summary = {"model": model.name, "n": len(images), "guidance": class_omegas or omega,
               "steps": args.steps, "sampler": args.sampler, "seed": args.seed,
               "background_clip": kw["background_clip"]}
    print(f"radiogen sample: wrote {len(images)} images to {out}/ "
          f"({', '.join(sorted({p.suffix for p in written}))}); {json.dumps(summary)}")
    return 0


def _guidance(api, model, strengths, defaults) -> tuple[float, dict | None]:
    """(ω, class name → ω): the ω shared by most classes and, for a class model whose classes
    are guided with different strengths, each class's (None where all agree)."""
    if isinstance(strengths, dict):
        if model.kind != "class":
            raise CommandError(f"--guidance CLASS=ω: model {model.name!r} has no classes; give one ω")
        rest = strengths.pop(None, None)
        strengths = {**(dict.fromkeys(model.class_names, rest) if rest is not None else {}),
                     **strengths}
    if model.kind != "class":
        return (defaults["guidance"] if strengths is None else strengths), None
    try:
        omegas = api.class_guidance(model, strengths)
    except ValueError as err:
        raise CommandError(f"--guidance: {err}") from None
    values = list(omegas.values())
    omega = max(values, key=values.count)
    return omega, (omegas if len(set(values)) > 1 else None)


_GUIDE_KEYS = ("guide_model", "autoguidance", "guide_classifier", "classifier_scale")


def _extra_guidance(args, api, model) -> dict:
    """api.sample's keywords for autoguidance (the model file's recorded guide unless given)
    and classifier guidance."""
    kw = {}
    guide, omega_a = api.autoguidance_setting(model, args.guide_model, args.autoguidance)
    if omega_a and guide is None:
        raise CommandError(f"--autoguidance needs --guide-model (model {model.name!r} records "
                           "no guide)")
    if args.classifier_scale is not None and not args.guide_classifier:
        raise CommandError("--classifier-scale needs --guide-classifier")
    kw.update(guide_model=guide, autoguidance=omega_a)
    if args.guide_classifier:
        kw.update(guide_classifier=args.guide_classifier,
                  classifier_scale=1.0 if args.classifier_scale is None else args.classifier_scale)
    return kw


#: How far outside the training range of peak fluxes --peak-flux may lie (a factor): beyond it
#: the model has seen nothing alike, and the value is more likely in the wrong unit.
FLUX_MARGIN = 10.0


def _check_flux_range(trained: tuple[float, float], fluxes) -> None:
    lo, hi = trained[0] / FLUX_MARGIN, trained[1] * FLUX_MARGIN
    for flux in fluxes:
        if not lo <= flux <= hi:
            raise CommandError(
                f"--peak-flux {flux:g}: outside {lo:.3g}–{hi:.3g} Jy/beam, {FLUX_MARGIN:g}× "
                f"beyond "
                f"the peak fluxes this model was trained on ({trained[0]:.3g}–{trained[1]:.3g} "
                f"Jy/beam); the option is in Jy/beam ({flux:g} mJy/beam is {flux / 1e3:g})")


def _sample_flux(args, model, omega: float, kw: dict) -> int:
    """Flux-conditioned sampling: images restored to Jy/beam, one FITS file each."""
    from radiogen import api, outputs
    if args.classes:
        raise CommandError("this model is flux-conditioned: give --peak-flux, not --class")
    if args.peak_flux:
        _check_flux_range(api.flux_range(model), args.peak_flux)
        scaled = np.repeat(api.flux_context(model, args.peak_flux), args.num)
    else:
        scaled = api.draw_flux_context(model, args.num, args.seed)
    peaks = api.peak_flux_of(model, scaled)
    images = api.sample(model, len(scaled), scaled_flux=scaled, seed=args.seed, **kw)
    meta, out = model.meta, Path(args.out)
    sclflux = [{"SCLFLUX": (float(z), "Box-Cox scaled peak flux (Eq. 12)")} for z in scaled]
    written = _write_jy_per_beam(args, model, images, peaks, _cards(args, model, omega, kw),
                                 sclflux)
    titles = [f"{1e3 * p:.3g} mJy/b" for p in peaks]
    written.append(outputs.write_png_grid(out / "samples.png", images, titles=titles))
    if args.npy:
        written.append(outputs.write_npy(out / "samples.npy", images))
    if args.h5:
        written.append(outputs.write_h5(out / "samples.h5", images, {
            "peak_flux": peaks, "scaled_flux": scaled}, {"kind": "flux",
            **{f"boxcox_{k}": v for k, v in meta["boxcox"].items()},
            "pixel_scale_arcsec": meta.get("pixel_scale_arcsec") or 0.0}))
    print(f"radiogen sample: wrote {len(images)} images in Jy/beam to {out}/ (peak flux "
          f"{1e3 * peaks.min():.3g}–{1e3 * peaks.max():.3g} mJy/beam, ω={omega}, {args.sampler}, "
          f"{args.steps} steps)")
    return 0


def _cards(args, model, omega: float, kw: dict) -> list[tuple]:
    """The provenance and guidance cards every image of a run gets."""
    from radiogen import outputs
    cards = outputs.provenance_cards(model.name, model.kind, args.sampler, args.steps, omega,
                                     args.seed, guidance_interval=kw["guidance_interval"],
                                     distilled_guidance=model.distilled_guidance,
                                     background_clip=kw["background_clip"], churn=args.churn)
    return (cards + [_precision_card(model, kw["precision"])]
            + outputs.guidance_cards(**{k: kw[k] for k in _GUIDE_KEYS if k in kw}))


def _precision_card(model, precision: str) -> tuple:
    """The network precision the images were drawn in (``auto`` resolved on this machine)."""
    import torch

    from radiogen.precision import resolve_precision
    dtype = resolve_precision(precision, model.device, job="sample")
    name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    return ("PRECISN", name, "network precision (bf16: ~0.0005 RMS from fp32)")


def _write_jy_per_beam(args, model, images, peaks, cards, image_cards) -> list[Path]:
    """One FITS file per image in Jy/beam (peak = ``peaks[k]``), with beam, frequency and a
    SIN WCS at --ra/--dec, the run's ``cards`` and image k's ``image_cards[k]``."""
    from radiogen.data.fits_io import DEFAULT_DEC_DEG, DEFAULT_RA_DEG, Beam, write_physical_fits
    meta, out = model.meta, Path(args.out)
    beam = Beam(*meta["beam_arcsec"]) if meta.get("beam_arcsec") else None
    written = []
    for k, (image, peak) in enumerate(zip(images, peaks)):
        extra = {c[0]: tuple(c[1:]) for c in cards}
        extra.update(image_cards[k], SEED=(args.seed + k, "noise seed of this image"))
        written.append(write_physical_fits(
            out / f"sample_{k:05d}.fits", image, float(peak),
            pixel_scale_arcsec=meta.get("pixel_scale_arcsec") or 1.5, beam=beam,
            frequency_hz=meta.get("frequency_hz") or 0.0,
            ra_deg=DEFAULT_RA_DEG if args.ra is None else args.ra,
            dec_deg=DEFAULT_DEC_DEG if args.dec is None else args.dec, extra=extra))
    return written


def _asked_conditions(args, model) -> tuple[dict, int]:
    """{column: values in its unit, one per image} from --condition (and --peak-flux), and the
    number of images: -n for every value of the longest list."""
    from radiogen.data.conditions import parse_condition, to_column_unit
    columns = {c.name: c for c in model.conditions}
    try:
        items = [parse_condition(item) for item in args.condition or []]
    except ValueError as err:
        raise CommandError(f"--condition: {err}") from None
    if args.peak_flux:
        items.append(("peak_flux", [str(v) for v in args.peak_flux]))
    asked = {}
    for name, values in items:
        if name not in columns:
            raise CommandError(f"--condition {name}: model {model.name!r} has no such condition; "
                               f"its conditions are {', '.join(columns)}")
        if name in asked:
            raise CommandError(f"--condition {name} given twice")
        try:
            asked[name] = [to_column_unit(columns[name], v) for v in values]
        except ValueError as err:
            raise CommandError(f"--condition {err}") from None
    groups = max([len(v) for v in asked.values()], default=1)
    for name, values in asked.items():
        if len(values) not in (1, groups):
            raise CommandError(f"--condition {name}: {len(values)} values, but another condition "
                               f"has {groups}; give 1 or {groups}")
    n = groups * args.num
    return {k: np.repeat(np.broadcast_to(v, (groups,)), args.num) for k, v in asked.items()}, n


def _sample_properties(args, model, omega: float, kw: dict) -> int:
    """Sampling a model conditioned on source properties: FITS per image with every condition
    in its header, in Jy/beam where the model has the peak flux."""
    from radiogen import api, outputs
    if args.classes:
        raise CommandError(f"model {model.name!r} is conditioned on source properties: give "
                           "--condition, not --class")
    asked, n = _asked_conditions(args, model)
    values, drawn = dict(asked), ()
    try:
        if model.kind == "flux" and "peak_flux" not in asked:
            values.update(api.draw_free_conditions(model, asked, ["peak_flux"], n, args.seed))
            drawn = ("peak_flux",)
        images = api.sample(model, n, conditions=values, seed=args.seed, **kw)
    except ValueError as err:
        raise CommandError(str(err)) from None
    meta, out = model.meta, Path(args.out)
    cards = _cards(args, model, omega, kw)
    per_image = outputs.condition_cards(model.conditions, values, drawn) if values else None
    if model.kind == "flux":
        written = _write_jy_per_beam(args, model, images, values["peak_flux"], cards, per_image)
    else:
        written = outputs.write_fits_images(out, images, cards, first_seed=args.seed,
                                            image_cards=per_image)
    titles = [", ".join(f"{v[k]:.3g}" for v in values.values()) for k in range(n)]
    written.append(outputs.write_png_grid(out / "samples.png", images, titles=titles))
    if args.npy:
        written.append(outputs.write_npy(out / "samples.npy", images))
    if args.h5:
        columns, attrs = dict(values), {"kind": model.kind, "conditions": meta["conditions"],
                                        "pixel_scale_arcsec": meta.get("pixel_scale_arcsec") or 0.0}
        if model.kind == "flux":   # what `radiogen evaluate` reads of a flux set
            peak = next(c for c in model.conditions if c.name == "peak_flux")
            columns["scaled_flux"] = peak.forward(values["peak_flux"]).astype(np.float32)
            attrs.update(boxcox_lambda=peak.lam, boxcox_mean=peak.mean, boxcox_std=peak.std)
        written.append(outputs.write_h5(out / "samples.h5", images, columns, attrs))
    given = ", ".join(f"{k} ({'drawn' if k in drawn else 'asked'})" for k in values) or "none"
    print(f"radiogen sample: wrote {n} images to {out}/ (conditions: {given}; ω={omega}, "
          f"{args.steps} steps)")
    return 0

"""``radiogen map``: a synthetic survey map filled with generated galaxies, or (``--check``)
PyBDSF's recovery of a map's sources against its truth catalogue."""

from __future__ import annotations

import json

from radiogen.cli import CommandError
from radiogen.cli.checks import (COUNT, POSITIVE, SEED, beam, check_output_file, integer,
                                 number)

# The defaults of radiogen.maps.survey, repeated so that --help does not import torch (tested
# to agree).
DEFAULT_MAP_MODEL, DEFAULT_RMS, DEFAULT_TILE = "first-flux", 1.5e-4, 1024
POWERLAW_DEFAULTS = {"alpha": 1.6, "smin": 1e-3, "smax": 1.0}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "map", help="make a synthetic survey map (FITS + truth catalogue), or check one",
        description="Place generated radio galaxies on a SIN-projected sky map (FITS in "
                    "Jy/beam with WCS, beam and frequency) over noise correlated by the beam, "
                    "or over a real mosaic; write a truth catalogue (NAME.truth.fits) and a "
                    "quick look (NAME.png). Sources come from a catalogue (--catalog) or are "
                    "drawn (--n-sources). With --check MAP, run PyBDSF on a map and compare "
                    "its sources with the truth catalogue: completeness, flux recovery, "
                    "false detections and offsets, as a table, JSON and plot.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None,
                     help=f"bundled model name (default {DEFAULT_MAP_MODEL})")
    src.add_argument("--checkpoint", help="a model file, checkpoint folder or run folder")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--catalog", metavar="FILE",
                      help="sources from a FITS table or CSV: RA, Dec (deg), peak flux (Jy/beam; "
                           "units of a FITS table honoured, e.g. LoTSS's mJy/beam), optional "
                           "class, position angle, model; names matched in any case (RA, DEC, "
                           "Peak_flux, PA, class, model, ...)")
    what.add_argument("--n-sources", type=integer(0), metavar="N",
                      help="draw N sources at uniform random positions")
    what.add_argument("--check", metavar="MAP",
                      help="run PyBDSF on MAP and compare with its truth catalogue instead")
    p.add_argument("--counts", choices=["model", "powerlaw"], default=None,
                   help="peak fluxes of drawn sources: the flux model's training histogram "
                        "(model; default for flux models) or dN/dS ∝ S^-alpha (powerlaw; default "
                        "for class models)")
    p.add_argument("--alpha", type=number(0), default=POWERLAW_DEFAULTS["alpha"],
                   help="power-law index α of dN/dS ∝ S^-α (default %(default)s)")
    p.add_argument("--smin", type=POSITIVE, default=POWERLAW_DEFAULTS["smin"], metavar="JY",
                   help="lowest peak flux of the power law, Jy/beam (default %(default)s)")
    p.add_argument("--smax", type=POSITIVE, default=POWERLAW_DEFAULTS["smax"], metavar="JY",
                   help="highest peak flux of the power law, Jy/beam (default %(default)s)")
    p.add_argument("--size", type=integer(8, 200_000), nargs="+", default=[2048],
                   metavar="PIX", help="map size: N (square) or NX NY pixels (default 2048; a "
                        "--background mosaic sets its own)")
    p.add_argument("--pixel-scale", type=POSITIVE, default=None, metavar="ARCSEC",
                   help="pixel side in arcsec (default: the model's, 1.8 for the FIRST models)")
    p.add_argument("--centre", type=number(-360, 360), nargs=2, default=[180.0, 45.0],
                   metavar=("RA", "DEC"), help="map centre in degrees (default 180 45)")
    p.add_argument("--rms", type=number(0), default=DEFAULT_RMS, metavar="JY",
                   help="noise rms in Jy/beam, correlated by the beam (default %(default)s, "
                        "FIRST's; 0 for none)")
    p.add_argument("--beam", type=number(-360, 360), nargs="+", metavar="X",
                   help="map beam BMAJ [BMIN [BPA]] (arcsec, arcsec, deg; default the model's)")
    p.add_argument("--frequency", type=POSITIVE, default=None, metavar="HZ",
                   help="observing frequency (default the model's, else 1.4e9)")
    p.add_argument("--background", metavar="MOSAIC",
                   help="add the sources to this real mosaic (FITS, Jy/beam) instead of noise; "
                        "its grid, WCS, beam and frequency are the map's")
    p.add_argument("--tile", type=integer(64), default=DEFAULT_TILE, metavar="PIX",
                   help="tile side in pixels: bounds memory, does not change the map "
                        "(default %(default)s)")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed: source i is generated from seed+i; positions, fluxes and noise "
                        "from seeds derived from it (default %(default)s)")
    p.add_argument("--batch-size", type=COUNT, default=None,
                   help="images per network batch (default 8 on a CPU, 64 on a GPU)")
    p.add_argument("--steps", type=integer(2), default=None,
                   help="noise levels N of the sampler (default the model's: 10 for class models "
                        "(DPM-Solver++(2M)), 13 for peak-flux models (heun-sde, S_churn 4), or what the "
                        "model file records (the bundled first-flux: 25, DPM-Solver++(2M)))")
    p.add_argument("--guidance", "-w", type=number(0), default=None,
                   help="guidance strength ω (default the model's: 0.75 class, 0.1 flux)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--out", metavar="FILE",
                   help="the map file (.fits) to write; with --check, the JSON file (default "
                        "MAP.check.json, the plot beside it as .png)")
    p.add_argument("--truth", metavar="FILE",
                   help="with --check: the truth catalogue (default MAP.truth.fits)")
    p.add_argument("--match-radius", type=POSITIVE, default=None, metavar="ARCSEC",
                   help="with --check: largest offset of a match (default 2 × the beam's BMAJ)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _size(values) -> tuple[int, int]:
    if len(values) > 2:
        raise CommandError(f"--size takes N or NX NY, got {len(values)} values")
    nx, ny = (values[0], values[0]) if len(values) == 1 else values
    return ny, nx


def run(args) -> int:
    if args.check:
        return _check(args)
    from radiogen import api
    stray = [o for o, v in (("--truth", args.truth), ("--match-radius", args.match_radius))
             if v is not None]
    if stray:
        raise CommandError(f"{' and '.join(stray)} belong to --check MAP")
    if args.catalog is None and args.n_sources is None:
        raise CommandError("give --catalog FILE or --n-sources N (or --check MAP)")
    if not args.out:
        raise CommandError("--out FILE is required: the map to write")
    if not args.out.endswith(".fits"):
        raise CommandError(f"--out {args.out}: the map file name must end in .fits")
    check_output_file(args.out)
    if args.smin >= args.smax:
        raise CommandError(f"--smin {args.smin:g} must be below --smax {args.smax:g}")
    if not -90 <= args.centre[1] <= 90:
        raise CommandError(f"--centre: Dec {args.centre[1]:g} is outside -90…90")
    try:
        result = api.make_map(
            args.out, args.checkpoint or args.model or DEFAULT_MAP_MODEL, catalog=args.catalog,
            n_sources=args.n_sources, counts=args.counts, alpha=args.alpha, smin=args.smin,
            smax=args.smax, size=_size(args.size), pixel_scale=args.pixel_scale,
            centre=(args.centre[0] % 360, args.centre[1]), rms=args.rms,
            beam=beam(args.beam), frequency_hz=args.frequency, background=args.background,
            tile=args.tile, seed=args.seed, batch_size=args.batch_size, steps=args.steps,
            guidance=args.guidance, device=args.device, progress=not args.no_progress)
    except api.NoModelError as err:
        raise CommandError(str(err)) from None
    ny, nx = result.shape
    print(f"radiogen map: wrote {result.map_path} ({nx}×{ny} px, {result.n_placed} sources"
          f"{f', {result.n_outside} outside the map' if result.n_outside else ''}), "
          f"{result.truth_path}, {result.preview_path} in {result.seconds:.1f} s "
          f"({result.sources_per_second:.2f} sources/s, "
          f"{result.megapixels_per_second:.2f} Mpx/s)")
    return 0


def _check(args) -> int:
    from radiogen.evaluation.map_recovery import check_map, format_table
    from radiogen.evaluation.sources import bdsf_available
    if not bdsf_available():
        raise CommandError("--check needs PyBDSF: pip install bdsf (or radiogen[eval])")
    if args.out:
        check_output_file(args.out)
    stats = check_map(args.check, args.truth, args.out, args.match_radius)
    print(format_table(stats))
    print(f"radiogen map: wrote {stats['json']} and {stats['figure']}; "
          + json.dumps({k: stats[k] for k in ("completeness", "false_detection_rate",
                                              "flux_ratio_median", "offset_median_arcsec")}))
    return 0

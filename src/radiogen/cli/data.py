"""``radiogen data``: build HDF5 training stores from surveys (Section 3) and describe them.
Parsing only; the work is done by :mod:`radiogen.data.pipeline` and :mod:`radiogen.data.first`."""

from __future__ import annotations

import argparse
from pathlib import Path

from radiogen.cli import CommandError
from radiogen.cli.checks import COUNT, POSITIVE, beam, check_output_file, integer, number

__all__ = ["register"]

def _selection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cut-outs and selection cuts (Section 3.1, Table 1)")
    g.add_argument("--size", type=integer(8, 4096), default=80,
                   help="cut-out side in pixels (default 80: 120″ at 1.5″/px)")
    g.add_argument("--pixel-scale", type=POSITIVE, metavar="ARCSEC",
                   help="required pixel scale; inputs with another are skipped "
                        "(default: that of the first input)")
    g.add_argument("--beam", type=number(), nargs="+", metavar="ARCSEC",
                   help="beam FWHM (BMAJ [BMIN [BPA°]]) for inputs whose headers have none")
    g.add_argument("--frequency", type=POSITIVE, metavar="HZ",
                   help="observing frequency for inputs whose headers have none")
    g.add_argument("--snr-threshold", type=number(0), default=5.0,
                   help="keep images with S/N_σ ≥ this (Eq. 10; default 5)")
    g.add_argument("--tau-start", type=number(0), default=5.0,
                   help="initial τ of the source region x > x̃ + τσ (Eq. 9; default 5)")
    g.add_argument("--tau-step", type=POSITIVE, default=0.5,
                   help="step by which τ is lowered until a source region exists (default 0.5)")
    g.add_argument("--snr-on", choices=("minmax", "clipped", "raw"), default="minmax",
                   help="image S/N_σ is computed on: min-max scaled (default), negatives set "
                        "to 0, or as cut")
    g.add_argument("--edge-fraction", type=number(0, 1, exclusive_minimum=True), default=0.8,
                   help="drop images whose border pixels exceed this × the maximum (default 0.8)")
    g.add_argument("--cut-order", nargs=4, metavar="CUT",
                   default=["broken", "snr", "edge", "incomplete"],
                   help="order the cuts are applied and counted in (default: Table 1's, "
                        "broken snr edge incomplete)")
    g.add_argument("--keep-noise", action="store_true",
                   help="keep the negative half of the background noise, scaled like the "
                        "clipped image (for training a model whose samples are clipped at 0 "
                        "as they are clamped; default: negatives set to 0, Section 3.1)")
    r = p.add_argument_group("run")
    r.add_argument("--out", required=True, type=Path, help="the HDF5 store to write")
    r.add_argument("--overwrite", action="store_true", help="replace an existing store")
    r.add_argument("--workers", type=COUNT, help="worker processes (default: the CPU count)")
    r.add_argument("--chunk-size", type=COUNT, default=500,
                   help="sources or files per unit of work (the unit of resuming; default 500)")
    r.add_argument("--no-resume", action="store_true",
                   help="discard the finished units of an interrupted run instead of reusing them")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")


def _settings(args, columns=None):
    from radiogen.data.cutouts import CatalogColumns
    from radiogen.data.pipeline import PipelineSettings
    from radiogen.data.selection import SelectionSettings

    selection = SelectionSettings(snr_threshold=args.snr_threshold, tau_start=args.tau_start,
                                  tau_step=args.tau_step, edge_fraction=args.edge_fraction,
                                  order=tuple(args.cut_order), snr_on=args.snr_on)
    return PipelineSettings(size=args.size, pixel_scale_arcsec=args.pixel_scale,
                            beam_arcsec=beam(args.beam),
                            frequency_hz=args.frequency, columns=columns or CatalogColumns(),
                            selection=selection, chunk_size=args.chunk_size,
                            keep_noise=args.keep_noise)


def _run_options(args) -> dict:
    check_output_file(args.out)
    return dict(workers=args.workers, progress=not args.no_progress, resume=not args.no_resume,
                overwrite=args.overwrite)


def _finish(result) -> int:
    print(result.report.format())
    print(f"{result.n_images} images written to {result.path} "
          f"(Box-Cox λ = {result.boxcox.lam:.4g})")
    return 0


def _lotss(args) -> int:
    from radiogen.data.cutouts import CatalogColumns
    from radiogen.data.pipeline import build_lotss_store

    columns = CatalogColumns(args.name_column, args.ra_column, args.dec_column,
                             args.id_ra_column, args.id_dec_column, args.mosaic_id_column)
    return _finish(build_lotss_store(args.mosaics, args.catalog, args.out,
                                     _settings(args, columns), **_run_options(args)))


def _cutouts(args) -> int:
    from radiogen.data.pipeline import build_cutout_store

    return _finish(build_cutout_store(args.fits_dir, args.out, _settings(args),
                                      **_run_options(args)))


def _first(args) -> int:
    from radiogen.data.first import write_first_store
    from radiogen.data.store import describe_store, read_store

    check_output_file(args.out)
    path = write_first_store(args.out, args.split, args.zip, overwrite=args.overwrite)
    print(describe_store(read_store(path)))
    print(f"written to {path}")
    return 0


def _conditions(args) -> int:
    import numpy as np

    from radiogen.data.conditions import parse_condition
    from radiogen.data.properties import (catalog_properties, measure_store, set_conditions)
    from radiogen.data.store import Store, describe_store, read_store, write_store

    check_output_file(args.out)
    if args.out.exists() and not args.overwrite:
        raise CommandError(f"{args.out} exists; give --overwrite to replace it")
    store = read_store(args.store)
    added = {}
    if args.measure:
        added.update(measure_store(store, args.measure, progress=not args.no_progress))
    if args.columns:
        if not args.catalog:
            raise CommandError("--columns takes columns of a catalog: give --catalog")
        added.update(catalog_properties(store, args.catalog, args.columns, args.name_column))
    store = Store(store.images, {**store.columns, **added}, store.attrs)
    transforms = {}
    for item in args.transform or []:
        name, values = parse_condition(item)
        transforms[name] = values[0]
    store = set_conditions(store, args.conditions, transforms)
    write_store(args.out, store.images, store.columns, store.attrs)
    print(describe_store(read_store(args.out)))
    for name, values in added.items():
        print(f"{name}: measured for {int(np.isfinite(values).sum())} of {len(values)} images")
    print(f"written to {args.out}")
    return 0


def _info(args) -> int:
    from radiogen.data.store import describe_store, read_store

    print(describe_store(read_store(args.store), bins=args.bins))
    return 0


def register(subparsers) -> None:
    """Add ``radiogen data`` and its subcommands."""
    data = subparsers.add_parser(
        "data", help="build training stores from survey data, and describe them",
        description="Build HDF5 training stores (Section 3): cut-outs from survey mosaics and a "
                    "catalog, or from a folder of FITS cut-outs, with the selection cuts of "
                    "Table 1 and the flux preprocessing of Eq. 11-12; or the FIRST dataset.")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser(
        "lotss", help="cut-outs of catalog sources from survey mosaics (LoTSS-style)",
        description="Cut 80×80 px stamps around every catalog source (its optical counterpart "
                    "where the catalog has one) from the mosaic that holds it, apply the "
                    "selection cuts (broken, S/N_σ, edge pixels, incomplete coverage), set "
                    "negative pixels to 0, min-max scale keeping the peak flux in Jy/beam, "
                    "Box-Cox the peak flux, and write one HDF5 store. Prints the Table-1 report. "
                    "An interrupted run resumes when started again with the same arguments.")
    p.add_argument("--mosaics", required=True, type=Path, help="folder of FITS mosaics")
    p.add_argument("--catalog", required=True, type=Path, help="source catalog (FITS or CSV)")
    c = p.add_argument_group("catalog columns")
    c.add_argument("--name-column", default="Source_Name", help="source name (default Source_Name)")
    c.add_argument("--ra-column", default="RA", help="radio RA in degrees (default RA)")
    c.add_argument("--dec-column", default="DEC", help="radio Dec in degrees (default DEC)")
    c.add_argument("--id-ra-column", default="ID_RA",
                   help="optical counterpart RA, used where present (default ID_RA)")
    c.add_argument("--id-dec-column", default="ID_DEC",
                   help="optical counterpart Dec, used where present (default ID_DEC)")
    c.add_argument("--mosaic-id-column", default="Mosaic_ID",
                   help="mosaic of each source, matched to file or folder names; "
                        "without it sources are matched by WCS (default Mosaic_ID)")
    _selection_args(p)
    p.set_defaults(func=_lotss)

    p = sub.add_parser(
        "cutouts", help="re-centred crops of a folder of per-source FITS cut-outs",
        description="Crop every FITS file of a folder (e.g. survey cut-out server downloads, "
                    "in Jy/beam) to the central size×size pixels, then apply the same selection "
                    "cuts and preprocessing as 'radiogen data lotss'. Files that cannot be used "
                    "(not FITS, no data, a cube, no celestial WCS, not in Jy/beam, smaller than "
                    "--size, no finite pixel) are skipped and named with their reasons in the "
                    "report; if none is usable, the error names each.")
    p.add_argument("--fits-dir", required=True, type=Path, help="folder of FITS cut-outs")
    _selection_args(p)
    p.set_defaults(func=_cutouts)

    p = sub.add_parser(
        "first", help="the FIRST labelled dataset (Griese et al. 2023) as a class store",
        description="Write one split of the FIRST dataset (80×80 central crops, min-max scaled, "
                    "class labels FRI/FRII/Compact/Bent, 1.8″ pixels, 5″ beam) as an HDF5 store.")
    p.add_argument("--out", required=True, type=Path, help="the HDF5 store to write")
    p.add_argument("--split", default="train", choices=("train", "valid", "test", "all"),
                   help="published split (default train)")
    p.add_argument("--zip", type=Path, help="the galaxy_data.zip archive (default: bundled)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.set_defaults(func=_first)

    p = sub.add_parser(
        "conditions", help="choose the source properties a model is conditioned on",
        description="Write a copy of a store whose conditioning columns are --conditions, each "
                    "with its transform fitted and recorded (peak_flux and total_flux: Box-Cox "
                    "then standardisation, Eq. 12; sizes and S/N: log then standardisation; "
                    "others: standardisation). Columns come from the store (peak_flux, "
                    "snr_sigma), from the images (--measure: total_flux, major_axis, "
                    "minor_axis, position_angle from second moments over the islands of "
                    "emission, or of PyBDSF's Gaussian model), or from a catalog matched by "
                    "source name (--catalog, --columns Peak_flux Maj …, converted to Jy/beam, "
                    "Jy, arcsec, deg). Sources without a value are left unconditioned on that "
                    "column in training.")
    p.add_argument("store", type=Path, help="an HDF5 store written by radiogen")
    p.add_argument("--out", required=True, type=Path, help="the HDF5 store to write")
    p.add_argument("--conditions", nargs="+", required=True, metavar="COLUMN",
                   help="the conditioning columns, e.g. peak_flux major_axis")
    p.add_argument("--measure", choices=("moments", "pybdsf"),
                   help="measure integrated flux, axes and position angle from the images")
    p.add_argument("--catalog", type=Path, help="source catalog (FITS, CSV, ECSV, VOTable)")
    p.add_argument("--columns", nargs="+", metavar="COLUMN",
                   help="catalog columns to take (Peak_flux, Total_flux, Maj, Min, PA become "
                        "peak_flux, total_flux, major_axis, minor_axis, position_angle; "
                        "others keep their name in lower case)")
    p.add_argument("--name-column", default="Source_Name",
                   help="catalog column matched to the store's source names (default "
                        "Source_Name)")
    p.add_argument("--transform", nargs="+", metavar="COLUMN=KIND",
                   help="override a column's transform: boxcox, log or standard")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_conditions)

    p = sub.add_parser(
        "info", help="describe a store: counts, selection report, flux histograms",
        description="Print a store's size, kind, pixel scale and beam, its selection report "
                    "(Table 1), class counts or Box-Cox parameters, and histograms of the peak "
                    "flux (Jy/beam) and scaled flux.")
    p.add_argument("store", type=Path, help="an HDF5 store written by radiogen")
    p.add_argument("--bins", type=integer(1, 1000), default=20, help="histogram bins (default 20)")
    p.set_defaults(func=_info)

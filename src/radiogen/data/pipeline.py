"""The survey data pipeline of Section 3.1: cut-outs → selection cuts (Table 1) → preprocessing
(negative pixels → 0, min-max scaling of Eq. 11 keeping the peak f̂ and minimum in Jy/beam,
Box-Cox of Eq. 12 on f̂, standardised) → one HDF5 store (:mod:`radiogen.data.store`).

The work is cut into units (a chunk of the sources of one mosaic, or a chunk of FITS files) run by
:mod:`radiogen.data.workunits` in worker processes; finished units are kept in ``OUT.parts/`` so an
interrupted run resumes, and the folder goes once the store is written. Units are assembled in
their own order, so the store does not depend on the number of processes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from radiogen.data.cutouts import (CatalogColumns, assign_sources, cutout, cutout_from_file,
                                   list_fits_files, read_catalog, scan_mosaic)
from radiogen.data.fits_io import Beam, FitsReadError, read_fits_image
from radiogen.data.flux import BoxCox, boxcox_forward, fit_boxcox
from radiogen.data.selection import (CUTS, SelectionReport, SelectionSettings, first_failed_cut,
                                     judge)
from radiogen.data.store import write_store
from radiogen.data.transforms import clip_negative, minmax_scale
from radiogen.data.workunits import input_key, run_units

__all__ = ["PipelineSettings", "RunResult", "build_lotss_store", "build_cutout_store"]

_SCALE_TOLERANCE = 0.01  # relative difference of pixel scales or beams counted as the same


@dataclass(frozen=True)
class PipelineSettings:
    """Settings of a pipeline run (stored with the data).

    Attributes
    ----------
    size : int
        Cut-out side in pixels (80: 120″ at 1.5″/px).
    pixel_scale_arcsec : float or None
        Required pixel scale; inputs with another are skipped. None: that of the first input.
    beam_arcsec : (bmaj, bmin, bpa) or None
        Beam FWHM in arcsec and position angle in degrees for inputs whose headers lack one.
    frequency_hz : float or None
        Observing frequency for inputs whose headers lack one.
    columns : CatalogColumns
        Catalog column names.
    selection : SelectionSettings
        Thresholds and order of the selection cuts.
    chunk_size : int
        Sources (or files) per unit of work.
    keep_noise : bool
        Keep the negative half of the background noise (for training only): each image is scaled
        with the minimum and maximum of its clipped version, as Eq. (11) does, but the scaling is
        applied to the unclipped image, so the background stays symmetric noise around 0 and the
        positive pixels are those of the paper's store. A model trained on it learns Gaussian
        noise instead of its half-rectified version, and its samples get the negatives set to 0
        when they are clamped to [0, 1] (Section 4.3). False: the paper's preprocessing.
    """

    size: int = 80
    pixel_scale_arcsec: float | None = None
    beam_arcsec: tuple[float, float, float] | None = None
    frequency_hz: float | None = None
    columns: CatalogColumns = CatalogColumns()
    selection: SelectionSettings = SelectionSettings()
    chunk_size: int = 500
    keep_noise: bool = False

    def __post_init__(self):
        if self.size < 8:
            raise ValueError(f"cut-out size must be at least 8 pixels, got {self.size}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk size must be ≥ 1, got {self.chunk_size}")

    def to_dict(self) -> dict:
        return {**asdict(self), "selection": self.selection.to_dict()}


@dataclass
class RunResult:
    """What a run produced: the store, its selection report and Box-Cox parameters."""

    path: Path
    report: SelectionReport
    n_images: int
    boxcox: BoxCox
    attrs: dict = field(default_factory=dict)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _SCALE_TOLERANCE * abs(b)


#: What is kept of every selected image, and its type.
_KEPT = {"images": np.float32, "peak_flux": np.float64, "min_flux": np.float64,
         "snr_sigma": np.float64, "names": str, "ra": np.float64, "dec": np.float64,
         "source_file": str, "optical": bool}


class _Collector:
    """Judges cut-outs (Table 1), preprocesses the selected ones and records skipped files."""

    def __init__(self, settings: PipelineSettings):
        self.selection = settings.selection
        self.keep_noise = settings.keep_noise
        self.codes, self.fails = [], dict.fromkeys(CUTS, 0)
        self.kept = defaultdict(list)
        self.skipped, self.remarks = [], defaultdict(list)

    def add(self, cut, name, ra, dec, source_file, optical=False):
        j = judge(cut.data, cut.inside, self.selection)
        code = first_failed_cut(j, self.selection.order)
        self.codes.append(code)
        for c in CUTS:
            self.fails[c] += bool(getattr(j, c))
        if code < len(self.selection.order):
            return
        x = clip_negative(cut.data)                                     # Section 3.1
        scaled = minmax_scale(cut.data if self.keep_noise else x, reference=x)  # Eq. (11)
        row = {"images": scaled, "peak_flux": x.max(), "min_flux": x.min(),
               "snr_sigma": j.snr_sigma, "names": name, "ra": ra, "dec": dec,
               "source_file": source_file, "optical": optical}
        for key, value in row.items():
            self.kept[key].append(value)

    def skip(self, path, reason: str):
        self.skipped.append([Path(path).name, reason])

    def result(self, size: int) -> dict:
        kept = {k: np.asarray(self.kept[k], dtype=t) for k, t in _KEPT.items()}
        kept["images"] = kept["images"].reshape(-1, size, size)
        meta = {"fails": self.fails, "skipped": self.skipped, "remarks": dict(self.remarks)}
        return {**kept, "codes": np.asarray(self.codes, np.int8), "meta": np.array(json.dumps(meta))}


def _mosaic_unit(unit: dict, settings: PipelineSettings, out: _Collector) -> None:
    try:
        with read_fits_image(unit["mosaic"], memmap=True) as image:
            for i in range(len(unit["x"])):
                out.add(cutout(image, unit["x"][i], unit["y"][i], settings.size), unit["names"][i],
                        unit["ra"][i], unit["dec"][i], Path(unit["mosaic"]).name, unit["optical"][i])
    except (FitsReadError, OSError, ValueError) as err:  # a mosaic gone bad since it was scanned
        out.skip(unit["mosaic"], f"{err} ({len(unit['x'])} sources not cut out)")


def _file_unit(unit: dict, settings: PipelineSettings, out: _Collector) -> None:
    for path in unit["files"]:
        try:
            cut, image = cutout_from_file(path, settings.size)
        except (FitsReadError, OSError, ValueError) as err:
            out.skip(path, str(err).removeprefix(f"{path}: "))
            continue
        if not _close(image.pixel_scale_arcsec, unit["pixel_scale"]):
            out.skip(path, f"pixel scale {image.pixel_scale_arcsec:.3g}″ differs from "
                           f"{unit['pixel_scale']:.3g}″")
            continue
        for fix in image.fixes:
            out.remarks[f"header: {fix}"].append(Path(path).name)
        beam = image.beam
        if beam and unit["beam"] and not _close(beam.bmaj_arcsec, unit["beam"][0]):
            out.remarks[f"beam {beam.bmaj_arcsec:.3g}″, not the stored {unit['beam'][0]:.3g}″"
                        ].append(Path(path).name)
        ny, nx = image.data.shape
        ra, dec = image.wcs.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
        out.add(cut, Path(path).stem, float(ra), float(dec), Path(path).name)


def _process_unit(unit: dict, settings: PipelineSettings) -> dict:
    """Worker: cut out, judge and preprocess the sources (or files) of one unit."""
    out = _Collector(settings)
    (_mosaic_unit if "mosaic" in unit else _file_unit)(unit, settings, out)
    return out.result(settings.size)


def _unit_key(unit: dict, settings: PipelineSettings) -> str:
    files = [unit["mosaic"]] if "mosaic" in unit else unit["files"]
    arrays = [unit[k] for k in ("x", "y", "names", "ra", "dec", "optical") if k in unit]
    return input_key(files, arrays, [settings.to_dict(), unit.get("pixel_scale"), unit.get("beam")])


def _run(units: list[dict], settings: PipelineSettings, parts_dir: Path, workers, progress):
    keys = [_unit_key(unit, settings) for unit in units]
    return run_units(partial(_process_unit, settings=settings), units, keys, parts_dir,
                     workers or os.cpu_count() or 1, progress, "cut-outs")


def _assemble(results: list[dict], order, skipped, notes):
    metas = [json.loads(str(r["meta"])) for r in results]
    codes = np.concatenate([r["codes"] for r in results])
    fails = {c: sum(m["fails"][c] for m in metas) for c in CUTS}
    skipped = list(skipped) + [s for m in metas for s in m["skipped"]]
    remarks = defaultdict(list)
    for m in metas:
        for remark, files in m["remarks"].items():
            remarks[remark] += files
    notes = list(notes) + [f"{remark} ({len(files)} files, e.g. {files[0]})"
                           for remark, files in remarks.items()]
    report = SelectionReport.from_codes(codes, fails, order, skipped, notes)
    kept = {k: np.concatenate([r[k] for r in results]) for k in _KEPT}
    return report, kept


def _prepare_output(out, overwrite: bool, resume: bool) -> tuple[Path, Path]:
    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: already exists (pass overwrite=True / --overwrite to replace it)")
    if out.is_dir():
        raise ValueError(f"{out}: is a folder, not a file name")
    parts_dir = out.with_name(out.name + ".parts")
    if not resume:
        shutil.rmtree(parts_dir, ignore_errors=True)
    return out, parts_dir


def _write(out: Path, parts_dir: Path, report, kept, geometry: dict, settings, inputs) -> RunResult:
    n = len(kept["images"])
    if n < 2:
        shutil.rmtree(parts_dir, ignore_errors=True)
        removed = ", ".join(f"{s} {r}" for s, r, _ in report.rows()[1:-1])
        raise ValueError(f"only {n} of {report.n_cutouts} cut-outs passed the selection cuts "
                         f"(removed: {removed}); at least 2 are needed to fit Box-Cox λ; "
                         "nothing written")
    boxcox = fit_boxcox(kept["peak_flux"])                                     # Eq. (12)
    columns = {k: kept[k] for k in ("names", "ra", "dec", "peak_flux", "min_flux", "snr_sigma",
                                    "source_file")}
    columns["scaled_flux"] = boxcox_forward(kept["peak_flux"], boxcox).astype(np.float32)
    if kept["optical"].any():
        columns["optical_centre"] = kept["optical"]
    beam = geometry["beam"] or Beam(np.nan, np.nan, np.nan)
    attrs = {"kind": "flux", "pixel_scale_arcsec": geometry["pixel_scale"],
             "beam_bmaj_arcsec": beam.bmaj_arcsec, "beam_bmin_arcsec": beam.bmin_arcsec,
             "beam_bpa_deg": beam.bpa_deg, "cutout_size": settings.size, **boxcox.to_attrs(),
             "settings": settings.to_dict(), "selection_report": report.to_dict(), "inputs": inputs}
    if geometry["frequency"] is not None:
        attrs["frequency_hz"] = geometry["frequency"]
    write_store(out, kept["images"], columns, attrs)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return RunResult(out, report, n, boxcox, attrs)


def _geometry(first, settings: PipelineSettings, notes: list) -> dict:
    beam = first.beam or (Beam(*settings.beam_arcsec) if settings.beam_arcsec else None)
    if beam is None:
        notes.append("no beam in the headers and none given: beam stored as NaN")
    return {"pixel_scale": settings.pixel_scale_arcsec or first.pixel_scale_arcsec, "beam": beam,
            "frequency": first.frequency_hz or settings.frequency_hz}


def _list_rejected(rejected) -> str:
    """Every rejected file with its own reason, on one line."""
    return "; ".join(f"{name}: {reason}" for name, reason in rejected)


def _chunks(n: int, size: int):
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def build_lotss_store(mosaics_dir, catalog, out, settings: PipelineSettings = PipelineSettings(),
                      *, workers: int | None = None, progress: bool = True, resume: bool = True,
                      overwrite: bool = False) -> RunResult:
    """Cut-outs of catalog sources from survey mosaics (the paper's LoTSS route) into a store.

    Parameters
    ----------
    mosaics_dir : path
        Folder of FITS mosaics (opened memory-mapped).
    catalog : path
        Source catalog (FITS or CSV) with the columns of ``settings.columns``.
    out : path
        The HDF5 store to write (atomically).
    settings : PipelineSettings
    workers : int, optional
        Worker processes (default: the CPU count); 1 runs in this process.
    progress : bool
        Show a progress bar.
    resume : bool
        Reuse the units an interrupted run with the same inputs and settings finished.
    overwrite : bool
        Replace an existing ``out``.

    Raises
    ------
    FileNotFoundError, ValueError
        A run that cannot start (missing folder or catalog, no usable mosaic, no source inside
        the mosaics); nothing is written then.
    """
    out, parts_dir = _prepare_output(out, overwrite, resume)
    sources = read_catalog(catalog, settings.columns)
    files = [p for p in list_fits_files(mosaics_dir) if p.resolve() != Path(catalog).resolve()]
    mosaics, skipped = [], []
    for path in files:
        try:
            info = scan_mosaic(path)
        except FitsReadError as err:
            skipped.append([path.name, err.problem])
            continue
        scale = settings.pixel_scale_arcsec or (mosaics[0].pixel_scale_arcsec if mosaics else None)
        if scale is not None and not _close(info.pixel_scale_arcsec, scale):
            skipped.append([path.name, f"pixel scale {info.pixel_scale_arcsec:.3g}″ differs from "
                                       f"{scale:.3g}″"])
            continue
        mosaics.append(info)
    if not mosaics:
        raise ValueError(f"{mosaics_dir}: no usable mosaic ({_list_rejected(skipped)})")
    index, x, y = assign_sources(sources, mosaics)
    if not (index >= 0).any():
        raise ValueError(f"none of the {len(sources)} sources of {catalog} lies inside the "
                         f"{len(mosaics)} mosaics of {mosaics_dir}")
    notes = [f"{int((index < 0).sum())} of {len(sources)} catalog sources lie outside the mosaics "
             "(not cut out)"]
    notes += [f"{m.path.name}: {fix}" for m in mosaics for fix in m.fixes]
    stored = mosaics[0].beam
    notes += [f"{m.path.name}: beam {m.beam.bmaj_arcsec:.3g}″, not the stored "
              f"{stored.bmaj_arcsec:.3g}″" for m in mosaics[1:]
              if m.beam and stored and not _close(m.beam.bmaj_arcsec, stored.bmaj_arcsec)]
    units = []
    for k, mosaic in enumerate(mosaics):
        rows = np.flatnonzero(index == k)
        rows = rows[np.lexsort((x[rows], y[rows]))]  # row order: sequential reads of the memory map
        for part in _chunks(len(rows), settings.chunk_size):
            r = rows[part]
            units.append({"index": len(units), "n": len(r), "mosaic": str(mosaic.path),
                          "x": x[r], "y": y[r], "names": sources.names[r], "ra": sources.ra[r],
                          "dec": sources.dec[r], "optical": sources.optical[r]})
    results = _run(units, settings, parts_dir, workers, progress)
    report, kept = _assemble(results, settings.selection.order, skipped, notes)
    inputs = {"mosaics": str(mosaics_dir), "catalog": str(catalog),
              "mosaic_files": [m.path.name for m in mosaics]}
    return _write(out, parts_dir, report, kept, _geometry(mosaics[0], settings, report.notes),
                  settings, inputs)


def build_cutout_store(fits_dir, out, settings: PipelineSettings = PipelineSettings(), *,
                       workers: int | None = None, progress: bool = True, resume: bool = True,
                       overwrite: bool = False) -> RunResult:
    """Re-centred crops of a folder of per-source FITS cut-outs (Jy/beam) into a store.

    The same selection and preprocessing as :func:`build_lotss_store`; unreadable files are
    skipped and named in the report. Parameters as there; raises ``ValueError`` when no file of
    the folder is readable (nothing is written then).
    """
    out, parts_dir = _prepare_output(out, overwrite, resume)
    files = list_fits_files(fits_dir)
    first, rejected = None, []
    for path in files:  # the first usable file sets the pixel scale, beam and frequency
        try:
            first = cutout_from_file(path, settings.size)[1]
            break
        except FitsReadError as err:
            rejected.append([path.name, err.problem])
    if first is None:
        raise ValueError(f"{fits_dir}: none of the {len(files)} FITS files is usable "
                         f"({_list_rejected(rejected)})")
    notes = []
    geometry = _geometry(first, settings, notes)
    beam = geometry["beam"]
    units = [{"index": i, "n": s.stop - s.start, "files": [str(p) for p in files[s]],
              "pixel_scale": geometry["pixel_scale"],
              "beam": None if beam is None else [beam.bmaj_arcsec, beam.bmin_arcsec, beam.bpa_deg]}
             for i, s in enumerate(_chunks(len(files), settings.chunk_size))]
    results = _run(units, settings, parts_dir, workers, progress)
    report, kept = _assemble(results, settings.selection.order, [], notes)
    if report.n_cutouts == 0:
        shutil.rmtree(parts_dir, ignore_errors=True)
        raise ValueError(f"{fits_dir}: none of the {len(files)} FITS files is usable "
                         f"({_list_rejected(report.skipped_files)})")
    inputs = {"fits_dir": str(fits_dir), "n_files": len(files)}
    return _write(out, parts_dir, report, kept, geometry, settings, inputs)

"""How well a source finder recovers a synthetic map's sources: PyBDSF run on the map, its
source list cross-matched with the truth catalogue (nearest neighbour on the sky, astropy's
``match_coordinates_sky``), and from the matches the completeness and flux recovery
(PyBDSF's total flux / the injected flux measured on the noiseless placement) in bins of
injected peak flux, the false-detection rate and the positional offsets.

A truth source counts as recovered when a PyBDSF source lies within the match radius of it.
PyBDSF often fits an extended source (FRI/FRII lobes, tens of arcsec across) with several
sources in one island, so detections are judged by island: an island is false when none of its
sources has a truth source within the radius, and the recovered flux of a truth source is the
total flux of the island of its nearest PyBDSF source, divided by the injected flux of every
truth source matched into that island (blends share it). PyBDSF runs in a
spawned process in a temporary folder (its logs and console output kept from the user), on the
map file itself, with its default background and rms maps.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FinderSettings", "find_sources", "recovery_statistics", "check_map",
           "format_table", "DETECTION_COLUMNS"]

#: PyBDSF source-list columns kept (degrees, Jy, Jy/beam; the island each source belongs to).
DETECTION_COLUMNS = ("RA", "DEC", "Total_flux", "Peak_flux", "Isl_id")


@dataclass(frozen=True)
class FinderSettings:
    """PyBDSF's island (``thresh_isl``) and peak (``thresh_pix``) thresholds in units of the
    local rms, its usual pair."""

    thresh_isl: float = 3.0
    thresh_pix: float = 5.0


def _run_pybdsf(map_path: str, settings: FinderSettings) -> dict:
    """In a worker: PyBDSF's source list of one map as column arrays (empty when it finds
    nothing)."""
    import bdsf
    from astropy.table import Table
    with tempfile.TemporaryDirectory(prefix="radiogen-map-check-") as workdir:
        local = os.path.join(workdir, "map.fits")
        shutil.copyfile(map_path, local)
        img = bdsf.process_image(local, outdir=workdir, quiet=True,
                                 thresh_isl=settings.thresh_isl, thresh_pix=settings.thresh_pix)
        catalog = os.path.join(workdir, "sources.fits")
        if not getattr(img, "nsrc", 0):
            return {c: np.zeros(0) for c in DETECTION_COLUMNS}
        img.write_catalog(outfile=catalog, format="fits", catalog_type="srl", clobber=True)
        table = Table.read(catalog)
        return {c: np.asarray(table[c], dtype=np.float64) for c in DETECTION_COLUMNS}


def find_sources(map_path, settings: FinderSettings | None = None) -> dict:
    """PyBDSF's sources in ``map_path``: column name → array (see :data:`DETECTION_COLUMNS`).

    Raises ImportError without PyBDSF, ValueError (naming the map) where PyBDSF fails."""
    from radiogen.evaluation.sources import _silence_worker, bdsf_available
    if not bdsf_available():
        raise ImportError("PyBDSF is not installed: pip install bdsf (or radiogen[eval])")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_silence_worker) as pool:
        try:
            return pool.submit(_run_pybdsf, str(Path(map_path).absolute()),
                               settings or FinderSettings()).result()
        except Exception as err:  # PyBDSF signals bad images with assorted errors
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            raise ValueError(f"{map_path}: PyBDSF failed ({type(err).__name__}: {first})") \
                from None


def _bin_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    lo, hi = float(np.min(values)), float(np.max(values))
    if hi <= lo:
        hi = lo * 1.01
    return np.geomspace(lo, hi * (1 + 1e-9), n_bins + 1)


def recovery_statistics(truth, detected: dict, radius_arcsec: float, n_bins: int = 8,
                        rms: float | None = None) -> dict:
    """Completeness, flux recovery, false detections and offsets of ``detected`` (PyBDSF
    columns) against ``truth`` (a truth catalogue table)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, match_coordinates_sky
    injected_peak = np.asarray(truth["peak_flux"], dtype=np.float64)
    injected_flux = np.asarray(truth["total_flux"], dtype=np.float64)
    true = SkyCoord(np.asarray(truth["ra"]) * u.deg, np.asarray(truth["dec"]) * u.deg)
    n_true, n_found = len(true), len(detected["RA"])
    # without island ids (another finder's list) each source is its own island
    island_ids = np.asarray(detected.get("Isl_id", np.arange(n_found)), dtype=np.int64)
    islands, island_of = np.unique(island_ids, return_inverse=True)
    radius = radius_arcsec * u.arcsec
    if n_found and n_true:
        found = SkyCoord(detected["RA"] * u.deg, detected["DEC"] * u.deg)
        nearest, separation, _ = match_coordinates_sky(true, found)
        recovered = separation < radius
        _, back, _ = match_coordinates_sky(found, true)
        # islands: sources of one island are the pieces of one detection
        n_islands = len(islands)
        false = np.ones(n_islands, bool)
        false[island_of[back < radius]] = False
        island_flux = np.bincount(island_of, weights=detected["Total_flux"], minlength=n_islands)
        matched = island_of[nearest[recovered]]
        injected_there = np.bincount(matched, weights=injected_flux[recovered],
                                     minlength=n_islands)
        ratio = island_flux[matched] / injected_there[matched]
        dra, ddec = true[recovered].spherical_offsets_to(found[nearest[recovered]])
        dra, ddec = dra.to_value(u.arcsec), ddec.to_value(u.arcsec)
    else:
        recovered, false = np.zeros(n_true, bool), np.ones(len(islands), bool)
        dra = ddec = ratio = np.zeros(0)
    edges = _bin_edges(injected_peak, n_bins) if n_true else np.zeros(0)
    rows = []
    ratio_all = np.full(n_true, np.nan)
    ratio_all[recovered] = ratio
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (injected_peak >= lo) & (injected_peak < hi)
        got = ratio_all[inside & recovered]
        rows.append({"peak_lo": lo, "peak_hi": hi, "n_injected": int(inside.sum()),
                     "n_recovered": int((inside & recovered).sum()),
                     "completeness": float((inside & recovered).sum() / inside.sum())
                     if inside.any() else float("nan"),
                     "flux_ratio_median": float(np.median(got)) if got.size else float("nan"),
                     "flux_ratio_p16": float(np.percentile(got, 16)) if got.size else float("nan"),
                     "flux_ratio_p84": float(np.percentile(got, 84)) if got.size else float("nan"),
                     **({"snr_lo": lo / rms, "snr_hi": hi / rms} if rms else {})})
    offsets = np.hypot(dra, ddec)
    return {"n_injected": n_true, "n_detected": n_found, "n_islands": len(islands),
            "n_recovered": int(recovered.sum()),
            "completeness": float(recovered.mean()) if n_true else float("nan"),
            "n_false": int(false.sum()),
            "false_detection_rate": float(false.mean()) if len(islands) else float("nan"),
            "match_radius_arcsec": float(radius_arcsec), "noise_rms": rms,
            "offset_median_arcsec": float(np.median(offsets)) if offsets.size else float("nan"),
            "offset_ra_mean_arcsec": float(np.mean(dra)) if dra.size else float("nan"),
            "offset_dec_mean_arcsec": float(np.mean(ddec)) if ddec.size else float("nan"),
            "flux_ratio_median": float(np.median(ratio)) if ratio.size else float("nan"),
            "bins": rows,
            "_points": {"injected_peak": injected_peak.tolist(),
                        "recovered": recovered.tolist(), "flux_ratio": ratio_all.tolist(),
                        "dra": dra.tolist(), "ddec": ddec.tolist()}}


def format_table(stats: dict) -> str:
    """The statistics as a plain-text table (mJy/beam)."""
    lines = [f"{'peak (mJy/beam)':>20} {'injected':>9} {'found':>6} {'complete':>9} "
             f"{'S_found/S_in (16-50-84%)':>26}"]
    for row in stats["bins"]:
        ratio = (f"{row['flux_ratio_p16']:.2f} {row['flux_ratio_median']:.2f} "
                 f"{row['flux_ratio_p84']:.2f}" if row["n_recovered"] else "-")
        complete = f"{row['completeness']:.2f}" if row["n_injected"] else "-"
        lines.append(f"{1e3 * row['peak_lo']:9.3g} – {1e3 * row['peak_hi']:<8.3g} "
                     f"{row['n_injected']:9d} {row['n_recovered']:6d} {complete:>9} {ratio:>26}")
    lines.append(f"completeness {stats['completeness']:.3f} ({stats['n_recovered']}/"
                 f"{stats['n_injected']}); {stats['n_detected']} PyBDSF sources in "
                 f"{stats['n_islands']} islands, {stats['n_false']} false (rate "
                 f"{stats['false_detection_rate']:.3f}); median "
                 f"offset {stats['offset_median_arcsec']:.2f}″ within "
                 f"{stats['match_radius_arcsec']:.3g}″")
    return "\n".join(lines)


def _strict(value):
    """NaN as null, so that the JSON is strict."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def check_map(map_path, truth_path=None, out=None, radius_arcsec: float | None = None,
              n_bins: int = 8, settings: FinderSettings | None = None) -> dict:
    """Run PyBDSF on a map made by :func:`radiogen.api.make_map`, compare with its truth
    catalogue (default ``NAME.truth.fits`` beside it) and write the statistics as JSON
    (``out``, default ``NAME.check.json``) with a plot beside it (``.png``); returns them.
    The match radius defaults to twice the beam's major axis."""
    import json

    from radiogen.atomic import atomic_path
    from radiogen.data.fits_io import read_fits_image
    from radiogen.evaluation.map_recovery_figure import recovery_figure
    from radiogen.maps.catalog import read_truth_catalog
    from radiogen.maps.make import truth_path as default_truth
    map_path = Path(map_path)
    with read_fits_image(map_path, memmap=True) as image:
        beam, header = image.beam, image.header
    if beam is None and radius_arcsec is None:
        raise ValueError(f"{map_path}: no beam (BMAJ/BMIN) in the header: give a match radius")
    radius = radius_arcsec or 2 * beam.bmaj_arcsec
    truth = read_truth_catalog(truth_path or default_truth(map_path))
    detected = find_sources(map_path, settings)
    rms = float(header.get("NOISERMS", -1))
    stats = recovery_statistics(truth, detected, radius, n_bins, rms if rms > 0 else None)
    stats.update(map=str(map_path), truth=str(truth_path or default_truth(map_path)),
                 finder={"name": "PyBDSF", **(settings or FinderSettings()).__dict__})
    name = map_path.name.removesuffix(".fits")
    out = Path(out) if out else map_path.with_name(f"{name}.check.json")
    points = stats.pop("_points")
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(_strict(stats), indent=2))
    stats["figure"] = str(recovery_figure(stats, points, out.with_suffix(".png")))
    stats["json"] = str(out)
    return stats

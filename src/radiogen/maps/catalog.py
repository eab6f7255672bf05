"""Catalogue input and output: source lists read from FITS tables or CSV files (columns
matched without regard to case, units honoured), and the truth catalogue of a map.

Columns recognised (first match wins, any case): RA — ``ra``, ``ra_deg``, ``raj2000``; Dec —
``dec``, ``dec_deg``, ``dej2000``, ``decj2000``; peak flux — ``peak_flux`` (LoTSS), ``peak``,
``s_peak``, ``fpeak``; optional position angle — ``pa``, ``position_angle``, ``dc_pa``; class —
``class``, ``label``, ``morphology``; model — ``model``; optional major axis (observed FWHM,
for models conditioned on it) — ``major_axis``, ``maj``, ``size``. A column with a unit is
converted (angles to degrees, sizes to arcsec, mJy/beam or mJy to Jy/beam); one without is read
as degrees, arcsec and Jy/beam.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from radiogen.atomic import atomic_path
from radiogen.maps.sources import SourceList

__all__ = ["CatalogError", "read_catalog", "write_truth_catalog", "read_truth_catalog",
           "COLUMNS"]

#: Accepted column names (lower case) by quantity.
COLUMNS = {"ra": ("ra", "ra_deg", "raj2000", "ra_j2000", "ra_icrs"),
           "dec": ("dec", "dec_deg", "dej2000", "decj2000", "dec_j2000", "de_icrs", "dec_icrs"),
           "peak_flux": ("peak_flux", "peak", "peak_flux_jy", "s_peak", "speak", "fpeak"),
           "pa": ("pa", "position_angle", "dc_pa"),
           "major_axis": ("major_axis", "maj", "size"),
           "label": ("class", "label", "morphology"),
           "model": ("model",)}
_FORMATS = {".csv": "ascii.csv", ".ecsv": "ascii.ecsv", ".fits": "fits", ".fit": "fits",
            ".fts": "fits", ".gz": "fits"}


class CatalogError(ValueError):
    """A catalogue that cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")


def _read_table(path: Path) -> Table:
    if not path.is_file():
        raise CatalogError(path, "no such file")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CatalogError(path, f"unknown catalogue format {path.suffix!r}: give a FITS table "
                                 "(.fits) or a CSV file (.csv, .ecsv)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", u.UnitsWarning)   # judged per column below
            return Table.read(path, format=fmt)
    except Exception as err:  # astropy raises many types for unreadable files
        raise CatalogError(path, f"not a readable {fmt} table ({err})") from None


def _find(table: Table, quantity: str) -> str | None:
    lowered = {name.lower(): name for name in table.colnames}
    return next((lowered[c] for c in COLUMNS[quantity] if c in lowered), None)


def _values(table: Table, name: str, target: u.UnitBase, path, fill=np.nan) -> np.ndarray:
    """A numeric column in ``target`` units (a column without a unit is taken as in them)."""
    column = table[name]
    unit = column.unit
    try:
        values = np.ma.filled(np.ma.asarray(column, dtype=float), fill)
    except (TypeError, ValueError):
        raise CatalogError(path, f"column {name!r} is not numeric") from None
    if unit is None or unit == u.dimensionless_unscaled:
        return values
    if target == u.Jy / u.beam and unit.is_equivalent(u.Jy):
        unit = unit * target / u.Jy                  # a peak flux given in Jy: per beam
    try:
        return (values * unit).to_value(target)
    except (u.UnitsError, ValueError):
        raise CatalogError(path, f"column {name!r} has unit {unit!s}, not convertible to "
                                 f"{target!s}") from None


def read_catalog(path) -> SourceList:
    """The sources of a FITS table or CSV file (see the module docstring for the columns)."""
    path = Path(path)
    table = _read_table(path)
    names = {q: _find(table, q) for q in COLUMNS}
    missing = [f"{q} ({' / '.join(COLUMNS[q][:3])})" for q in ("ra", "dec", "peak_flux")
               if names[q] is None]
    if missing:
        raise CatalogError(path, f"no column for {', '.join(missing)}; columns: "
                                 f"{', '.join(table.colnames)}")
    ra = _values(table, names["ra"], u.deg, path)
    dec = _values(table, names["dec"], u.deg, path)
    peak = _values(table, names["peak_flux"], u.Jy / u.beam, path)
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
    if bad.any():
        raise CatalogError(path, f"{int(bad.sum())} row(s) without a valid RA/Dec (first: row "
                                 f"{int(np.argmax(bad))})")
    bad = ~(np.isfinite(peak) & (peak > 0))
    if bad.any():
        raise CatalogError(path, f"{int(bad.sum())} row(s) whose peak flux "
                                 f"({names['peak_flux']}) is not a positive number (first: row "
                                 f"{int(np.argmax(bad))})")
    pa = _values(table, names["pa"], u.deg, path) if names["pa"] else None
    major = _values(table, names["major_axis"], u.arcsec, path) if names["major_axis"] else None

    def text(quantity):
        if not names[quantity]:
            return None
        column = table[names[quantity]]
        return np.array(["" if np.ma.is_masked(v) else str(v).strip() for v in column])

    return SourceList.of(ra % 360, dec, peak, pa, text("label"), text("model"), major)


#: Truth catalogue columns: name → (unit, description).
TRUTH_COLUMNS = {
    "source_id": (None, "index of the source in the map"),
    "ra": (u.deg, "right ascension (ICRS)"), "dec": (u.deg, "declination (ICRS)"),
    "x": (u.pix, "0-based pixel column of the source centre"),
    "y": (u.pix, "0-based pixel row of the source centre"),
    "peak_flux_requested": (u.Jy / u.beam, "peak flux asked for"),
    "peak_flux": (u.Jy / u.beam, "peak measured on the noiseless placement, inside the map"),
    "total_flux": (u.Jy, "integrated flux measured on the noiseless placement, inside the map"),
    "in_map_fraction": (None, "fraction of the placed flux inside the map (< 1: clipped)"),
    "pa": (u.deg, "position angle of the rotation, north through east"),
    "class": (None, "class of a class model's source"),
    "model": (None, "model that generated the source"),
    "seed": (None, "noise seed of the source's image"),
    "conditioned_peak": (u.Jy / u.beam, "peak flux a flux model was conditioned on"),
    "conditioned_major_axis": (u.arcsec, "major axis a property model was conditioned on"),
}


def write_truth_catalog(path, rows: dict, meta: dict) -> Path:
    """Write the truth catalogue (``rows``: column name → array, as in
    :data:`TRUTH_COLUMNS`) as a FITS table, atomically."""
    table = Table(meta={k.upper()[:8]: v for k, v in meta.items()})
    for name, (unit, description) in TRUTH_COLUMNS.items():
        table[name] = np.asarray(rows[name])
        table[name].unit, table[name].description = unit, description
    with atomic_path(path) as tmp:
        table.write(tmp, format="fits")
    return Path(path)


def read_truth_catalog(path) -> Table:
    """A truth catalogue written by :func:`write_truth_catalog`."""
    path = Path(path)
    table = _read_table(path)
    missing = [c for c in ("ra", "dec", "peak_flux", "total_flux") if c not in table.colnames]
    if missing:
        raise CatalogError(path, f"not a radiogen truth catalogue: no column {', '.join(missing)}")
    return table

"""Cut-outs (Section 3.1): square stamps of 80×80 px (120″ at 1.5″/px) around catalog sources in
survey mosaics, or re-centred crops of a folder of per-source FITS files.

A source is centred on its optical counterpart (``ID_RA``/``ID_DEC``) where the catalog has one,
else on its radio position (``RA``/``DEC``), and is cut from the mosaic its ``Mosaic_ID`` names,
else from the mosaic whose WCS places it farthest from the borders. Cut-outs use astropy's
``Cutout2D`` on memory-mapped mosaics; pixels beyond the mosaic are NaN and reported as
incomplete coverage, which the selection cuts (:mod:`radiogen.data.selection`) act on.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.nddata import Cutout2D
from astropy.table import Table
from astropy.units import UnitsWarning

from radiogen.data.fits_io import FitsImage, FitsReadError, read_fits_image

__all__ = ["CatalogColumns", "Sources", "Cutout", "MosaicInfo", "FITS_SUFFIXES", "read_catalog",
           "read_table", "mosaic_ids", "scan_mosaic", "assign_sources", "cutout", "cutout_from_file",
           "list_fits_files"]

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")


@dataclass(frozen=True)
class CatalogColumns:
    """Catalog column names (defaults: the LoTSS-DR2 optical cross-match catalog).

    ``id_ra``/``id_dec`` (optical counterpart) and ``mosaic_id`` are used when present.
    """

    name: str = "Source_Name"
    ra: str = "RA"
    dec: str = "DEC"
    id_ra: str = "ID_RA"
    id_dec: str = "ID_DEC"
    mosaic_id: str = "Mosaic_ID"


@dataclass
class Sources:
    """Catalog sources to cut out.

    Attributes
    ----------
    names : ndarray of str
    ra, dec : ndarray of float
        Cut-out centres in degrees: the optical counterpart where known, else the radio position.
    optical : ndarray of bool
        Whether the centre is the optical counterpart.
    mosaic_id : ndarray of str or None
        The catalog's mosaic of each source, when it has that column.
    """

    names: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    optical: np.ndarray
    mosaic_id: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)


def _float_column(table: Table, name: str, path) -> np.ndarray:
    try:
        values = np.ma.filled(np.ma.asarray(table[name], dtype=np.float64), np.nan)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: column {name!r} does not hold numbers (degrees)") from None
    return np.asarray(values, dtype=np.float64)


def read_table(path: str | os.PathLike) -> Table:
    """A catalog file as an astropy Table (FITS, CSV, ECSV or VOTable, by file name); a clear
    error names a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such catalog file")
    fmt = "ascii.csv" if path.suffix.lower() in (".csv", ".txt") else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnitsWarning)  # non-standard unit strings are harmless here
            return Table.read(path, format=fmt)
    except Exception as err:  # astropy raises many types for unreadable tables
        raise ValueError(f"{path}: not a readable catalog ({err})") from None


def read_catalog(path: str | os.PathLike, columns: CatalogColumns = CatalogColumns()) -> Sources:
    """Read a source catalog (FITS, CSV, ECSV or VOTable, by file name).

    Raises
    ------
    FileNotFoundError, ValueError
        The file is missing or unreadable, or lacks the RA/Dec columns; the message names the
        file, the missing column and the columns it has.
    """
    path = Path(path)
    table = read_table(path)
    for name in (columns.ra, columns.dec):
        if name not in table.colnames:
            raise ValueError(f"{path}: catalog has no column {name!r} (columns: "
                             f"{', '.join(table.colnames[:20])}); set the column names")
    ra, dec = _float_column(table, columns.ra, path), _float_column(table, columns.dec, path)
    optical = np.zeros(len(table), dtype=bool)
    if columns.id_ra in table.colnames and columns.id_dec in table.colnames:
        id_ra = _float_column(table, columns.id_ra, path)
        id_dec = _float_column(table, columns.id_dec, path)
        optical = np.isfinite(id_ra) & np.isfinite(id_dec)
        ra, dec = np.where(optical, id_ra, ra), np.where(optical, id_dec, dec)
    names = (np.array([str(n).strip() for n in table[columns.name]])
             if columns.name in table.colnames else np.array([f"row{i}" for i in range(len(table))]))
    mosaic = (np.array([str(m).strip() for m in table[columns.mosaic_id]])
              if columns.mosaic_id in table.colnames else None)
    return Sources(names, ra, dec, optical, mosaic)


def mosaic_ids(path: str | os.PathLike) -> set[str]:
    """The names a catalog's ``Mosaic_ID`` may give a mosaic file: its stem, the stem before
    ``-mosaic`` (``P205+55-mosaic.fits``) and its folder (``P205+55/mosaic-blanked.fits``)."""
    path = Path(path)
    stem = path.name
    for suffix in FITS_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return {stem, stem.split("-mosaic")[0], path.parent.name}


@dataclass
class MosaicInfo:
    """What the parent process knows of a mosaic: its geometry, units and beam (no pixels)."""

    path: Path
    shape: tuple[int, int]
    wcs: object
    pixel_scale_arcsec: float
    beam: object
    frequency_hz: float | None
    ids: set
    fixes: list


def scan_mosaic(path: str | os.PathLike) -> MosaicInfo:
    """Read a mosaic's header and WCS (memory-mapped, no pixels read); raises FitsReadError."""
    with read_fits_image(path, memmap=True) as image:
        return MosaicInfo(image.path, image.data.shape, image.wcs, image.pixel_scale_arcsec,
                          image.beam, image.frequency_hz, mosaic_ids(path), image.fixes)


def _margin(x, y, shape) -> np.ndarray:
    """Distance in pixels from (x, y) to the nearest border of the array (negative outside)."""
    ny, nx = shape
    return np.minimum.reduce([x + 0.5, nx - 0.5 - x, y + 0.5, ny - 0.5 - y])


def assign_sources(sources: Sources, mosaics: list[MosaicInfo]) -> tuple[np.ndarray, np.ndarray,
                                                                          np.ndarray]:
    """Match every source to a mosaic and its pixel position there.

    A source whose ``Mosaic_ID`` names one of the mosaics goes to it; otherwise to the mosaic
    whose WCS places it farthest inside. Sources with no mosaic containing their centre get -1.

    Returns
    -------
    index : ndarray of int
        Mosaic index per source, -1 when none contains its centre.
    x, y : ndarray of float
        Zero-based pixel position of the centre in that mosaic.
    """
    n = len(sources)
    best = np.full(n, -np.inf)
    index, x, y = np.full(n, -1), np.full(n, np.nan), np.full(n, np.nan)
    by_id = np.zeros(n, dtype=bool)
    for k, mosaic in enumerate(mosaics):
        px, py = mosaic.wcs.world_to_pixel_values(sources.ra, sources.dec)
        margin = np.where(np.isfinite(px) & np.isfinite(py), _margin(px, py, mosaic.shape), -np.inf)
        named = (np.isin(sources.mosaic_id, list(mosaic.ids)) if sources.mosaic_id is not None
                 else np.zeros(n, dtype=bool))
        take = np.where(by_id, named & (margin > best), named | (margin > best))
        index[take], x[take], y[take], best[take] = k, px[take], py[take], margin[take]
        by_id |= named
    index[~(best > 0)] = -1
    return index, x, y


@dataclass
class Cutout:
    """One cut-out in Jy/beam.

    Attributes
    ----------
    data : ndarray, float64, shape (size, size)
        Pixels in Jy/beam; NaN beyond the mosaic.
    inside : ndarray of bool or None
        Which pixels lie on the mosaic; None when all do (complete coverage).
    """

    data: np.ndarray
    inside: np.ndarray | None


def cutout(image: FitsImage, x: float, y: float, size: int) -> Cutout:
    """Cut ``size``×``size`` pixels centred on pixel (x, y) of ``image`` (zero-based), with
    ``Cutout2D`` in partial mode; the pixels are converted to Jy/beam."""
    cut = Cutout2D(image.data, (x, y), size, mode="partial", fill_value=np.nan, copy=True)
    data = cut.data.astype(np.float64) * image.flux_scale
    sy, sx = cut.slices_cutout
    if (sy.stop - sy.start, sx.stop - sx.start) == (size, size):
        return Cutout(data, None)
    inside = np.zeros((size, size), dtype=bool)
    inside[cut.slices_cutout] = True
    return Cutout(data, inside)


def cutout_from_file(path: str | os.PathLike, size: int) -> tuple[Cutout, FitsImage]:
    """Re-centred crop of a per-source FITS file: ``size``×``size`` pixels around the image
    centre (where cut-out servers put the requested position).

    Raises FitsReadError for a file :func:`read_fits_image` refuses, an image smaller than
    the crop, or one without a single finite pixel (images with some NaN pixels are judged
    by the selection cuts)."""
    image = read_fits_image(path)
    ny, nx = image.data.shape
    if ny < size or nx < size:
        raise FitsReadError(path, f"too small: {nx}×{ny} pixels, the cut-outs are {size}×{size}")
    if not np.isfinite(image.data).any():
        raise FitsReadError(path, "no finite pixel (all NaN, blank or infinite)")
    return cutout(image, (nx - 1) / 2, (ny - 1) / 2, size), image


def list_fits_files(folder: str | os.PathLike) -> list[Path]:
    """The FITS files of a folder (not recursive), sorted by name; raises when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.name.lower().endswith(FITS_SUFFIXES))
    if not files:
        raise ValueError(f"{folder}: no FITS files ({', '.join(FITS_SUFFIXES)})")
    return files

"""Source properties in a store and which of them condition a model: measured from the images
(:mod:`radiogen.data.measure`, or PyBDSF), taken from the catalog, or kept by the pipeline
(``peak_flux``, ``snr_sigma``); :func:`set_conditions` fits each chosen column's transform
(:mod:`radiogen.data.conditions`) and records them in the store's ``conditions`` attribute."""

from __future__ import annotations

import math

import numpy as np

from radiogen.data.conditions import conditions_to_attrs, fit_condition
from radiogen.data.fits_io import Beam
from radiogen.data.measure import measure_images
from radiogen.data.store import Store

__all__ = ["physical_images", "beam_area_pixels", "measure_store", "set_conditions",
           "MEASURE_METHODS"]

MEASURE_METHODS = ("moments", "pybdsf")


def physical_images(store: Store) -> np.ndarray:
    """The store's images back in Jy/beam: x·(f̂ − min) + min, inverting Eq. (11)."""
    if "peak_flux" not in store.columns:
        raise ValueError("the store has no /peak_flux: its images cannot be put back in Jy/beam")
    peak = np.asarray(store.columns["peak_flux"], np.float64)[:, None, None]
    low = np.asarray(store.columns.get("min_flux", np.zeros(len(store))), np.float64)[:, None, None]
    return store.images * (peak - low) + low


def beam_area_pixels(attrs: dict) -> float:
    """Beam solid angle π·BMAJ·BMIN / (4 ln 2) in pixels, from a store's attributes; NaN
    where the store has no beam."""
    bmaj = float(attrs.get("beam_bmaj_arcsec", math.nan))
    bmin = float(attrs.get("beam_bmin_arcsec", math.nan))
    scale = float(attrs["pixel_scale_arcsec"])
    if not bmaj > 0:
        return math.nan
    return Beam(bmaj, bmin if bmin > 0 else bmaj).area_pixels(scale)


def measure_store(store: Store, method: str = "moments", progress: bool = False,
                  workers: int | None = None) -> dict[str, np.ndarray]:
    """Integrated flux, major and minor axis and position angle of every image of a store.

    Without a beam in the store the integrated flux is NaN (sizes are still measured).
    ``moments``: second moments over the islands of emission of the image itself (fast, every
    image with an island gets values); ``pybdsf``: second moments of PyBDSF's Gaussian model of
    the image (NaN where PyBDSF fits nothing)."""
    if method not in MEASURE_METHODS:
        raise ValueError(f"unknown measure method {method!r}; choose from {MEASURE_METHODS}")
    scale = float(store.attrs.get("pixel_scale_arcsec", math.nan))
    if not scale > 0:
        raise ValueError("the store has no pixel scale (give --pixel-scale when building it): "
                         "sizes cannot be measured")
    images = physical_images(store)
    area = beam_area_pixels(store.attrs)      # NaN without a beam: no integrated flux
    models = None
    if method == "pybdsf":
        from radiogen.evaluation.sources import PyBDSFSettings, run_pybdsf
        settings = PyBDSFSettings.for_images(store.attrs)
        fits = run_pybdsf(images.astype(np.float32), settings, progress=progress,
                          workers=workers)
        models = np.where(fits.fitted[:, None, None], fits.model_images, 0.0)
    return measure_images(images, scale, area, models=models, progress=progress)


def set_conditions(store: Store, names, transforms: dict | None = None) -> Store:
    """The store with ``conditions`` set to the columns ``names``, each transform fitted on the
    store's values (:func:`radiogen.data.conditions.fit_condition`); for ``peak_flux`` the
    legacy ``scaled_flux`` column and ``boxcox_*`` attributes are kept in step."""
    transforms = transforms or {}
    conditions = []
    for name in names:
        if name not in store.columns:
            raise ValueError(f"no column {name!r} in the store; columns: "
                             f"{sorted(k for k in store.columns if k != 'names')}")
        conditions.append(fit_condition(name, store.columns[name], transforms.get(name)))
    attrs = {**store.attrs, "conditions": conditions_to_attrs(conditions)}
    columns = dict(store.columns)
    for c in conditions:
        if c.name == "peak_flux" and c.transform == "boxcox":
            attrs.update(boxcox_lambda=c.lam, boxcox_mean=c.mean, boxcox_std=c.std)
            columns["scaled_flux"] = c.forward(columns["peak_flux"]).astype(np.float32)
    return Store(store.images, columns, attrs)


def catalog_properties(store: Store, catalog, columns, name_column: str = "Source_Name"
                       ) -> dict[str, np.ndarray]:
    """Catalog columns (``Peak_flux``, ``Maj``, … or any other) for the store's sources, matched
    by name (the store's ``/names``, from the catalog's ``name_column``), renamed by
    :data:`radiogen.data.conditions.CATALOG_COLUMNS` and converted from the catalog's units to
    radiogen's (mJy/beam → Jy/beam, deg → arcsec); NaN for sources the catalog lacks."""
    from astropy import units as u

    from radiogen.data.conditions import CATALOG_COLUMNS, KNOWN_COLUMNS
    from radiogen.data.cutouts import read_table
    table = read_table(catalog)
    missing = [c for c in [name_column, *columns] if c not in table.colnames]
    if missing:
        raise ValueError(f"{catalog}: no column {', '.join(map(repr, missing))} (columns: "
                         f"{', '.join(table.colnames[:30])})")
    if "names" not in store.columns:
        raise ValueError("the store has no /names to match catalog rows to")
    row_of = {str(n).strip(): i for i, n in enumerate(table[name_column])}
    rows = np.array([row_of.get(str(n).strip(), -1) for n in store.columns["names"]])
    out = {}
    for column in columns:
        name = CATALOG_COLUMNS.get(column, column.lower())
        unit = KNOWN_COLUMNS.get(name, ("", ""))[0]
        values = u.Quantity(table[column])
        if unit and values.unit != u.dimensionless_unscaled:
            try:
                values = values.to(u.Unit(unit))
            except u.UnitConversionError:
                raise ValueError(f"{catalog}: column {column!r} is in {values.unit}, which does "
                                 f"not convert to {unit}") from None
        v = np.asarray(values.value, dtype=np.float64)
        out[name] = np.where(rows >= 0, v[np.clip(rows, 0, None)], np.nan)
    return out

"""Synthetic survey maps: generated sources placed on a WCS grid with beam-correlated noise
(or a real mosaic), written as FITS with a truth catalogue. The recovery check (PyBDSF and a
cross-match with the truth) is :mod:`radiogen.evaluation.map_recovery`."""

from radiogen.maps.catalog import CatalogError, read_catalog, read_truth_catalog
from radiogen.maps.geometry import MapGeometry
from radiogen.maps.make import MapResult, preview_path, truth_path
from radiogen.maps.sources import SourceList, powerlaw_peaks
from radiogen.maps.survey import make_map

__all__ = ["make_map", "MapResult", "MapGeometry", "SourceList", "CatalogError", "read_catalog",
           "read_truth_catalog", "powerlaw_peaks", "truth_path", "preview_path"]

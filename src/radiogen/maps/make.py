"""Making a survey map: sources sampled through :func:`radiogen.api.sample` in batches, placed
on a WCS grid tile row by tile row over noise or a real mosaic, written as FITS with a truth
catalogue and a quick-look PNG.

Reproducibility: source i (its index in the catalogue or draw) is generated from seed
``seed + i`` (the image ``radiogen sample --seed SEED`` makes as image i, for the same
context); drawn properties and the noise have seeds of their own (:mod:`.sources`,
:mod:`.noise`). So the same seed gives the same map whatever the tile size or batch size: to
the sampler's 1e-5 of a source's peak across batch compositions (README, "Reproducibility")
and the FFT's rounding in the noise.

Memory: the map is written through a memory map; cut-outs are generated for one tile row at a
time (those whose stamps first touch it) and dropped after the last tile row they touch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from radiogen.data.fits_io import Beam
from radiogen.maps.geometry import MapGeometry, tiles
from radiogen.maps.noise import CorrelatedNoise
from radiogen.maps.placement import add_stamp, measure, place, stamp_size, to_jy_per_beam
from radiogen.maps.sources import SourceList

__all__ = ["MapResult", "SourceModels", "build_map", "truth_path", "preview_path"]

#: The FIRST survey's frequency: the map frequency when neither the model nor the user gives one.
FIRST_FREQUENCY_HZ = 1.4e9


def truth_path(map_path) -> Path:
    """Where the truth catalogue of ``map_path`` goes: ``NAME.truth.fits`` beside it."""
    path = Path(map_path)
    return path.with_name(f"{path.name.removesuffix('.fits')}.truth.fits")


def preview_path(map_path) -> Path:
    path = Path(map_path)
    return path.with_name(f"{path.name.removesuffix('.fits')}.png")


@dataclass
class MapResult:
    """What :func:`build_map` wrote and how long it took."""

    map_path: Path
    truth_path: Path
    preview_path: Path
    n_placed: int
    n_outside: int
    shape: tuple[int, int]
    seconds: float

    @property
    def sources_per_second(self) -> float:
        return self.n_placed / self.seconds if self.seconds else float("nan")

    @property
    def megapixels_per_second(self) -> float:
        return self.shape[0] * self.shape[1] / 1e6 / self.seconds if self.seconds else float("nan")


class SourceModels:
    """The models of a map's sources by name ("" the map's own), loaded once each."""

    def __init__(self, default, device, sample_options: dict):
        from radiogen import api
        self.api, self.device, self.options = api, device, sample_options
        model = default if isinstance(default, api.Model) else api.load_model(default, device)
        self.models = {"": model}

    def __getitem__(self, name: str):
        if name not in self.models:
            self.models[name] = self.api.load_model(name, self.device)
        return self.models[name]

    def class_names(self, name: str) -> list[str]:
        model = self[name]
        return model.class_names if model.kind == "class" else []

    def class_weights(self, name: str):
        weights = self[name].meta.get("n_per_class")
        return weights if weights and len(weights) == len(self.class_names(name)) else None

    def conditioned_peaks(self, name: str, peaks: np.ndarray) -> np.ndarray:
        """A flux model's conditioning peaks: the requested ones, clipped to its training
        range (the cut-outs are scaled to the requested peak afterwards); NaN for class
        models."""
        model = self[name]
        if model.kind != "flux":
            return np.full(len(peaks), np.nan)
        lo, hi = self.api.flux_range(model)
        return np.clip(peaks, lo, hi)

    def conditioned_sizes(self, name: str, sizes: np.ndarray) -> np.ndarray:
        """The major axes (arcsec) a model conditioned on them is given: the catalogue's, NaN
        (left free) where it has none or the model does not take them."""
        if "major_axis" not in [c.name for c in self[name].conditions]:
            return np.full(len(sizes), np.nan)
        return np.asarray(sizes, float)

    def generate(self, name: str, labels, conditioned, seeds, sizes=None) -> np.ndarray:
        """Images in [0, 1] of one model for the given classes or conditioning peaks (and
        major axes, NaN where free, for a model conditioned on them)."""
        model = self[name]
        if model.conditions:
            takes = [c.name for c in model.conditions]
            given = {"peak_flux": conditioned, "major_axis": sizes}
            context = {"conditions": {k: v for k, v in given.items()
                                      if k in takes and v is not None}}
        elif model.kind == "flux":
            context = {"scaled_flux": self.api.flux_context(model, conditioned)}
        else:
            context = {"class_label": list(labels)}
        return self.api.sample(model, len(seeds), seeds=seeds, progress=False, **context,
                               **self.options)

    def zoom(self, name: str, geometry: MapGeometry) -> float:
        """Map pixels per model pixel."""
        scale = self[name].meta.get("pixel_scale_arcsec") or geometry.pixel_scale_arcsec
        return float(scale) / geometry.pixel_scale_arcsec


def _rows_touched(y: np.ndarray, size: np.ndarray, tile: int, n_rows: int):
    """First and last tile row that each source's stamp reaches."""
    y0 = np.floor(y).astype(np.int64) - size // 2
    first = np.clip(y0 // tile, 0, n_rows - 1)
    last = np.clip((y0 + size - 1) // tile, 0, n_rows - 1)
    return first, last


def build_map(out, models: SourceModels, geometry: MapGeometry, sources: SourceList, *,
              seed: int, rms: float = 0.0, background=None, tile: int = 1024,
              header_cards=(), progress: bool = True) -> MapResult:
    """Place ``sources`` on ``geometry`` over beam-correlated noise of ``rms`` (Jy/beam) or
    the pixels of ``background`` (a :class:`~radiogen.data.fits_io.FitsImage` on the same
    grid) and write the map, its truth catalogue and quick look. ``sources`` must have their
    classes and position angles (:func:`~radiogen.maps.sources.fill_missing`)."""
    from radiogen import outputs
    from radiogen.maps.catalog import write_truth_catalog
    from radiogen.maps.fits_writer import open_map
    started = time.perf_counter()
    shape = geometry.shape
    x, y = geometry.world_to_pixel(sources.ra, sources.dec)
    sizes = np.array([stamp_size(models[m].config.image_size, models.zoom(m, geometry))
                      for m in sources.model], dtype=np.int64)
    inside = ((x + sizes / 2 > 0) & (x - sizes / 2 < shape[1])
              & (y + sizes / 2 > 0) & (y - sizes / 2 < shape[0]))
    ids = np.flatnonzero(inside)
    grid = tiles(shape, tile)
    first, last = _rows_touched(y[ids], sizes[ids], tile, len(grid))
    conditioned = np.full(len(sources), np.nan)
    conditioned_sizes = np.full(len(sources), np.nan)
    for name in np.unique(sources.model):
        group = sources.model == name
        conditioned[group] = models.conditioned_peaks(name, sources.peak_flux[group])
        conditioned_sizes[group] = models.conditioned_sizes(name, sources.major_axis[group])
    noise = CorrelatedNoise(rms, geometry.beam, geometry.pixel_scale_arcsec, seed)
    truth = {k: np.zeros(len(ids)) for k in ("peak_flux", "total_flux", "in_map_fraction")}
    header = geometry.header()
    for card in header_cards:
        header[card[0]] = tuple(card[1:])
    header["NOISERMS"] = (float(rms) if background is None else -1.0,
                          "[Jy/beam] added noise rms (-1: real mosaic)")
    header["NSOURCE"] = (len(ids), "sources placed")
    header["TRUTHCAT"] = (truth_path(out).name[-68:], "truth catalogue")
    cache: dict[int, object] = {}
    with open_map(out, shape, header) as writer, \
            tqdm(total=len(ids), desc="map", unit="src", disable=not progress) as bar:
        for r, row in enumerate(grid):
            new = np.flatnonzero(first == r)
            bar.set_postfix_str(f"tile row {r + 1}/{len(grid)}")
            for k, stamp in _stamps(models, geometry, sources, ids[new], x, y, conditioned,
                                    conditioned_sizes, seed, bar):
                cache[k] = stamp
                for key, value in measure(stamp, shape, geometry.beam_area_pixels).items():
                    truth[key][np.searchsorted(ids, k)] = value
            for bounds in row:
                if background is None:
                    base = noise.tile(*bounds)
                else:
                    y0, y1, x0, x1 = bounds
                    base = np.array(background.data[y0:y1, x0:x1], dtype=np.float64) \
                        * background.flux_scale
                for k in sorted(cache):
                    add_stamp(base, bounds, cache[k])
                writer.write(bounds, base)
            for k in ids[last == r]:
                cache.pop(int(k), None)
        preview = writer.preview
    truth.update(source_id=ids, ra=sources.ra[ids], dec=sources.dec[ids], x=x[ids], y=y[ids],
                 peak_flux_requested=sources.peak_flux[ids], pa=sources.pa[ids],
                 **{"class": sources.label[ids]},
                 model=np.array([models[m].name for m in sources.model[ids]]),
                 seed=seed + ids.astype(np.int64), conditioned_peak=conditioned[ids],
                 conditioned_major_axis=conditioned_sizes[ids])
    meta = {c[0]: c[1] for c in header_cards if c[0] in ("RGMODEL", "SEED", "SAMPLER", "STEPS")}
    write_truth_catalog(truth_path(out), truth, {**meta, "MAPFILE": Path(out).name[-68:]})
    outputs.write_png_image(preview_path(out), np.where(np.isfinite(preview), preview, np.nan))
    return MapResult(Path(out), truth_path(out), preview_path(out), len(ids),
                     len(sources) - len(ids), shape, time.perf_counter() - started)


#: Sources sampled per call of api.sample (it batches them further): the progress bar moves
#: after each; the images do not depend on it (per-image seeds).
SAMPLE_CHUNK = 32


def _stamps(models: SourceModels, geometry, sources, new_ids, x, y, conditioned, sizes, seed,
            bar):
    """(source index, stamp) of the sources ``new_ids``, generated model by model in chunks
    of :data:`SAMPLE_CHUNK`, ``bar`` advanced after each."""
    results = {}
    for name in np.unique(sources.model[new_ids]):
        group = new_ids[sources.model[new_ids] == name]
        zoom = models.zoom(name, geometry)
        for start in range(0, len(group), SAMPLE_CHUNK):
            chunk = group[start:start + SAMPLE_CHUNK]
            images = models.generate(name, sources.label[chunk], conditioned[chunk],
                                     seed + chunk, sizes[chunk])
            for k, image in zip(chunk, images):
                cutout = to_jy_per_beam(image, sources.peak_flux[k])
                results[int(k)] = place(cutout, x[k], y[k], sources.pa[k], zoom)
            bar.update(len(chunk))
    return sorted(results.items())


def default_beam(model, beam=None) -> Beam:
    """The map's beam: given, else the model's training beam."""
    if beam is not None:
        return beam if isinstance(beam, Beam) else Beam(*beam)
    if not model.meta.get("beam_arcsec"):
        raise ValueError(f"model {model.name!r} records no beam: give one (--beam)")
    return Beam(*model.meta["beam_arcsec"])

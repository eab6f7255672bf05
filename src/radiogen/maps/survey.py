"""``make_map``: a survey map from a catalogue or drawn sources, the one entry point that
:func:`radiogen.api.make_map` and ``radiogen map`` call."""

from __future__ import annotations


import numpy as np

from radiogen.data.fits_io import Beam, read_fits_image
from radiogen.maps.geometry import MapGeometry
from radiogen.maps.make import (FIRST_FREQUENCY_HZ, MapResult, SourceModels, build_map,
                                default_beam)
from radiogen.maps.sources import (SOURCE_TAG, SourceList, draw_sources, fill_missing,
                                   powerlaw_peaks)

__all__ = ["make_map", "DEFAULT_MAP_MODEL", "DEFAULT_RMS", "DEFAULT_TILE", "POWERLAW_DEFAULTS"]

DEFAULT_MAP_MODEL = "first-flux"
#: FIRST's typical noise, 0.15 mJy/beam (Becker et al. 1995).
DEFAULT_RMS = 1.5e-4
#: Tile side in pixels: 4 MiB of float32 per tile.
DEFAULT_TILE = 1024
#: dN/dS ∝ S^−α between smin and smax (Jy/beam) when nothing else is asked for.
POWERLAW_DEFAULTS = {"alpha": 1.6, "smin": 1e-3, "smax": 1.0}


def make_map(out, model=DEFAULT_MAP_MODEL, *, catalog=None, sources: SourceList | None = None,
             n_sources: int | None = None, counts: str | None = None, alpha: float = 1.6,
             smin: float = 1e-3, smax: float = 1.0, size=(2048, 2048),
             pixel_scale: float | None = None, centre=(180.0, 45.0), rms: float = DEFAULT_RMS,
             beam=None, frequency_hz: float | None = None, background=None,
             tile: int = DEFAULT_TILE, seed: int = 0, batch_size: int | None = None,
             steps: int | None = None, guidance: float | None = None, device="cpu",
             progress: bool = True) -> MapResult:
    """Write a synthetic survey map ``out`` (FITS, Jy/beam), its truth catalogue
    (``NAME.truth.fits``) and a quick look (``NAME.png``).

    Parameters
    ----------
    out : path
        The map file.
    model : str or radiogen.api.Model
        The model of sources without a ``model`` column entry: bundled name or path.
    catalog : path, optional
        Sources from a FITS table or CSV file (:func:`radiogen.maps.read_catalog`).
    sources : SourceList, optional
        Sources given directly.
    n_sources : int, optional
        Draw this many sources at uniform positions instead; their peak fluxes from
        ``counts``: "model" (a flux model's training histogram, as ``radiogen sample`` draws
        them; the default for flux models) or "powerlaw" (dN/dS ∝ S^−``alpha`` on
        [``smin``, ``smax``] Jy/beam; the default for class models).
    size : (ny, nx)
        Map size in pixels (not with ``background``).
    pixel_scale : float, optional
        Arcsec per pixel; default the model's (1.8″ for the bundled FIRST models).
    centre : (ra, dec)
        Map centre in degrees; SIN projection, north up.
    rms : float
        Noise rms in Jy/beam, correlated by the beam (0: a noiseless map).
    beam : Beam or (bmaj, bmin, bpa), optional
        Arcsec, arcsec, degrees; default the model's training beam.
    frequency_hz : float, optional
        Default the model's, else FIRST's 1.4 GHz.
    background : path, optional
        A real mosaic (FITS, Jy/beam) to add the sources to, instead of noise: its grid,
        WCS, beam and frequency are the map's.
    tile : int
        Tile side in pixels (memory; the map does not depend on it).
    seed : int
        Source i's image has seed ``seed + i``; positions, fluxes, angles, classes and noise
        have seeds derived from ``seed``.
    batch_size, steps, guidance, device, progress
        Passed to :func:`radiogen.api.sample` (its defaults: the model's sampler settings).
    """
    if sum(x is not None for x in (catalog, sources, n_sources)) != 1:
        raise ValueError("give exactly one of catalog, sources and n_sources")
    options = {"batch_size": batch_size, "steps": steps, "guidance": guidance}
    models = SourceModels(model, device, {k: v for k, v in options.items() if v is not None})
    main = models[""]
    mosaic = read_fits_image(background, memmap=True) if background is not None else None
    try:
        geometry = _geometry(main, mosaic, size, pixel_scale, centre, beam, frequency_hz)
        if catalog is not None:
            from radiogen.maps.catalog import read_catalog
            sources = read_catalog(catalog)
        elif n_sources is not None:
            sources = draw_sources(geometry, n_sources, seed,
                                   _draw_peaks(main, n_sources, seed, counts, alpha, smin, smax))
        sources = fill_missing(sources, models.class_names, models.class_weights, seed)
        _check_labels(models, sources)
        defaults = models.api.sampling_defaults(main)
        cards = _provenance(main, defaults, options, seed)
        return build_map(out, models, geometry, sources, seed=seed, rms=rms, background=mosaic,
                         tile=tile, header_cards=cards, progress=progress)
    finally:
        if mosaic is not None:
            mosaic.close()


def _geometry(model, mosaic, size, pixel_scale, centre, beam, frequency_hz) -> MapGeometry:
    frequency = frequency_hz or model.meta.get("frequency_hz") or FIRST_FREQUENCY_HZ
    if mosaic is None:
        scale = pixel_scale or model.meta.get("pixel_scale_arcsec")
        if not scale:
            raise ValueError(f"model {model.name!r} records no pixel scale: give one")
        return MapGeometry.centred(tuple(size), scale, centre[0], centre[1],
                                   default_beam(model, beam), frequency)
    beam = mosaic.beam or default_beam(model, beam)
    return MapGeometry(tuple(mosaic.data.shape), mosaic.wcs, mosaic.pixel_scale_arcsec,
                       beam if isinstance(beam, Beam) else Beam(*beam),
                       mosaic.frequency_hz or frequency)


def _draw_peaks(model, n, seed, counts, alpha, smin, smax) -> np.ndarray:
    from radiogen import api
    counts = counts or ("model" if model.kind == "flux" else "powerlaw")
    if counts == "model":
        if model.kind != "flux":
            raise ValueError(f"model {model.name!r} is a class model with no peak-flux "
                             "histogram: draw peak fluxes from a power law (counts='powerlaw')")
        return api.peak_flux_of(model, api.draw_flux_context(model, n, seed))
    if counts != "powerlaw":
        raise ValueError(f"counts must be 'model' or 'powerlaw', not {counts!r}")
    return powerlaw_peaks(n, alpha, smin, smax, np.random.default_rng([seed, SOURCE_TAG, 2]))


def _check_labels(models: SourceModels, sources: SourceList) -> None:
    """A clear error for a class that a source's class model does not know."""
    from radiogen import api
    for name in np.unique(sources.model):
        model = models[name]
        if model.kind == "class":
            for label in np.unique(sources.label[sources.model == name]):
                api.class_index(model, label)


def _provenance(model, defaults: dict, options: dict, seed: int) -> list[tuple]:
    from radiogen import outputs
    steps = options["steps"] or defaults["steps"]
    omega = defaults["guidance"] if options["guidance"] is None else options["guidance"]
    cards = outputs.provenance_cards(model.name, model.kind, defaults["sampler"], steps, omega,
                                     seed, guidance_interval=defaults["guidance_interval"],
                                     distilled_guidance=model.distilled_guidance,
                                     background_clip=defaults["background_clip"],
                                     churn=defaults["churn"])
    return cards + outputs.guidance_cards(defaults["guide_model"], defaults["autoguidance"])

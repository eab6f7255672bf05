"""PyBDSF source models and the quantities drawn from them (Sections 5.1 and 5.2).

PyBDSF (Mohan & Rafferty 2015) fits Gaussians to the islands of every image; their sum is the
flux model image x̃ (Fig. 8). From it come the integrated model flux (Fig. 15), A50%, the smallest
number of pixels that holds 50% of the model flux (Fig. 16), and the positive residual Δ+ (Eq. 26,
Fig. 17).

The paper's Table 5 is not legible in our copy; :class:`PyBDSFSettings` holds the one fixed set
used for every image instead, chosen for 80×80 min-max scaled cut-outs:

- ``thresh="hard"`` with ``thresh_isl=3`` and ``thresh_pix=5`` (σ): islands grow down to 3σ
  around peaks above 5σ, PyBDSF's usual pair;
- ``mean_map="const"``, ``rms_map=False``: one background mean and rms per image; an rms *map*
  needs boxes of tens of pixels, which an 80-pixel cut-out does not hold several of;
- ``noise_floor=1e-2``: Gaussian noise of this standard deviation (relative to the image
  maximum, seeded per image) is added before fitting, as the paper's authors do in their code.
  FIRST cut-outs have their background set to a constant (Section 3.2), which leaves PyBDSF's
  sigma clipping no rms to find: it stops with "unphysical rms" or fits dozens of Gaussians to
  8-bit rounding steps (1/255). The floor gives a defined rms at the level of LOFAR's own
  background noise in scaled images; model flux and A50% of FIRST images change by a few
  percent between floors of 3e-3 and 1e-2, while the fit is twice as fast at 1e-2. Δ+ uses the
  image without it.
- beam and pixel scale from the image set (store attributes or FITS header) or given
  explicitly; ``radiogen evaluate`` skips the PyBDSF sections, saying why, when neither gives
  them (the class defaults, LOFAR's 6″ beam at 1.5″/px, are for direct calls);
- ``timeout_s=60``: an image that keeps PyBDSF busy longer (noise-like images can take minutes)
  is stopped and counted as failed.

PyBDSF runs in worker processes (spawned, one temporary directory per task, removed afterwards,
its console output and warnings silenced there), so its logs and prints never reach the user's
folders or terminal. An image where it fails or finds no source is counted with its reason and
left out of the distributions; the run goes on. Finished fits are kept in a cache folder
(:mod:`radiogen.evaluation.pybdsf_cache`) when one is given, so that no image is fitted twice.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm.auto import tqdm

from radiogen.data.fits_io import Beam

__all__ = [
    "PyBDSFSettings",
    "SourceModels",
    "bdsf_available",
    "beam_area_pixels",
    "model_flux",
    "a50_area",
    "positive_residual",
    "run_pybdsf",
]


def _known(attrs: dict, key: str, positive: bool = True) -> float | None:
    """A finite (and, where ``positive``, positive) number from ``attrs``, else None."""
    try:
        value = float(attrs[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and (value > 0 or not positive) else None


@dataclass(frozen=True)
class PyBDSFSettings:
    """The fixed PyBDSF settings applied to every image (see the module docstring).

    Attributes
    ----------
    thresh_isl, thresh_pix : float
        Island boundary and island peak thresholds, in units of the image rms σ.
    thresh, mean_map : str
        PyBDSF's thresholding method and background mean.
    rms_map : bool
        Whether PyBDSF fits an rms map rather than a constant.
    noise_floor : float
        Standard deviation of the Gaussian noise added before fitting, relative to the maximum.
    pixel_scale_arcsec : float
        Pixel side in arcseconds.
    beam_arcsec : tuple of float
        Restoring beam (BMAJ, BMIN) in arcseconds (FWHM) and position angle BPA in degrees.
    frequency_hz : float
        Observing frequency written to the header (PyBDSF requires one; fluxes do not use it).
    timeout_s : float
        Seconds after which PyBDSF is stopped on one image and the image counted as failed
        (noise-like images can keep it busy for minutes); 0 for no limit.
    """

    thresh_isl: float = 3.0
    thresh_pix: float = 5.0
    thresh: str = "hard"
    mean_map: str = "const"
    rms_map: bool = False
    noise_floor: float = 1e-2
    pixel_scale_arcsec: float = 1.5
    beam_arcsec: tuple[float, float, float] = (6.0, 6.0, 0.0)
    frequency_hz: float = 144e6
    timeout_s: float = 60.0

    @classmethod
    def for_images(cls, attrs: dict, **overrides) -> "PyBDSFSettings":
        """Settings with the beam, pixel scale and frequency of an image set's ``attrs`` where
        known (NaN, zero or missing values are unknown: the defaults stand in)."""
        base = cls()
        bmaj = _known(attrs, "beam_bmaj_arcsec")
        beam = base.beam_arcsec if bmaj is None else (
            bmaj, _known(attrs, "beam_bmin_arcsec") or bmaj,
            _known(attrs, "beam_bpa_deg", positive=False) or 0.0)
        values = {"pixel_scale_arcsec": _known(attrs, "pixel_scale_arcsec")
                  or base.pixel_scale_arcsec, "beam_arcsec": beam,
                  "frequency_hz": _known(attrs, "frequency_hz") or base.frequency_hz}
        return cls(**{**values, **overrides})

    @staticmethod
    def unknown_geometry(attrs: dict, overrides: dict) -> list[str]:
        """What PyBDSF needs that neither ``attrs`` nor ``overrides`` give: the beam, the pixel
        scale (each with the option that gives it)."""
        missing = []
        if "beam_arcsec" not in overrides and _known(attrs, "beam_bmaj_arcsec") is None:
            missing.append("beam (--beam BMAJ BMIN BPA)")
        if "pixel_scale_arcsec" not in overrides and _known(attrs, "pixel_scale_arcsec") is None:
            missing.append("pixel scale (--pixel-scale)")
        return missing

    def bdsf_options(self) -> dict:
        """Keyword arguments of ``bdsf.process_image``."""
        deg = 1 / 3600
        return {"thresh": self.thresh, "thresh_isl": self.thresh_isl,
                "thresh_pix": self.thresh_pix, "mean_map": self.mean_map,
                "rms_map": self.rms_map, "frequency": self.frequency_hz, "quiet": True,
                "beam": (self.beam_arcsec[0] * deg, self.beam_arcsec[1] * deg, self.beam_arcsec[2])}


@dataclass
class SourceModels:
    """PyBDSF results for a set of images.

    Attributes
    ----------
    model_images : ndarray, float32, shape (N, H, W)
        Flux model x̃ (sum of the fitted Gaussians); zeros where no model was found.
    n_gaussians : ndarray, int64, shape (N,)
    failures : dict of int to str
        Index → reason for images where PyBDSF raised an error.
    settings : PyBDSFSettings
    """

    model_images: np.ndarray
    n_gaussians: np.ndarray
    failures: dict[int, str] = field(default_factory=dict)
    settings: PyBDSFSettings = field(default_factory=PyBDSFSettings)

    @property
    def failed(self) -> np.ndarray:
        """True where PyBDSF raised an error."""
        mask = np.zeros(len(self.n_gaussians), dtype=bool)
        mask[list(self.failures)] = True
        return mask

    @property
    def fitted(self) -> np.ndarray:
        """True where PyBDSF ran and fitted at least one Gaussian: the images the metrics use."""
        return ~self.failed & (self.n_gaussians > 0)

    @property
    def model_flux(self) -> np.ndarray:
        """Integrated model flux per image (NaN where nothing was fitted)."""
        flux = model_flux(self.model_images, beam_area_pixels(self.settings))
        return np.where(self.fitted, flux, np.nan)

    @property
    def a50(self) -> np.ndarray:
        """A50% per image in pixels (NaN where nothing was fitted)."""
        area = np.array([a50_area(m) if ok else np.nan
                         for m, ok in zip(self.model_images, self.fitted)], dtype=np.float64)
        return area

    def select(self, index) -> "SourceModels":
        """The results of the images at ``index`` (a slice or an integer array)."""
        positions = np.arange(len(self.n_gaussians))[index]
        where = {int(p): k for k, p in enumerate(positions)}
        failures = {where[i]: r for i, r in self.failures.items() if i in where}
        return SourceModels(self.model_images[index], self.n_gaussians[index], failures,
                            self.settings)

    def summary(self) -> dict:
        """Counts of images fitted, without source and failed, with the failure reasons."""
        reasons: dict[str, int] = {}
        for reason in self.failures.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        return {"n_images": int(len(self.n_gaussians)), "n_fitted": int(self.fitted.sum()),
                "n_no_source": int((~self.failed & (self.n_gaussians == 0)).sum()),
                "n_failed": int(self.failed.sum()), "failure_reasons": reasons,
                "settings": asdict(self.settings)}


def bdsf_available() -> bool:
    """Whether PyBDSF (``pip install bdsf``, extra ``radiogen[eval]``) can be imported."""
    try:
        import bdsf  # noqa: F401
    except ImportError:
        return False
    return True


def beam_area_pixels(settings: PyBDSFSettings) -> float:
    """Beam solid angle Ω = π·BMAJ·BMIN / (4 ln 2) in pixels (Gaussian beam, FWHM axes)."""
    return Beam(*settings.beam_arcsec).area_pixels(settings.pixel_scale_arcsec)


def model_flux(x_tilde: np.ndarray, beam_area: float) -> np.ndarray:
    """Integrated flux of the model: Σ_i x̃_i / Ω_beam (Fig. 15).

    In the units of the image times a beam: Jy for an image in Jy/beam; for a min-max scaled
    image, in units of its peak (a point source of peak p has model flux p).
    """
    return np.asarray(x_tilde, dtype=np.float64).sum(axis=(-2, -1)) / beam_area


def a50_area(x_tilde: np.ndarray) -> int:
    """A50%: the smallest number of pixels holding 50% of the model flux (Section 5.1).

    The brightest pixels hold the most flux per pixel, so the smallest set is the brightest
    pixels taken in order until their sum reaches half of Σ_i x̃_i.
    """
    values = np.sort(np.clip(np.asarray(x_tilde, dtype=np.float64).ravel(), 0, None))[::-1]
    total = values.sum()
    if total <= 0:
        raise ValueError("the model holds no positive flux, A50% is undefined")
    return int(np.searchsorted(np.cumsum(values), 0.5 * total) + 1)


def positive_residual(x: np.ndarray, x_tilde: np.ndarray) -> np.ndarray:
    """Δ+ = Σ_i (x_i − x̃_i)·Θ(x_i − x̃_i), per image (Eq. 26)."""
    residual = np.asarray(x, dtype=np.float64) - np.asarray(x_tilde, dtype=np.float64)
    return np.where(residual > 0, residual, 0.0).sum(axis=(-2, -1))  # Eq. (26)


def _fits_header(settings: PyBDSFSettings, shape: tuple[int, int]):
    from astropy.io import fits

    header = fits.Header()
    pixel = settings.pixel_scale_arcsec / 3600
    for axis, ctype, sign, n in ((1, "RA---SIN", -1, shape[1]), (2, "DEC--SIN", 1, shape[0])):
        header[f"CTYPE{axis}"], header[f"CUNIT{axis}"] = ctype, "deg"
        header[f"CDELT{axis}"], header[f"CRPIX{axis}"] = sign * pixel, n / 2 + 0.5
        header[f"CRVAL{axis}"] = 0.0
    header["BUNIT"] = "JY/BEAM"
    return header


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise ``TimeoutError`` in the block after ``seconds`` (POSIX worker processes only)."""
    if not seconds or not hasattr(signal, "setitimer"):
        yield
        return

    def _expire(signum, frame):
        raise TimeoutError(f"PyBDSF took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _fit_one(image: np.ndarray, settings: PyBDSFSettings, seed: int, workdir: str):
    """(model image, number of Gaussians, failure reason or None) of one image."""
    import bdsf
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    data = image + rng.normal(0.0, settings.noise_floor * max(float(image.max()), 1e-12),
                              image.shape)
    path = os.path.join(workdir, f"image{seed}.fits")
    fits.writeto(path, data.astype(np.float32), _fits_header(settings, image.shape),
                 overwrite=True)
    try:
        with _time_limit(settings.timeout_s):
            result = bdsf.process_image(path, outdir=workdir, **settings.bdsf_options())
    except Exception as err:  # PyBDSF signals bad images with assorted errors
        return None, 0, f"{type(err).__name__}: {str(err).strip().splitlines()[0][:120]}"
    n_gaussians = int(getattr(result, "ngaus", 0) or 0)
    if n_gaussians == 0:
        return None, 0, None
    return np.asarray(result.model_gaus_arr, dtype=np.float32), n_gaussians, None


def _fit_chunk(images: np.ndarray, seeds: list[int], settings: PyBDSFSettings):
    with tempfile.TemporaryDirectory(prefix="radiogen-pybdsf-") as workdir:
        return [_fit_one(img, settings, seed, workdir) for img, seed in zip(images, seeds)]


def _silence_worker() -> None:
    """Worker initialiser: PyBDSF prints progress and errors to the console and emits numpy
    RuntimeWarnings and ResourceWarnings on ordinary images; none of it is for the user."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    warnings.simplefilter("ignore")


def run_pybdsf(images: np.ndarray, settings: PyBDSFSettings | None = None,
               workers: int | None = None, chunk_size: int = 8, seed: int = 0,
               progress: bool = True, desc: str = "PyBDSF", cache_dir=None) -> SourceModels:
    """Fit a PyBDSF source model to every image, in parallel processes.

    Parameters
    ----------
    images : ndarray, shape (N, H, W)
        Images in [0, 1].
    settings : PyBDSFSettings, optional
        Defaults as documented in the module docstring.
    workers : int, optional
        Worker processes; all CPU cores by default.
    chunk_size : int
        Images per task.
    seed : int
        With the image's pixels, the seed of its noise floor
        (:func:`~radiogen.evaluation.pybdsf_cache.noise_seed`): results depend neither on
        ``workers`` nor on the image's place in ``images``.
    progress : bool
        Show a progress bar.
    cache_dir : path, optional
        Keep every finished fit here and reuse those of an earlier run with the same settings
        and seed (:class:`~radiogen.evaluation.pybdsf_cache.FitCache`).

    Raises
    ------
    ImportError
        PyBDSF is not installed.

    Notes
    -----
    Workers are spawned processes, so a script that calls this at import level needs the
    usual ``if __name__ == "__main__":`` guard (the ``radiogen`` command has it).
    """
    from radiogen.evaluation.pybdsf_cache import FitCache, image_digest, noise_seed

    if not bdsf_available():
        raise ImportError("PyBDSF is not installed: pip install bdsf (or radiogen[eval])")
    settings = settings or PyBDSFSettings()
    images = np.asarray(images, dtype=np.float32)
    digests = [image_digest(image) for image in images]
    cache = FitCache(cache_dir, settings, seed)
    done = cache.load()
    first = {d: i for i, d in reversed(list(enumerate(digests)))}     # one fit per distinct image
    pending = sorted(i for d, i in first.items() if d not in done)
    chunks = [pending[i:i + chunk_size] for i in range(0, len(pending), chunk_size)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(chunks)))
    context = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=len(pending), desc=desc, unit="img",
                                       disable=not progress))
        pool = stack.enter_context(ProcessPoolExecutor(
            workers, mp_context=context, initializer=_silence_worker)) if chunks else None
        tasks = {pool.submit(_fit_chunk, images[chunk],
                             [noise_seed(digests[i], seed) for i in chunk], settings): chunk
                 for chunk in chunks}
        for task in as_completed(tasks):
            chunk, fits = tasks[task], task.result()
            cache.save([digests[i] for i in chunk], fits, images.shape[1:])
            done.update((digests[i], fit) for i, fit in zip(chunk, fits))
            bar.update(len(chunk))
    return _assemble(images.shape, [done[d] for d in digests], settings)


def _assemble(shape, fits: list, settings: PyBDSFSettings) -> SourceModels:
    models = np.zeros(shape, dtype=np.float32)
    n_gaussians = np.zeros(shape[0], dtype=np.int64)
    failures: dict[int, str] = {}
    for i, (model, count, reason) in enumerate(fits):
        if reason is not None:
            failures[i] = reason
        elif model is not None:
            models[i], n_gaussians[i] = model, count
    return SourceModels(models, n_gaussians, failures, settings)

"""FITS input and output in physical units.

Reading is tolerant: header cards with illegal characters (tabs in the COMMENT cards that SkyView
writes) are repaired, degenerate frequency/Stokes axes are dropped, integer images become float
(``BLANK`` pixels NaN), and every repair is recorded in :attr:`FitsImage.fixes` instead of being
raised as a warning. A file that cannot be used raises :class:`FitsReadError` naming the file and
the problem. Mosaics are opened memory-mapped, so they may be larger than memory.

Writing: :func:`write_physical_fits` restores a [0, 1] image to Jy/beam with the inverse of
Eq. (11), x = x_scaled · f̂ (f̂ the peak flux, from the inverse of Eq. 12 when sampling), and
writes it with ``BUNIT = 'JY/BEAM'``, the beam (``BMAJ``/``BMIN``/``BPA``), the observing frequency
and a simple SIN (or TAN) WCS centred on a given RA/Dec, so ds9, astropy and PyBDSF read it.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from radiogen import __version__
from radiogen.atomic import atomic_path
from radiogen.data.transforms import minmax_unscale

__all__ = ["Beam", "FitsImage", "FitsReadError", "clean_header", "header_beam", "header_frequency",
           "read_fits_image", "write_physical_fits", "sky_header", "physical_cards",
           "DEFAULT_RA_DEG", "DEFAULT_DEC_DEG"]

#: Default pointing of written images: inside both the FIRST and the LoTSS-DR2 footprints.
DEFAULT_RA_DEG = 180.0
DEFAULT_DEC_DEG = 45.0

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
_NUMBER = r"\s*=\s*([-+.\dEeDd]+)"
_AIPS_BEAM = re.compile(rf"BMAJ{_NUMBER}\s+BMIN{_NUMBER}\s+BPA{_NUMBER}")
#: Recognised brightness units and their factor to Jy/beam.
_JY_PER_BEAM = {"jy/beam": 1.0, "jy/bm": 1.0, "jybeam-1": 1.0, "jy beam-1": 1.0,
                "mjy/beam": 1e-3, "mjy/bm": 1e-3, "ujy/beam": 1e-6, "µjy/beam": 1e-6}


class FitsReadError(ValueError):
    """A FITS file that cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Beam:
    """Restoring beam: major and minor axis FWHM in arcsec, position angle in degrees."""

    bmaj_arcsec: float
    bmin_arcsec: float
    bpa_deg: float = 0.0

    def area_pixels(self, pixel_scale_arcsec: float) -> float:
        """Gaussian beam solid angle Ω = π·BMAJ·BMIN / (4 ln 2) in pixels: Jy = Σ (Jy/beam) / Ω."""
        return math.pi * self.bmaj_arcsec * self.bmin_arcsec / (4 * math.log(2)) \
            / pixel_scale_arcsec ** 2


@dataclass
class FitsImage:
    """A 2-d sky image read from FITS.

    Attributes
    ----------
    path : Path
        The file.
    data : ndarray, shape (ny, nx)
        Pixel values in the file's unit (memory-mapped if opened so); NaN where blank.
    header : astropy.io.fits.Header
        The repaired header.
    wcs : astropy.wcs.WCS
        The celestial (2-d) WCS.
    flux_scale : float
        Factor from the file's unit (``BUNIT``) to Jy/beam.
    fixes : list of str
        Every repair made while reading (empty for a clean file).
    """

    path: Path
    data: np.ndarray
    header: fits.Header
    wcs: WCS
    flux_scale: float = 1.0
    fixes: list[str] = field(default_factory=list)
    _hdul: fits.HDUList | None = None

    @property
    def pixel_scale_arcsec(self) -> float:
        """Pixel side in arcsec (the mean of both axes)."""
        return float(np.mean(proj_plane_pixel_scales(self.wcs)) * 3600)

    @property
    def beam(self) -> Beam | None:
        """The restoring beam from the header, or None where it has none."""
        return header_beam(self.header)

    @property
    def frequency_hz(self) -> float | None:
        """The observing frequency from the header, or None where it has none."""
        return header_frequency(self.header)

    def close(self) -> None:
        """Release the memory map (if any)."""
        self.data = None
        if self._hdul is not None:
            self._hdul.close()
            self._hdul = None

    def __enter__(self) -> "FitsImage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def clean_header(header: fits.Header) -> tuple[fits.Header, list[str]]:
    """Replace characters FITS forbids (tabs, control characters) in card values and comments
    by spaces; returns the repaired header and a description of the repairs."""
    cards, n_fixed = [], 0
    for card in header.cards:
        value, comment = card.value, card.comment or ""
        if (isinstance(value, str) and _UNPRINTABLE.search(value)) or _UNPRINTABLE.search(comment):
            n_fixed += 1
            value = _UNPRINTABLE.sub(" ", value) if isinstance(value, str) else value
            card = fits.Card(card.keyword, value, _UNPRINTABLE.sub(" ", comment))
        cards.append(card)
    fixes = ["replaced illegal characters (tabs) in header cards by spaces"] if n_fixed else []
    return fits.Header(cards), fixes


def header_beam(header: fits.Header) -> Beam | None:
    """The restoring beam from ``BMAJ``/``BMIN``/``BPA`` (degrees), else from an AIPS
    ``HISTORY ... CLEAN BMAJ= BMIN= BPA=`` card; None where the header has neither."""
    if "BMAJ" in header and "BMIN" in header:
        return Beam(float(header["BMAJ"]) * 3600, float(header["BMIN"]) * 3600,
                    float(header.get("BPA", 0.0)))
    for value in header.get("HISTORY", []):
        match = _AIPS_BEAM.search(str(value))
        if match:
            bmaj, bmin, bpa = (float(v.replace("D", "E").replace("d", "e")) for v in match.groups())
            return Beam(bmaj * 3600, bmin * 3600, bpa)
    return None


def header_frequency(header: fits.Header) -> float | None:
    """Observing frequency in Hz from ``RESTFRQ``/``RESTFREQ``/``FREQ`` or a ``FREQ`` axis;
    None where the header gives none."""
    for key in ("RESTFRQ", "RESTFREQ", "FREQ"):
        if key in header:
            return float(header[key])
    for axis in range(3, int(header.get("NAXIS", 0)) + 1):
        if str(header.get(f"CTYPE{axis}", "")).upper().startswith("FREQ"):
            return float(header[f"CRVAL{axis}"])
    return None


def _flux_scale(header: fits.Header, path) -> tuple[float, list[str]]:
    bunit = str(header.get("BUNIT", "")).strip()
    if not bunit:
        return 1.0, ["no BUNIT keyword: pixel values taken as Jy/beam"]
    scale = _JY_PER_BEAM.get(bunit.lower())
    if scale is None:
        raise FitsReadError(path, f"BUNIT {bunit!r} is not a flux density per beam (Jy/beam)")
    return scale, []


def _image_hdu(hdul: fits.HDUList, path):
    for hdu in hdul:
        if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2:
            return hdu
    naxis = hdul[0].header.get("NAXIS", 0)
    if naxis == 0:
        raise FitsReadError(path, "no data in the primary HDU and no image extension")
    raise FitsReadError(path, f"no image: the primary HDU holds a {naxis}-d array and no "
                              "extension an image")


def _celestial_wcs(header: fits.Header, path) -> tuple[WCS, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FITSFixedWarning)
        warnings.simplefilter("always", VerifyWarning)
        try:
            full = WCS(header)
        except Exception as err:  # astropy raises several types for broken WCS keywords
            raise FitsReadError(path, f"unreadable WCS ({err})") from None
    fixes = [f"WCS: {' '.join(str(w.message).split())}" for w in caught]
    if not full.has_celestial:
        raise FitsReadError(path, "no celestial WCS (CTYPE1/CTYPE2 must be RA/DEC projections)")
    if sorted((full.wcs.lng, full.wcs.lat)) != [0, 1]:
        raise FitsReadError(path, "the celestial axes are not the first two image axes")
    return full.celestial, fixes


def _plane(data: np.ndarray, path) -> np.ndarray:
    """The 2-d image of a cube whose extra (frequency, Stokes) axes have length 1."""
    if data is None:
        raise FitsReadError(path, "the image HDU holds no data")
    if data.ndim > 2:
        if any(n != 1 for n in data.shape[:-2]):
            raise FitsReadError(path, f"a cube of shape {data.shape}; expected one 2-d plane")
        data = data[(0,) * (data.ndim - 2)]
    return data


def _as_float(data: np.ndarray, memmap: bool):
    """Integer pixels as float (astropy already turns ``BLANK`` pixels into NaN)."""
    if data.dtype.kind in "iu":
        return data.astype(np.float64), ["integer pixels converted to float"
                                         + (" (read into memory)" if memmap else "")]
    return data, []


def read_fits_image(path: str | os.PathLike, memmap: bool = False) -> FitsImage:
    """Read the first 2-d image of a FITS file with its celestial WCS.

    Parameters
    ----------
    path : path
        The FITS file.
    memmap : bool
        Memory-map the pixels (for mosaics larger than memory); call :meth:`FitsImage.close`
        (or use ``with``) when done. Otherwise the pixels are read and the file closed.

    Raises
    ------
    FitsReadError
        The file is missing, not FITS, has no 2-d image, no celestial WCS or a brightness unit
        other than Jy/beam (mJy/beam and µJy/beam are converted).
    """
    path = Path(path)
    if not path.is_file():
        raise FitsReadError(path, "no such file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VerifyWarning)
        try:
            hdul = fits.open(path, memmap=memmap, lazy_load_hdus=False)
        except Exception as err:  # OSError, ValueError, TypeError… for non-FITS content
            raise FitsReadError(path, f"not a readable FITS file ({err})") from None
    fixes = [f"FITS: {' '.join(str(w.message).split())}" for w in caught]
    try:
        hdu = _image_hdu(hdul, path)
        header, header_fixes = clean_header(hdu.header)
        wcs, wcs_fixes = _celestial_wcs(header, path)
        scale, unit_fixes = _flux_scale(header, path)
        try:
            data = _plane(hdu.data, path)
        except (OSError, ValueError, TypeError) as err:
            raise FitsReadError(path, f"unreadable pixel data ({err})") from None
        data, float_fixes = _as_float(data, memmap)
        if not memmap:
            data = np.array(data)
    except BaseException:
        hdul.close()
        raise
    fixes += header_fixes + wcs_fixes + unit_fixes + float_fixes
    image = FitsImage(path, data, header, wcs, scale, fixes, hdul if memmap else None)
    if not memmap:
        hdul.close()
    return image


def sky_header(shape, pixel_scale_arcsec, ra_deg, dec_deg, projection="SIN") -> fits.Header:
    """A celestial WCS header for an image of ``shape`` (ny, nx): ``projection`` (SIN or TAN)
    centred on RA/Dec (deg, ICRS) at the middle of the image, north up, east left."""
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = [f"RA---{projection}", f"DEC--{projection}"]
    wcs.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]           # FITS pixels count from 1
    wcs.wcs.crval = [ra_deg, dec_deg]
    wcs.wcs.cdelt = [-pixel_scale_arcsec / 3600, pixel_scale_arcsec / 3600]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.equinox = 2000.0
    return wcs.to_header()


def physical_cards(beam: Beam | None, frequency_hz: float) -> dict:
    """Header cards of an image in Jy/beam: ``BUNIT``, the beam (where known) and the observing
    frequency (under both names readers use)."""
    cards = {"BUNIT": ("JY/BEAM", "brightness unit")}
    if beam is not None:
        cards["BMAJ"] = (beam.bmaj_arcsec / 3600, "[deg] beam major axis FWHM")
        cards["BMIN"] = (beam.bmin_arcsec / 3600, "[deg] beam minor axis FWHM")
        cards["BPA"] = (beam.bpa_deg, "[deg] beam position angle")
    cards["RESTFRQ"] = (frequency_hz, "[Hz] observing frequency")
    cards["RESTFREQ"] = (frequency_hz, "[Hz] the same, the name PyBDSF reads")
    return cards


def write_physical_fits(path: str | os.PathLike, image01: np.ndarray, peak_flux: float, *,
                        min_flux: float = 0.0, pixel_scale_arcsec: float, beam: Beam | None,
                        frequency_hz: float, ra_deg: float = DEFAULT_RA_DEG,
                        dec_deg: float = DEFAULT_DEC_DEG, projection: str = "SIN",
                        extra: dict | None = None) -> Path:
    """Write a [0, 1] image in Jy/beam as FITS (atomically).

    Parameters
    ----------
    path : path
        Output file.
    image01 : ndarray, shape (ny, nx)
        Image in [0, 1] (a generated sample after clamping, Section 4.3). It is min-max scaled
        (Eq. 11) first, as every training image is, so the written maximum is exactly
        ``peak_flux`` and the minimum ``min_flux``.
    peak_flux : float
        f̂, the peak flux in Jy/beam: the image maximum after restoring (inverse of Eq. 11).
    min_flux : float
        The image minimum in Jy/beam (0 after the negative clipping of Section 3.1).
    pixel_scale_arcsec : float
        Pixel side in arcsec (1.5 for LoTSS, 1.8 for FIRST).
    beam : Beam or None
        Restoring beam (6″ for LoTSS, 5″ for FIRST); None where unknown (no beam cards).
    frequency_hz : float
        Observing frequency in Hz (written as ``RESTFRQ``; PyBDSF needs it).
    ra_deg, dec_deg : float
        Sky position of the image centre in degrees (ICRS).
    projection : {"SIN", "TAN"}
        WCS projection.
    extra : dict, optional
        Further header cards, e.g. ``{"SCLFLUX": (0.3, "Box-Cox scaled peak flux")}``.
    """
    image01 = np.asarray(image01, dtype=np.float64)
    if image01.ndim != 2:
        raise ValueError(f"expected a 2-d image, got shape {image01.shape}")
    if not (np.isfinite(image01).all() and image01.max() > image01.min()):
        raise ValueError("image01 must hold finite values, not all equal")
    image01 = (image01 - image01.min()) / (image01.max() - image01.min())       # Eq. (11)
    if not (np.isfinite(peak_flux) and peak_flux > min_flux):
        raise ValueError(f"peak flux {peak_flux} Jy/beam must be finite and above {min_flux}")
    if projection not in ("SIN", "TAN"):
        raise ValueError(f"projection must be 'SIN' or 'TAN', got {projection!r}")
    x = minmax_unscale(image01, peak_flux, min_flux).astype(np.float32)   # inverse of Eq. (11)
    header = sky_header(x.shape, pixel_scale_arcsec, ra_deg, dec_deg, projection)
    for key, value in physical_cards(beam, frequency_hz).items():
        header[key] = value
    header["DATAMAX"] = (float(x.max()), "[Jy/beam] peak flux")
    header["DATAMIN"] = (float(x.min()), "[Jy/beam]")
    header["ORIGIN"] = f"radiogen {__version__}"
    for key, value in (extra or {}).items():
        header[key] = value
    with atomic_path(path) as tmp:
        fits.PrimaryHDU(x, header).writeto(tmp)
    return Path(path)

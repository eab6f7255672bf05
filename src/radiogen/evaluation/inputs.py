"""Image sets to evaluate: an HDF5 store, a folder of FITS files, or a FIRST split, in one form.

Every source is read into an :class:`ImageSet`: images float32 (N, H, W) in [0, 1] (Eq. 11),
with class labels and scaled peak fluxes f̂_scaled (Eq. 12) where the source has them.

Accepted specifications (:func:`load_image_set`):

``path/to/set.h5``  an HDF5 store (:mod:`radiogen.data.store`): ``/images``, ``/labels``,
                    ``/scaled_flux`` and the beam / pixel-scale attributes.
``path/to/folder``  FITS files (``*.fits``, ``*.fit``, ``*.fits.gz``), each one image (H, W) or a
                    cube (N, H, W), as ``radiogen sample`` writes them. Class labels (index or
                    name from :data:`~radiogen.data.first.CLASSES`) come from a table HDU
                    ``LABELS`` with column ``LABEL`` (one row per cube image) or else header
                    keyword ``CLASS`` (every image of the file); ``SCLFLUX`` gives f̂_scaled;
                    ``PIXSCALE`` or ``CDELT2`` and ``BMAJ``/``BMIN``/``BPA`` the pixel scale and
                    beam. Images with a ``BUNIT`` (physical units, e.g.
                    Jy/beam) have negative pixels set to 0 and are min-max scaled (Eq. 11);
                    images without one must already lie in [0, 1].
``first:SPLIT``     a split (train, valid, test, all) of the bundled FIRST dataset.

Bad input is an error naming the set, never a silently wrong number: no images, images of
different sizes, NaN or infinite pixels, pixels outside [0, 1], labels out of range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radiogen.data.first import (CLASSES, FIRST_BEAM_ARCSEC, FIRST_FREQUENCY_HZ,
                                  FIRST_PIXEL_SCALE_ARCSEC)

__all__ = [
    "ImageSet",
    "image_set",
    "load_image_set",
    "check_compatible",
    "FITS_CLASS_KEY",
    "FITS_FLUX_KEY",
]

#: FITS header keyword holding the class (index or name) of the images in a file.
FITS_CLASS_KEY = "CLASS"
#: FITS header keyword holding the scaled peak flux f̂_scaled (Eq. 12) of a one-image file.
FITS_FLUX_KEY = "SCLFLUX"
_FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz")
_RANGE_TOLERANCE = 1e-5


@dataclass
class ImageSet:
    """Images of one set with their conditions.

    Attributes
    ----------
    images : ndarray, float32, shape (N, H, W)
        Pixel values in [0, 1] (Eq. 11).
    labels : ndarray, int64, shape (N,), or None
        Class index into :data:`~radiogen.data.first.CLASSES`.
    scaled_flux : ndarray, float64, shape (N,), or None
        Box-Cox standardised peak flux f̂_scaled (Eq. 12).
    names : list of str
        One name per image (file name, store row, ...).
    source : str
        Where the set came from, for messages and the report.
    attrs : dict
        Imaging metadata where known: ``pixel_scale_arcsec``, ``beam_bmaj_arcsec``,
        ``beam_bmin_arcsec``, ``beam_bpa_deg``, ``frequency_hz``.
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    scaled_flux: np.ndarray | None = None
    names: list[str] = field(default_factory=list)
    source: str = "images"
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int]:
        """Image size (H, W) in pixels."""
        return tuple(self.images.shape[1:])

    def subset(self, index) -> "ImageSet":
        """The images at ``index`` (an integer array or a boolean mask), conditions kept."""
        index = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index)
        pick = (lambda a: None if a is None else a[index])
        return ImageSet(self.images[index], pick(self.labels), pick(self.scaled_flux),
                        [self.names[i] for i in index], self.source, dict(self.attrs))

    def require_labels(self, metric: str) -> np.ndarray:
        """Class labels, or a ``ValueError`` saying that ``metric`` needs them."""
        if self.labels is None:
            raise ValueError(f"{self.source}: {metric} needs class labels, and this set has none "
                             f"(store column /labels or FITS keyword {FITS_CLASS_KEY})")
        return self.labels

    def require_scaled_flux(self, metric: str) -> np.ndarray:
        """Scaled peak fluxes, or a ``ValueError`` saying that ``metric`` needs them."""
        if self.scaled_flux is None:
            raise ValueError(f"{self.source}: {metric} needs the scaled peak flux, and this set "
                             f"has none (store column /scaled_flux or FITS keyword "
                             f"{FITS_FLUX_KEY})")
        return self.scaled_flux


def image_set(images, labels=None, scaled_flux=None, names=None, source: str = "images",
              attrs: dict | None = None) -> ImageSet:
    """Validate arrays and wrap them as an :class:`ImageSet`.

    Raises
    ------
    ValueError
        No images, not (N, H, W), NaN or infinite pixels, pixels outside [0, 1], labels out
        of range, or a condition with a different number of rows.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"{source}: images must have shape (N, H, W), got {images.shape}")
    if len(images) == 0:
        raise ValueError(f"{source}: the set is empty")
    bad = ~np.isfinite(images).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"{source}: {bad.sum()} image(s) hold NaN or infinite pixels "
                         f"(first at index {np.flatnonzero(bad)[0]})")
    lo, hi = float(images.min()), float(images.max())
    if lo < -_RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
        raise ValueError(f"{source}: pixel values span [{lo:.4g}, {hi:.4g}], not [0, 1]; "
                         "scale the images (Eq. 11) first")
    images = np.clip(images, 0, 1)
    labels = _check_column(labels, len(images), "labels", source, np.int64)
    if labels is not None and ((labels < 0) | (labels >= len(CLASSES))).any():
        raise ValueError(f"{source}: labels must be class indices 0..{len(CLASSES) - 1} "
                         f"({', '.join(CLASSES)})")
    scaled_flux = _check_column(scaled_flux, len(images), "scaled_flux", source, np.float64)
    if scaled_flux is not None and not np.isfinite(scaled_flux).all():
        raise ValueError(f"{source}: scaled_flux holds NaN or infinite values")
    names = [str(n) for n in names] if names is not None else [str(i) for i in range(len(images))]
    if len(names) != len(images):
        raise ValueError(f"{source}: {len(names)} names for {len(images)} images")
    return ImageSet(images, labels, scaled_flux, names, source, dict(attrs or {}))


def _check_column(values, n: int, name: str, source: str, dtype):
    if values is None:
        return None
    values = np.asarray(values, dtype=dtype).reshape(-1)
    if len(values) != n:
        raise ValueError(f"{source}: {len(values)} {name} for {n} images")
    return values


def check_compatible(*sets: ImageSet) -> None:
    """Raise ``ValueError`` unless every set has images of the same size."""
    shapes = {s.shape for s in sets}
    if len(shapes) > 1:
        listing = ", ".join(f"{s.source}: {s.shape[0]}×{s.shape[1]}" for s in sets)
        raise ValueError(f"image sets of different sizes cannot be compared ({listing})")


def load_image_set(spec: str | os.PathLike) -> ImageSet:
    """Read a store, a FITS folder or file, or ``first:SPLIT`` into an :class:`ImageSet`."""
    text = str(spec)
    if text.startswith("first:"):
        return _load_first(text.split(":", 1)[1])
    path = Path(spec)
    if path.is_dir():
        return _load_fits_files(sorted(p for p in path.iterdir() if _is_fits(p)), str(path))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such store, FITS file or folder")
    if _is_fits(path):
        return _load_fits_files([path], str(path))
    return _load_store(path)


def _is_fits(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(_FITS_SUFFIXES)


def _load_first(split: str) -> ImageSet:
    from radiogen.data.first import load_first

    first = load_first(split)
    attrs = {"pixel_scale_arcsec": FIRST_PIXEL_SCALE_ARCSEC, "beam_bmaj_arcsec": FIRST_BEAM_ARCSEC,
             "beam_bmin_arcsec": FIRST_BEAM_ARCSEC, "beam_bpa_deg": 0.0,
             "frequency_hz": FIRST_FREQUENCY_HZ}
    return image_set(first.images, first.labels, None, first.names, f"first:{split}", attrs)


def _load_store(path: Path) -> ImageSet:
    from radiogen.data.store import read_store
    from radiogen.data.transforms import clip_negative

    store = read_store(path)
    names = store.columns.get("names")
    attrs = {k: float(store.attrs[k]) for k in
             ("pixel_scale_arcsec", "beam_bmaj_arcsec", "beam_bmin_arcsec", "beam_bpa_deg",
              "frequency_hz") if k in store.attrs}
    labels = store.labels
    if labels is not None and store.class_names and tuple(store.class_names) != CLASSES:
        raise ValueError(f"{path}: class names {store.class_names} differ from {CLASSES}")
    # a store that kept the background noise for training is compared as the paper's (and the
    # samples') images are: negatives set to 0 (Section 3.1)
    return image_set(clip_negative(store.images), labels, store.scaled_flux,
                     None if names is None else list(names), str(path), attrs)


def _load_fits_files(paths: list[Path], source: str) -> ImageSet:
    if not paths:
        raise ValueError(f"{source}: no FITS files (*.fits, *.fit, *.fits.gz) found")
    images, labels, fluxes, names, attrs, rejected = [], [], [], [], {}, []
    for path in paths:
        try:
            cube, file_labels, header = _read_fits_images(path)
        except ValueError as err:
            rejected.append(f"{path.name}: {str(err).removeprefix(f'{path}: ')}")
            continue
        images.extend(cube)
        labels.extend(file_labels)
        flux = header.get(FITS_FLUX_KEY)
        fluxes.extend([None if flux is None else float(flux)] * len(cube))
        names.extend([path.name] if len(cube) == 1 else
                     [f"{path.name}[{i}]" for i in range(len(cube))])
        attrs = attrs or _fits_attrs(header)
    if rejected:
        raise ValueError(f"{source}: {len(rejected)} of {len(paths)} FITS files cannot be used: "
                         + "; ".join(rejected))
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"{source}: FITS images of different sizes {sorted(shapes)}")
    return image_set(np.stack(images), _all_or_none(labels, source, FITS_CLASS_KEY),
                     _all_or_none(fluxes, source, FITS_FLUX_KEY), names, source, attrs)


def _read_fits_images(path: Path):
    """(images in [0, 1], one class label or None per image, header) of one file."""
    data, header, table_labels = _read_fits(path)
    cube = data if data.ndim == 3 else data[None]
    images = _fits_to_unit(cube, header, path)
    if table_labels is not None:
        if len(table_labels) != len(cube):
            raise ValueError(f"{path}: {len(table_labels)} labels for {len(cube)} images")
        return images, [_class_index(v, path) for v in table_labels], header
    return images, [_class_index(header.get(FITS_CLASS_KEY), path)] * len(cube), header


def _read_fits(path: Path):
    from astropy.io import fits

    try:
        # our own handle, closed whatever astropy raises (it leaks its own on some bad files)
        with open(path, "rb") as handle, fits.open(handle, memmap=False) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.is_image), None)
            if hdu is None:
                raise ValueError(f"{path}: no image data in any HDU")
            data, header = np.asarray(hdu.data, dtype=np.float64), hdu.header.copy()
            table = hdul["LABELS"].data if "LABELS" in hdul else None
            table_labels = None if table is None else [str(v).strip() for v in table["LABEL"]]
    except ValueError:
        raise
    except Exception as err:  # OSError, TypeError, KeyError… for content that is not FITS
        raise ValueError(f"{path}: not a readable FITS file ({' '.join(str(err).split())})") \
            from None
    data = data.reshape([n for i, n in enumerate(data.shape) if n > 1 or i >= data.ndim - 2])
    if data.ndim not in (2, 3):
        raise ValueError(f"{path}: expected an image (H, W) or a cube (N, H, W), "
                         f"got shape {data.shape}")
    return data, header, table_labels


def _fits_to_unit(cube: np.ndarray, header, path: Path) -> list[np.ndarray]:
    if not np.isfinite(cube).all():
        raise ValueError(f"{path}: holds NaN or infinite pixels")
    if str(header.get("BUNIT", "")).strip():  # physical units: Section 3.1 preprocessing
        from radiogen.data.transforms import minmax_scale

        return list(minmax_scale(np.clip(cube, 0, None)))
    if cube.min() < -_RANGE_TOLERANCE or cube.max() > 1 + _RANGE_TOLERANCE:
        raise ValueError(f"{path}: pixel values outside [0, 1] and no BUNIT keyword to say "
                         "they are physical; scale them (Eq. 11) or set BUNIT")
    return list(cube.astype(np.float32))


def _class_index(value, path: Path):
    if value is None:
        return None
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        if value.strip() not in CLASSES:
            raise ValueError(f"{path}: class {value!r} is not one of {CLASSES}")
        return CLASSES.index(value.strip())
    return int(value)


def _fits_attrs(header) -> dict:
    attrs = {}
    if "PIXSCALE" in header:
        attrs["pixel_scale_arcsec"] = float(header["PIXSCALE"])
    elif "CDELT2" in header:
        attrs["pixel_scale_arcsec"] = abs(float(header["CDELT2"])) * 3600
    for key, name, scale in (("BMAJ", "beam_bmaj_arcsec", 3600), ("BMIN", "beam_bmin_arcsec", 3600),
                             ("BPA", "beam_bpa_deg", 1)):
        if key in header:
            attrs[name] = float(header[key]) * scale
    from radiogen.data.fits_io import header_frequency
    frequency = header_frequency(header)
    if frequency is not None:
        attrs["frequency_hz"] = frequency
    return attrs


def _all_or_none(values: list, source: str, key: str):
    given = [v is not None for v in values]
    if all(given):
        return np.asarray(values)
    if any(given):
        raise ValueError(f"{source}: {sum(given)} of {len(values)} images carry {key}; "
                         "give it for all or none")
    return None

"""The FIRST labelled radio-galaxy dataset of Griese et al. (2023) (Section 3.2).

The 2158 PNG images (300×300 px, 8 bit) are read straight from the zip archive: a copy ships
with radiogen, and :func:`download_first` fetches the same archive from Zenodo for users who want
it elsewhere. Each image is cropped to its central 80×80 pixels and min-max scaled to [0, 1]
(Eq. 11).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from radiogen.data.store import write_store
from radiogen.data.transforms import center_crop, minmax_scale

__all__ = [
    "CLASSES",
    "FIRST_SPLITS",
    "FIRST_URLS",
    "FIRST_SHA256",
    "FirstImages",
    "bundled_first_zip",
    "download_first",
    "load_first",
    "undersample_indices",
    "inverse_frequency_weights",
    "write_first_store",
]

#: Class names in the label order of Griese et al. (FRI=0, FRII=1, Compact=2, Bent=3).
CLASSES = ("FRI", "FRII", "Compact", "Bent")
FIRST_SPLITS = ("train", "valid", "test", "all")
#: Where users with internet get the archive: Zenodo record 7351724 (cited by the paper), with
#: record 7689127 of the same authors as a mirror.
FIRST_URLS = (
    "https://zenodo.org/records/7351724/files/galaxy_data.zip?download=1",
    "https://zenodo.org/records/7689127/files/galaxy_data.zip?download=1",
)
#: SHA-256 of the archive as published (and as bundled).
FIRST_SHA256 = "d04a5d45a7a84989e9aed31da8a0adb0a9cce3252bce92ed7585efbc8c24f42a"
#: FIRST pixel scale, restoring beam and observing frequency (Becker et al. 1995).
FIRST_PIXEL_SCALE_ARCSEC = 1.8
FIRST_BEAM_ARCSEC = 5.0
FIRST_FREQUENCY_HZ = 1.4e9


@dataclass
class FirstImages:
    """Images of one FIRST split.

    Attributes
    ----------
    images : ndarray, float32, shape (N, H, W)
        Central crops min-max scaled to [0, 1] (Eq. 11).
    labels : ndarray, int64, shape (N,)
        Class index into :data:`CLASSES`.
    names : list of str
        File names inside the archive (``RA_DEC_LABEL_CATALOG.png``).
    n_empty : int
        Images dropped because their crop held a single value (nothing to scale).
    """

    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    n_empty: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "FirstImages":
        return FirstImages(self.images[index], self.labels[index], [self.names[i] for i in index])


def bundled_first_zip() -> Path:
    """Path of the FIRST archive that ships with radiogen."""
    return Path(str(resources.files("radiogen") / "datasets" / "first" / "galaxy_data.zip"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_first(dest: str | os.PathLike, urls: tuple[str, ...] = FIRST_URLS,
                   sha256: str | None = FIRST_SHA256, timeout: float = 60.0) -> Path:
    """Download the FIRST archive to ``dest`` (a file path), trying each URL in turn.

    The file is written to a temporary name and renamed only once complete and, when ``sha256``
    is given, verified; an existing file with the right checksum is kept as it is.
    """
    dest = Path(dest)
    if dest.exists() and (sha256 is None or _sha256(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc="FIRST dataset") as bar:
                    for block in iter(lambda: response.read(1 << 16), b""):
                        out.write(block)
                        bar.update(len(block))
            if sha256 is not None and (got := _sha256(Path(tmp))) != sha256:
                raise OSError(f"checksum mismatch: expected {sha256}, got {got}")
            os.replace(tmp, dest)
            return dest
        except OSError as err:  # URLError and HTTPError are OSErrors
            errors.append(f"{url}: {err}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise OSError("could not download the FIRST dataset:\n  " + "\n  ".join(errors))


def load_first(split: str = "train", zip_path: str | os.PathLike | None = None,
               size: int = 80, drop_empty: bool = True) -> FirstImages:
    """Read one published split of the FIRST dataset from its zip archive.

    Parameters
    ----------
    split : {"train", "valid", "test", "all"}
        The published split (Griese et al. 2023); ``"all"`` is every image.
    zip_path : path, optional
        The archive; the bundled copy by default.
    size : int
        Side of the central crop in pixels (80 in the paper).
    drop_empty : bool
        Drop crops that hold a single value (three in the archive): min-max scaling leaves
        nothing of them. Their number is kept in ``n_empty``.
    """
    if split not in FIRST_SPLITS:
        raise ValueError(f"unknown FIRST split {split!r}; choose one of {FIRST_SPLITS}")
    zip_path = Path(zip_path) if zip_path is not None else bundled_first_zip()
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{zip_path}: not a readable zip archive ({err})") from None
    images, labels, names, n_empty = [], [], [], 0
    with archive:
        members = sorted(n for n in archive.namelist()
                         if n.lower().endswith(".png") and n.split("/")[-3:-2] == [split])
        if not members:
            raise ValueError(f"{zip_path}: no PNG images under galaxy_data/{split}/<class>/")
        for name in members:
            class_name = name.split("/")[-2]
            if class_name not in CLASSES:
                raise ValueError(f"{zip_path}: {name} lies in an unknown class folder {class_name!r}")
            try:
                pixels = np.asarray(Image.open(io.BytesIO(archive.read(name))).convert("L"),
                                    dtype=np.float32)
            except OSError as err:
                raise ValueError(f"{zip_path}: {name} is not a readable PNG ({err})") from None
            crop = center_crop(pixels, size)
            if drop_empty and crop.max() == crop.min():
                n_empty += 1
                continue
            images.append(minmax_scale(crop))
            labels.append(CLASSES.index(class_name))
            names.append(name.split("/")[-1])
    return FirstImages(np.stack(images), np.asarray(labels, dtype=np.int64), names, n_empty)


def undersample_indices(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random undersampling: keep as many images of every class as the smallest class has."""
    classes, counts = np.unique(labels, return_counts=True)
    keep = [rng.choice(np.flatnonzero(labels == c), size=counts.min(), replace=False)
            for c in classes]
    return np.sort(np.concatenate(keep))


def inverse_frequency_weights(labels: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    """Per-class loss weights proportional to the reciprocal class frequency, mean 1 per image."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / np.maximum(counts, 1) / n_classes, 0.0)
    return weights.astype(np.float32)


def write_first_store(out: str | os.PathLike, split: str = "train",
                      zip_path: str | os.PathLike | None = None, size: int = 80,
                      overwrite: bool = False) -> Path:
    """Write one split of the FIRST dataset as an HDF5 store (kind "class", Section 3.2).

    Images are the :func:`load_first` crops in [0, 1] (Eq. 11), with ``/labels``, ``/names``
    and the attributes ``class_names``, the FIRST pixel scale (1.8″) and beam (5″).
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: already exists (pass overwrite=True / --overwrite to replace it)")
    first = load_first(split, zip_path, size=size)
    attrs = {"kind": "class", "class_names": list(CLASSES),
             "pixel_scale_arcsec": FIRST_PIXEL_SCALE_ARCSEC, "beam_bmaj_arcsec": FIRST_BEAM_ARCSEC,
             "beam_bmin_arcsec": FIRST_BEAM_ARCSEC, "beam_bpa_deg": 0.0,
             "frequency_hz": FIRST_FREQUENCY_HZ,
             "cutout_size": size,
             "settings": {"split": split, "size": size, "zip": str(zip_path or bundled_first_zip())},
             "selection_report": {"notes": [f"{first.n_empty} constant crops dropped"]}}
    return write_store(out, first.images, {"labels": first.labels, "names": np.array(first.names)},
                       attrs)

"""A folder of finished PyBDSF fits, so that no image is fitted twice.

PyBDSF takes about a second per image and core, the longest part of ``radiogen evaluate``. Each
finished chunk of images is saved at once (atomically, ``.npz``, no pickles) under a key of the
PyBDSF settings and seed; an image is found again by a digest of its pixels. So a rerun with the
same images and PyBDSF settings but other options (another classifier, no memorisation check,
another held-out set, a larger ``--pybdsf-limit``) fits only the images it has not seen, and an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from radiogen.atomic import atomic_path

__all__ = ["image_digest", "noise_seed", "FitCache"]

#: One fit: (model image or None, number of Gaussians, failure reason or None).
Fit = tuple


def image_digest(image: np.ndarray) -> str:
    """A digest of an image's float32 pixels and shape."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    return hashlib.sha256(repr(image.shape).encode() + image.tobytes()).hexdigest()[:32]


def noise_seed(digest: str, seed: int) -> int:
    """The seed of an image's noise floor: from its pixels and the run's seed, so that a fit
    does not depend on the image's place in the set, the set, or the number of workers."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{digest}".encode()).digest()[:8], "little") >> 2


class FitCache:
    """Fits saved in ``folder/<key of settings and seed>/``; ``folder`` None keeps nothing."""

    def __init__(self, folder, settings, seed: int):
        key = hashlib.sha256(json.dumps([dataclasses.asdict(settings), seed], sort_keys=True,
                                        default=str).encode()).hexdigest()[:16]
        self.folder = None if folder is None else Path(folder) / key

    def load(self) -> dict[str, Fit]:
        """Every saved fit by image digest (unreadable files are skipped: redone)."""
        fits: dict[str, Fit] = {}
        if self.folder is None or not self.folder.is_dir():
            return fits
        for path in sorted(self.folder.glob("*.npz")):
            try:
                with np.load(path, allow_pickle=False) as npz:
                    for d, m, n, r in zip(npz["digests"], npz["models"], npz["n_gaussians"],
                                          npz["reasons"]):
                        fits[str(d)] = (m if n > 0 else None, int(n), str(r) or None)
            except (OSError, ValueError, KeyError):
                continue
        return fits

    def save(self, digests: list[str], fits: list[Fit], shape: tuple[int, int]) -> None:
        """Keep the fits of one finished chunk."""
        if self.folder is None or not digests:
            return
        models = np.stack([np.zeros(shape, np.float32) if m is None else m for m, _, _ in fits])
        name = hashlib.sha256("".join(digests).encode()).hexdigest()[:20]
        with atomic_path(self.folder / f"{name}.npz") as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, digests=np.array(digests), models=models,
                                n_gaussians=np.array([n for _, n, _ in fits], np.int64),
                                reasons=np.array([r or "" for _, _, r in fits]))

"""Writing generated images: FITS (a cube or one file per image, with a header that says how
they were made), a PNG grid for a quick look, and NumPy / HDF5 files for bulk use.

astropy is imported by the FITS writers only, so that the PNG grid works where it is missing
(the GPU image of scripts/gpu_oneshot.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radiogen import __version__
from radiogen.atomic import atomic_path

__all__ = ["provenance_cards", "write_fits_cube", "write_fits_images", "write_png_grid",
           "write_png_image", "write_npy", "write_h5"]


def provenance_cards(model_name: str, kind: str, sampler: str, steps: int, guidance: float,
                     seed: int, pixel_scale_arcsec: float | None = None,
                     beam_arcsec=None, guidance_interval=None,
                     distilled_guidance: float = 0.0, background_clip: float = 0.0,
                     churn: float = 0.0, class_guidance: dict | None = None) -> list[tuple]:
    """FITS cards recording the model, conditioning, sampler (and S_churn of the stochastic
    one), ω (and its σ interval, or the ω distilled into a consistency model; with
    ``class_guidance``, class name → ω, the classes guided otherwise than ``guidance``), steps,
    seed and the background clip."""
    cards = [("ORIGIN", "radiogen", "diffusion-model simulation"),
             ("RGVERS", __version__, "radiogen version"),
             ("RGMODEL", str(model_name)[-40:], "model"),
             ("RGKIND", kind, "context: class label or scaled peak flux"),
             ("SAMPLER", sampler, "solver (Heun = paper Algorithm 1)"),
             ("STEPS", int(steps), "number of noise levels N (Eq. 25)"),
             ("OMEGA", float(guidance), "classifier-free guidance strength"),
             ("SEED", int(seed), "noise seed of image 0 (image k: SEED+k)")]
    other = {name: w for name, w in (class_guidance or {}).items() if w != float(guidance)}
    if other:
        cards.append(("OMEGACLS", ",".join(f"{name}={w:g}" for name, w in other.items()),
                      "omega of these classes instead of OMEGA"))
    if guidance_interval is not None and tuple(guidance_interval) != (0, float("inf")):
        cards += [("OMEGASLO", float(guidance_interval[0]), "guidance only for SLO < sigma <= SHI"),
                  ("OMEGASHI", float(guidance_interval[1]), "upper end of the guidance interval")]
    if churn:
        cards.append(("SCHURN", float(churn), "stochastic sampler: S_churn (EDM Algorithm 2)"))
    if distilled_guidance:
        cards.append(("OMEGADST", float(distilled_guidance), "guidance distilled into the model"))
    if background_clip:
        cards.append(("BGCLIP", float(background_clip), "scaled pixels < BGCLIP set to 0, rest stretched"))
    if pixel_scale_arcsec:
        cards.append(("PIXSCALE", float(pixel_scale_arcsec), "[arcsec] pixel scale of training data"))
    if beam_arcsec is not None and beam_arcsec[0]:
        cards += [("BMAJ", beam_arcsec[0] / 3600, "[deg] restoring beam of training data"),
                  ("BMIN", beam_arcsec[1] / 3600, "[deg]"), ("BPA", beam_arcsec[2], "[deg]")]
    return cards


def guidance_cards(guide_model=None, autoguidance: float = 0.0, guide_classifier=None,
                   classifier_scale: float = 0.0) -> list[tuple]:
    """FITS cards for autoguidance and classifier guidance (none when they are off)."""
    cards = []
    if autoguidance:
        cards += [("AGMODEL", Path(str(guide_model)).name[-40:], "autoguidance: guide model"),
                  ("OMEGAAG", float(autoguidance), "autoguidance strength")]
    if classifier_scale:
        cards += [("CGMODEL", Path(str(guide_classifier)).name[-40:], "classifier guidance: classifier"),
                  ("CGSCALE", float(classifier_scale), "classifier guidance scale")]
    return cards


def condition_cards(conditions, values: dict, drawn=()) -> list[dict]:
    """Per-image FITS cards recording every condition of a property model: ``HIERARCH RG
    <NAME>`` = the value in the column's unit, or ``free`` where it was left to the model;
    the comment gives the unit and says whether it was asked for or drawn from the training
    sources."""
    n = len(next(iter(values.values()))) if values else 0
    cards = [{} for _ in range(n)]
    for c in conditions:
        unit = f"[{c.unit}] " if c.unit else ""
        for k in range(n):
            key = f"HIERARCH RG {c.name.upper()}"
            if c.name in values:
                how = "drawn" if c.name in drawn else "asked"
                cards[k][key] = (float(values[c.name][k]), f"{unit}{how}")
            else:
                cards[k][key] = ("free", f"{unit}not given")
    return cards


def write_fits_cube(path, images: np.ndarray, cards: list[tuple], labels=None) -> Path:
    """All images in one FITS cube (NAXIS3 = image index); per-image labels in a table HDU."""
    from astropy.io import fits
    hdu = fits.PrimaryHDU(images.astype(np.float32))
    for card in cards:
        hdu.header[card[0]] = card[1:]
    hdu.header["COMMENT"] = "Pixel values min-max scaled to [0, 1] (paper Eq. 11) unless BUNIT says otherwise."
    hdus = [hdu]
    if labels is not None:
        hdus.append(fits.BinTableHDU.from_columns(
            [fits.Column(name="LABEL", format="16A", array=np.asarray(labels, dtype=str))], name="LABELS"))
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return Path(path)


def write_fits_images(folder, images: np.ndarray, cards: list[tuple], labels=None,
                      prefix: str = "sample", first_seed: int = 0,
                      image_cards: list[dict] | None = None) -> list[Path]:
    """One FITS file per image, each with its own SEED (and CLASS) card, and the cards of
    ``image_cards[k]`` (keyword → (value, comment)) on image k."""
    from astropy.io import fits
    folder = Path(folder)
    paths = []
    for k, image in enumerate(images):
        hdu = fits.PrimaryHDU(image.astype(np.float32))
        for card in cards:
            hdu.header[card[0]] = card[1:]
        hdu.header["SEED"] = (first_seed + k, "noise seed of this image")
        if labels is not None:
            hdu.header["CLASS"] = (str(labels[k]), "morphological class asked for")
        for key, value in (image_cards[k] if image_cards else {}).items():
            hdu.header[key] = value
        path = folder / f"{prefix}_{k:05d}.fits"
        with atomic_path(path) as tmp:
            hdu.writeto(tmp)
        paths.append(path)
    return paths


#: Images shown at most in a PNG grid (a quick look; the FITS files hold every image).
PNG_GRID_MAX = 64


def write_png_grid(path, images: np.ndarray, ncols: int | None = None, cmap: str = "inferno",
                   titles=None, max_images: int = PNG_GRID_MAX, zoom: int = 2) -> Path:
    """A grid of the first ``max_images`` images for a quick look: each scaled from 0 to its
    own maximum, coloured by ``cmap``, enlarged ``zoom`` times, row 0 at the bottom (FITS
    order), with an optional title above it. Drawn with Pillow (with a matplotlib colour map),
    which takes a fraction of the time a matplotlib figure takes to import and render."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw, ImageFont
    images = np.asarray(images[:max_images], dtype=np.float32)
    titles = None if titles is None else [str(t) for t in list(titles)[:max_images]]
    n, h, w = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    gap, title_h = 4, (14 if titles is not None else 0)
    cell_h, cell_w = zoom * h + title_h + gap, zoom * w + gap
    grid = np.full((nrows * cell_h + gap, ncols * cell_w + gap, 3), 255, dtype=np.uint8)
    peak = np.maximum(images.reshape(n, -1).max(axis=1), 1e-12)[:, None, None]
    rgb = (colormaps[cmap](np.clip(images / peak, 0, 1))[..., :3] * 255).astype(np.uint8)
    rgb = rgb[:, ::-1].repeat(zoom, axis=1).repeat(zoom, axis=2)    # origin lower, enlarged
    for k in range(n):
        top, left = (k // ncols) * cell_h + gap + title_h, (k % ncols) * cell_w + gap
        grid[top:top + zoom * h, left:left + zoom * w] = rgb[k]
    picture = Image.fromarray(grid)
    if titles is not None:
        draw, font = ImageDraw.Draw(picture), ImageFont.load_default()
        for k, title in enumerate(titles):
            draw.text(((k % ncols) * cell_w + gap, (k // ncols) * cell_h + gap), title,
                      fill=(0, 0, 0), font=font)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
    return Path(path)


def write_png_image(path, image: np.ndarray, cmap: str = "inferno") -> Path:
    """One sky image as a PNG for a quick look: an asinh stretch from 3σ below the background
    (sigma-clipped median and σ) to the maximum, softened so that the noise fills the lowest
    fifth of the colour map and faint sources stand out beside bright ones; row 0 at the
    bottom (FITS order); NaN pixels white."""
    from astropy.stats import sigma_clipped_stats
    from astropy.visualization import AsinhStretch, ImageNormalize
    from matplotlib import colormaps
    from PIL import Image
    image = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(image)
    if not finite.any():
        raise ValueError("the image holds no finite pixels")
    values = image[finite]
    _, median, sigma = sigma_clipped_stats(values[:: max(1, values.size // 1_000_000)])
    low, high = median - 3 * sigma, float(values.max())
    if not high > low:
        high = low + 1.0
    # asinh(x/a) is linear below a: put a at the noise's top (6σ of the range), log above it
    a = float(np.clip(6 * sigma / (high - low), 1e-4, 1.0))
    norm = ImageNormalize(vmin=low, vmax=high, stretch=AsinhStretch(a), clip=True)
    scaled = np.asarray(norm(np.where(finite, image, low)))
    rgb = (colormaps[cmap](scaled)[..., :3] * 255).astype(np.uint8)
    rgb[~finite] = 255
    with atomic_path(path) as tmp:
        Image.fromarray(rgb[::-1]).save(tmp, format="PNG")
    return Path(path)


def write_npy(path, images: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, images.astype(np.float32))
    return Path(path)


def write_h5(path, images: np.ndarray, columns: dict | None = None, attrs: dict | None = None) -> Path:
    """Generated images (and their labels or fluxes) as a radiogen HDF5 store, readable by
    ``radiogen evaluate``."""
    from radiogen.data.store import write_store   # h5py loads only when asked for
    return write_store(path, images, columns, attrs)

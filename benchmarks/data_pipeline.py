"""Data-pipeline throughput: cut-outs per second from a large synthetic memory-mapped mosaic with
a catalog of sources, selection cuts (Table 1) and preprocessing included, for several numbers
of worker processes, printed side by side. Also the cost of one cut-out and of judging it.

The mosaic (float32, SIN projection, 1.5″ pixels, Gaussian noise of 0.1 mJy/beam, Gaussian sources
of a 6″ beam with log-uniform peaks of 0.2–50 mJy/beam) is written block by block to a temporary
file, so it needs no more memory than one block. It stays in the page cache when memory allows:
the figures are CPU-bound rates, not disk rates.

    python benchmarks/data_pipeline.py                             # 20000² px, 10⁴ sources
    python benchmarks/data_pipeline.py --pixels 4000 --sources 1000 --workers 1 2
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from radiogen.data.cutouts import cutout
from radiogen.data.fits_io import read_fits_image
from radiogen.data.pipeline import PipelineSettings, build_lotss_store
from radiogen.data.selection import SelectionSettings, judge

PIXEL_ARCSEC, BEAM_ARCSEC, NOISE = 1.5, 6.0, 1e-4
SIGMA_PX = BEAM_ARCSEC / PIXEL_ARCSEC / (2 * np.sqrt(2 * np.log(2)))


def _header(n: int) -> fits.Header:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crpix = [n / 2, n / 2]
    w.wcs.crval = [180.0, 50.0]
    w.wcs.cdelt = [-PIXEL_ARCSEC / 3600, PIXEL_ARCSEC / 3600]
    header = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2), ("NAXIS1", n),
                          ("NAXIS2", n)])
    header.update(w.to_header())
    header.update({"BUNIT": "JY/BEAM", "BMAJ": BEAM_ARCSEC / 3600, "BMIN": BEAM_ARCSEC / 3600,
                   "BPA": 0.0, "RESTFRQ": 1.44e8})
    return header


def write_mosaic(path: Path, n: int, x, y, peaks, rng, block: int = 1024) -> None:
    """Noise plus Gaussian sources, written block by block through a memory map."""
    head = _header(n).tostring().encode()
    data_bytes = n * n * 4
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + data_bytes + (-data_bytes) % 2880)   # FITS blocks of 2880 bytes
    mosaic = np.memmap(path, dtype=">f4", mode="r+", offset=len(head), shape=(n, n))
    r = int(np.ceil(5 * SIGMA_PX))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    for top in range(0, n, block):
        rows = slice(top, min(top + block, n))
        tile = NOISE * rng.standard_normal((rows.stop - rows.start, n), dtype=np.float32)
        for i in np.flatnonzero((y >= top - r) & (y < rows.stop + r)):
            cx, cy = int(round(x[i])), int(round(y[i]))
            stamp = peaks[i] * np.exp(-((xx + cx - x[i]) ** 2 + (yy + cy - y[i]) ** 2) / (2 * SIGMA_PX ** 2))
            y0, y1 = max(cy - r, rows.start), min(cy + r + 1, rows.stop)
            x0, x1 = max(cx - r, 0), min(cx + r + 1, n)
            if y0 < y1 and x0 < x1:
                tile[y0 - top:y1 - top, x0:x1] += stamp[y0 - cy + r:y1 - cy + r, x0 - cx + r:x1 - cx + r]
        mosaic[rows] = tile
    mosaic.flush()
    del mosaic


def write_catalog(path: Path, wcs: WCS, x, y) -> None:
    ra, dec = wcs.pixel_to_world_values(x, y)
    with open(path, "w") as f:
        f.write("Source_Name,RA,DEC\n")
        for i, (a, d) in enumerate(zip(ra, dec)):
            f.write(f"S{i:06d},{a:.8f},{d:.8f}\n")


def per_cutout_costs(mosaic: Path, x, y, size: int, n: int = 300) -> tuple[float, float]:
    """Milliseconds per cut-out (Cutout2D on the memory map) and per judgement (Table-1 cuts)."""
    settings = SelectionSettings()
    with read_fits_image(mosaic, memmap=True) as image:
        t = time.perf_counter()
        cuts = [cutout(image, x[i], y[i], size) for i in range(n)]
        t_cut = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for c in cuts:
            judge(c.data, c.inside, settings)
        t_judge = (time.perf_counter() - t) / n
    return 1e3 * t_cut, 1e3 * t_judge


def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        name = names[0] if names else name
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} CPUs"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pixels", type=int, default=20000, help="mosaic side in pixels (default 20000)")
    p.add_argument("--sources", type=int, default=10000, help="catalog sources (default 10⁴)")
    p.add_argument("--size", type=int, default=80, help="cut-out side in pixels (default 80)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    p.add_argument("--chunk-size", type=int, default=500, help="sources per unit of work")
    p.add_argument("--dir", type=Path, help="where to write the mosaic (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    rng = np.random.default_rng(args.seed)
    n = args.pixels
    x, y = rng.uniform(-20, n + 20, args.sources), rng.uniform(-20, n + 20, args.sources)
    peaks = 10 ** rng.uniform(np.log10(2e-4), np.log10(5e-2), args.sources)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        (tmp / "mosaics").mkdir()
        mosaic = tmp / "mosaics" / "B1-mosaic.fits"
        t = time.perf_counter()
        write_mosaic(mosaic, n, x, y, peaks, rng)
        write_catalog(tmp / "catalog.csv", WCS(_header(n)), x, y)
        t_write = time.perf_counter() - t
        gb = mosaic.stat().st_size / 1e9
        print(f"data pipeline on {machine()}: mosaic {n}×{n} px float32 ({gb:.2f} GB, written in "
              f"{t_write:.1f} s), {args.sources} catalog sources, {args.size}×{args.size} px cut-outs")
        inside = (x > -0.5) & (x < n - 0.5) & (y > -0.5) & (y < n - 0.5)
        ms_cut, ms_judge = per_cutout_costs(mosaic, x[inside], y[inside], args.size)
        print(f"one process: {ms_cut:.3f} ms per cut-out (Cutout2D, memory map), "
              f"{ms_judge:.3f} ms per judgement (Table-1 cuts, S/N_σ)")
        print(f"{'workers':>8} {'cut-outs':>9} {'selected':>9} {'seconds':>8} {'cut-outs/s':>11}")
        for workers in args.workers:
            out = tmp / f"store-{workers}.h5"
            t = time.perf_counter()
            result = build_lotss_store(tmp / "mosaics", tmp / "catalog.csv", out,
                                       PipelineSettings(size=args.size, chunk_size=args.chunk_size),
                                       workers=workers, progress=False, resume=False)
            seconds = time.perf_counter() - t
            n_cut = result.report.n_cutouts
            print(f"{workers:>8} {n_cut:>9} {result.n_images:>9} {seconds:>8.2f} {n_cut / seconds:>11.0f}")
        print("Selection (last run):")
        print(result.report.format())


if __name__ == "__main__":
    main()

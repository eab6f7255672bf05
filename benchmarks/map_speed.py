"""Survey-map speed: sources per second and megapixels per second of ``radiogen.api.make_map``
for the bundled models, printed side by side.

Each model makes one map of ``--size`` pixels with ``--n`` drawn sources (power-law peak
fluxes, the models' default sampler settings) over beam-correlated noise; a map with noise
and no sources gives the cost of the pixels alone (noise, FITS writing, preview). Sampling
dominates: a source costs its network passes (13 for first-class, 30 for first-flux by
default), so sources/s is about the sampling rate of ``benchmarks/sampling_throughput.py``.

    python benchmarks/map_speed.py --n 200 --size 2048
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from _bench import machine, print_table
from radiogen import api


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["first-class", "first-flux"])
    p.add_argument("--n", type=int, default=100, help="sources per map (default 100)")
    p.add_argument("--size", type=int, default=2048, help="map side in pixels (default 2048)")
    p.add_argument("--tile", type=int, default=1024, help="tile side in pixels")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine('cpu')}; map {args.size}² px, {args.n} sources, tile {args.tile}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="radiogen-map-bench-") as folder:
        for name in args.models:
            model = api.load_model(name)
            for n in (0, args.n):
                result = api.make_map(Path(folder) / f"{name}-{n}.fits", model, n_sources=n,
                                      counts="powerlaw", size=(args.size, args.size),
                                      tile=args.tile, progress=False)
                rows.append({"model": name, "sources": n, "seconds": f"{result.seconds:.1f}",
                             "sources/s": f"{result.sources_per_second:.2f}" if n else "-",
                             "Mpx/s": f"{result.megapixels_per_second:.2f}"})
    print_table(rows, ["model", "sources", "seconds", "sources/s", "Mpx/s"])


if __name__ == "__main__":
    main()

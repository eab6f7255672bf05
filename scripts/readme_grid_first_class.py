"""The README's grid of first-class images: 6 per class from the bundled model with the default
sampler (seed 0, image k of class c from seed 6c + k), one row per class, as
docs/first-class-generated.png; with --real also the first 6 per class of the FIRST test split as
docs/first-test-real.png.

    python scripts/readme_grid_first_class.py [--model first-class] [--real]
"""

from __future__ import annotations

import argparse

from radiogen import api
from radiogen.data.first import CLASSES, load_first
from radiogen.evaluation.figures import image_grid_figure

N = 6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="first-class")
    p.add_argument("--out", default="docs/first-class-generated.png")
    p.add_argument("--real", action="store_true", help="also write docs/first-test-real.png")
    args = p.parse_args()
    model = api.load_model(args.model)
    rows = {name: api.sample(model, N, class_label=name, seed=N * c, progress=False)
            for c, name in enumerate(CLASSES)}
    print("wrote", image_grid_figure(rows, args.out, n=N))
    if args.real:
        test = load_first("test")
        rows = {name: test.images[test.labels == c][:N] for c, name in enumerate(CLASSES)}
        print("wrote", image_grid_figure(rows, "docs/first-test-real.png", n=N))


if __name__ == "__main__":
    main()

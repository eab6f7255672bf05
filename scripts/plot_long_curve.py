"""The training curve of a long run (issue 13): accuracy and radio Fréchet distance against
images seen, from `benchmarks/class_realism.py` results of several points of the run.

    python scripts/plot_long_curve.py \
        --point 112000=runs/trials/sel64/results.json:shipped \
        --point 240000=runs/trials/sel64/l4000/results.json:long4000 \
        --csv docs/first-class-long-curve.csv --png docs/first-class-long-curve.png

Each --point is IMAGES=RESULTS_JSON:LABEL (images seen by those weights; the setting's label in
that results file). Every seed set and classifier of the point becomes one CSV row; the figure
shows each classifier's mean over seed sets with the single sets as dots. Points must share the
reference images and the number per class, or the figures are not comparable (checked).

``--keep CSV`` starts from the rows of an earlier table of the same protocol (its results files
may be gone, as run folders are lost between sittings) and adds the new points to it:

    python scripts/plot_long_curve.py --keep docs/first-class-long-curve.csv \
        --point 300000=runs/trials/sel64/l875/results.json:long875 \
        --csv docs/first-class-long-curve.csv --png docs/first-class-long-curve.png
"""

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from radiogen.atomic import atomic_path  # noqa: E402

FIELDS = ["images_seen", "label", "seed", "classifier", "accuracy", "recall_fri", "recall_frii",
          "recall_compact", "recall_bent", "rfd", "w1_mean", "w1_std"]


def parse_point(text):
    images, _, rest = text.partition("=")
    path, _, label = rest.rpartition(":")
    if not images.isdigit() or not path or not label:
        raise SystemExit(f"--point {text!r}: expected IMAGES=RESULTS_JSON:LABEL")
    return int(images), Path(path), label


def rows_of(images, path, label):
    """(reference and n per class of the results file, one row per seed set and classifier)."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: cannot read class_realism results ({error})")
    rows = []
    for result in results["results"]:
        if result["label"] != label:
            continue
        for classifier, score in result["scores"].items():
            rows.append(dict(zip(FIELDS, [
                images, label, result["seed"], Path(classifier).stem, score["accuracy"],
                *score["recall"], score["rfd"], score["w1_mean"], score["w1_std"]])))
    if not rows:
        raise SystemExit(f"{path}: no setting labelled {label!r}")
    return (results.get("reference"), results.get("n_per_class")), rows


def read_csv(path):
    """The rows of an earlier table written by this script, with their numbers as numbers."""
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != FIELDS:
                raise SystemExit(f"{path}: expected the columns {FIELDS}, got {reader.fieldnames}")
            return [{key: (value if key in ("label", "classifier") else
                           int(value) if key in ("images_seen", "seed") else float(value))
                     for key, value in row.items()} for row in reader]
    except OSError as error:
        raise SystemExit(f"{path}: cannot read ({error})")
    except ValueError as error:
        raise SystemExit(f"{path}: not a number in the table ({error})")


def write_csv(rows, path):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def plot(rows, path, title):
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for classifier in sorted({row["classifier"] for row in rows}):
        mine = [row for row in rows if row["classifier"] == classifier]
        images = sorted({row["images_seen"] for row in mine})
        for axis, key in zip(axes, ["accuracy", "rfd"]):
            means = [np.mean([r[key] for r in mine if r["images_seen"] == n]) for n in images]
            line, = axis.plot(np.array(images) / 1e3, means, "-o", label=classifier)
            axis.plot([r["images_seen"] / 1e3 for r in mine], [r[key] for r in mine], ".",
                      color=line.get_color(), alpha=0.5)
    for axis, name in zip(axes, ["accuracy on generated images", "radio Fréchet distance"]):
        axis.set_xlabel("images seen in training (thousands)")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, format="png")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--point", action="append", required=True, type=parse_point,
                        help="IMAGES=RESULTS_JSON:LABEL, once per point of the run")
    parser.add_argument("--keep", type=Path, metavar="CSV",
                        help="an earlier table of the same protocol whose rows are kept")
    parser.add_argument("--csv", type=Path, required=True, help="the table written")
    parser.add_argument("--png", type=Path, help="the figure written (optional)")
    parser.add_argument("--title", default="first-class long run: 64 images per class, "
                        "seed sets 0 and 1 000 000, against the 196 validation images")
    args = parser.parse_args()
    points = [rows_of(*point) for point in args.point]
    protocols = {protocol for protocol, _ in points}
    if len(protocols) > 1:
        raise SystemExit(f"the points differ in reference or n per class: {sorted(protocols)}")
    rows = [row for _, point_rows in points for row in point_rows]
    if args.keep:
        rows = read_csv(args.keep) + rows
    keys = [(row["images_seen"], row["label"], row["seed"], row["classifier"]) for row in rows]
    if len(set(keys)) < len(keys):
        raise SystemExit("a point is given twice (same images seen, label, seed set and "
                         "classifier)")
    rows.sort(key=lambda row: (row["images_seen"], row["classifier"], row["seed"]))
    write_csv(rows, args.csv)
    if args.png:
        plot(rows, args.png, args.title)
    print(f"{len(rows)} rows from {len(args.point)} points"
          + (f" and {args.keep}" if args.keep else "") + f" -> {args.csv}"
          + (f", {args.png}" if args.png else ""))


if __name__ == "__main__":
    main()

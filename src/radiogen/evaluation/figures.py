"""Figures of the evaluation report, in the paper's style: real against generated overlays.

Every function draws one PNG with matplotlib's object interface (``Figure`` on the Agg canvas:
no pyplot state, no display needed) and writes it atomically.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from radiogen.atomic import atomic_path
from radiogen.data.first import CLASSES
from radiogen.evaluation.statistics import Comparison

__all__ = ["save", "histogram_figure", "scatter_figure", "confusion_figure", "image_grid_figure",
           "matches_figure", "REAL_COLOUR", "GENERATED_COLOUR"]

REAL_COLOUR, GENERATED_COLOUR = "#4b0082", "#e07b00"


def save(fig: Figure, path: str | os.PathLike) -> str:
    """Write ``fig`` as PNG to ``path`` atomically; returns the file name."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return os.path.basename(path)


def _step(ax, edges, values, **kwargs):
    return ax.stairs(values, edges, **kwargs)


def histogram_figure(comparison: Comparison, xlabel: str, path, log: bool = True,
                     labels=("real", "generated")) -> str:
    """Density histograms of real and generated with 1σ Poisson bands (Fig. 12–16)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for hist, colour, label in ((comparison.real, REAL_COLOUR, labels[0]),
                                (comparison.generated, GENERATED_COLOUR, labels[1])):
        density, lower, upper = hist.density()
        _step(ax, hist.edges, density, color=colour, label=f"{label} (n = {hist.n})")
        ax.stairs(upper, hist.edges, baseline=lower, fill=True, color=colour, alpha=0.25,
                  linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    if log:
        ax.set_yscale("log")
    ax.set_title(f"W1 = {comparison.wasserstein:.3g}, KS D = {comparison.ks_statistic:.3g}",
                 fontsize=9)
    ax.legend(fontsize=8)
    return save(fig, path)


def scatter_figure(points: dict, xlabel: str, ylabel: str, path, log_y: bool = True) -> str:
    """Scatter of (x, y) per set, e.g. Δ+ against f̂_scaled (Fig. 17); ``points`` maps label →
    (x, y, colour)."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    for label, (x, y, colour) in points.items():
        ax.scatter(x, y, s=3, alpha=0.4, color=colour, label=f"{label} (n = {len(x)})",
                   rasterized=True)
    if log_y and all(np.all(np.asarray(y) > 0) for _, y, _ in points.values()):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, markerscale=4)
    return save(fig, path)


def confusion_figure(confusion: np.ndarray, title: str, path) -> str:
    """Confusion matrix normalised per true class, with counts (Fig. 19)."""
    confusion = np.asarray(confusion)
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(4.6, 4))
    ax = fig.add_subplot()
    image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, f"{rates[i, j]:.2f}\n({count})", ha="center", va="center", fontsize=8,
                color="white" if rates[i, j] > 0.5 else "black")
    ticks = np.arange(len(CLASSES))
    ax.set_xticks(ticks, CLASSES)
    ax.set_yticks(ticks, CLASSES)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of true class")
    return save(fig, path)


def image_grid_figure(rows: dict, path, n: int = 8) -> str:
    """Rows of images, one row per label (e.g. real, generated, PyBDSF model)."""
    fig = Figure(figsize=(1.2 * n, 1.3 * len(rows)))
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            ax = fig.add_subplot(len(rows), n, r * n + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], cmap="inferno", vmin=0, vmax=1, origin="lower")
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    return save(fig, path)


def matches_figure(queries: np.ndarray, matches: np.ndarray, ssim: np.ndarray, path) -> str:
    """Each generated image (left) with its most similar training images and their SSIM
    (Fig. A.1–A.2)."""
    n, k = ssim.shape
    fig = Figure(figsize=(1.3 * (k + 1), 1.4 * n))
    for i in range(n):
        for j in range(k + 1):
            ax = fig.add_subplot(n, k + 1, i * (k + 1) + j + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(queries[i] if j == 0 else matches[i, j - 1], cmap="inferno", vmin=0,
                      vmax=1, origin="lower")
            ax.set_title("generated" if j == 0 else f"SSIM {ssim[i, j - 1]:.3f}", fontsize=7)
    return save(fig, path)

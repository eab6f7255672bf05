"""The figure of a map's recovery check: completeness and flux recovery against injected peak
flux, and the positional offsets of the matches."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from radiogen.evaluation.figures import GENERATED_COLOUR, REAL_COLOUR, save

__all__ = ["recovery_figure"]


def recovery_figure(stats: dict, points: dict, path) -> str:
    """Three panels; written atomically to ``path`` (PNG). Returns the path."""
    fig = Figure(figsize=(13, 4))
    complete, flux, offsets = fig.subplots(1, 3)
    bins = [b for b in stats["bins"] if b["n_injected"]]
    centres = np.array([np.sqrt(b["peak_lo"] * b["peak_hi"]) for b in bins]) * 1e3
    complete.plot(centres, [b["completeness"] for b in bins], "o-", color=REAL_COLOUR)
    complete.set(xscale="log", ylim=(-0.03, 1.03), xlabel="injected peak flux (mJy/beam)",
                 ylabel="completeness", title=f"{stats['n_recovered']}/{stats['n_injected']} "
                                                 f"recovered")
    peak = np.asarray(points["injected_peak"]) * 1e3
    ratio = np.asarray(points["flux_ratio"], dtype=float)
    found = np.isfinite(ratio)
    flux.scatter(peak[found], ratio[found], s=6, color=GENERATED_COLOUR, alpha=0.6)
    with_ratio = [b for b in bins if b["n_recovered"]]
    flux.plot([np.sqrt(b["peak_lo"] * b["peak_hi"]) * 1e3 for b in with_ratio],
              [b["flux_ratio_median"] for b in with_ratio], "o-", color=REAL_COLOUR,
              label="median")
    flux.axhline(1, color="grey", lw=0.8)
    flux.set(xscale="log", yscale="log", xlabel="injected peak flux (mJy/beam)",
             ylabel="PyBDSF total / injected flux", title="flux recovery")
    flux.legend(loc="best")
    offsets.scatter(points["dra"], points["ddec"], s=6, color=GENERATED_COLOUR, alpha=0.6)
    radius = stats["match_radius_arcsec"]
    offsets.add_patch(Circle((0, 0), radius, fill=False, color="grey", lw=0.8))
    offsets.set(xlim=(-radius * 1.1, radius * 1.1), ylim=(-radius * 1.1, radius * 1.1),
                aspect="equal", xlabel="ΔRA cos δ (arcsec)", ylabel="ΔDec (arcsec)",
                title=f"offsets; false-detection rate {stats['false_detection_rate']:.3f}")
    save(fig, path)
    return str(path)

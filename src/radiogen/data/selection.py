"""The selection cuts of Section 3.1 (Table 1) and their report.

Each cut-out is judged on four criteria, applied in a fixed order (by default Table 1's):

``broken``      any NaN or blank pixel inside the survey data;
``snr``         S/N_σ (Eq. 9–10) below a threshold (5 in the paper);
``edge``        a border pixel brighter than 0.8 × the image maximum (source off-centre or cropped);
``incomplete``  the cut-out reaches beyond the mosaic (source near the edge of the survey).

Eq. (9)–(10): with the median x̃ and standard deviation σ_x of the image from astropy's
``sigma_clipped_stats``, the source region is x_src = {x > x̃ + τ·σ_x}, τ starting at 5 and lowered
by 0.5 until the region is not empty; the background x_bg is the rest; S/N_σ = x̄_src / x̄_bg.

Which image S/N_σ is computed on is a setting (``snr_on``). Eq. (10) is a ratio of means, so it
only measures contrast where the background mean is positive. On raw survey pixels the background
is zero-mean noise and the sign of x̄_bg is chance: on the real LoTSS-DR1 test sections 15 of 34
cut-outs get a negative S/N_σ that way. The default, ``"minmax"``, computes it on the min-max
scaled image of Eq. (11) (the region of Eq. 9 is the same; the ratio becomes
(x̄_src − min x)/(x̄_bg − min x)): there the DR1 values spread across the threshold 5 as in
Fig. 1 and about three quarters fall below it (Table 1: 64 %). ``"clipped"`` (negatives set to 0
first) puts every DR1 cut-out above 5; ``"raw"`` follows the text's order literally.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from astropy.stats import sigma_clipped_stats

__all__ = ["CUTS", "CUT_TITLES", "SNR_IMAGES", "SelectionSettings", "Judgement", "SelectionReport",
           "snr_sigma", "bright_edges", "judge", "first_failed_cut"]

#: The cuts in Table 1's order.
CUTS = ("broken", "snr", "edge", "incomplete")
CUT_TITLES = {"broken": "Broken", "snr": "S/N_σ", "edge": "Edge pixels", "incomplete": "Incomplete"}
#: The images S/N_σ may be computed on (see the module docstring).
SNR_IMAGES = ("minmax", "clipped", "raw")


@dataclass(frozen=True)
class SelectionSettings:
    """Thresholds of the selection cuts (defaults: Section 3.1).

    Attributes
    ----------
    snr_threshold : float
        Keep images with S/N_σ ≥ this (5).
    tau_start, tau_step : float
        τ of Eq. (9) starts at ``tau_start`` (5) and is lowered by ``tau_step`` (0.5).
    clip_sigma : float
        Clipping threshold of ``sigma_clipped_stats`` (astropy's default, 3).
    edge_fraction : float
        Drop images whose border pixels exceed this fraction of the image maximum (0.8).
    edge_width : int
        Width in pixels of the border (1: the outermost rows and columns).
    order : tuple of str
        The cuts in the order applied; a permutation of :data:`CUTS`.
    snr_on : {"minmax", "clipped", "raw"}
        The image S/N_σ is computed on: min-max scaled (Eq. 11), negatives set to 0, or as cut.
    """

    snr_threshold: float = 5.0
    tau_start: float = 5.0
    tau_step: float = 0.5
    clip_sigma: float = 3.0
    edge_fraction: float = 0.8
    edge_width: int = 1
    order: tuple[str, ...] = CUTS
    snr_on: str = "minmax"

    def __post_init__(self):
        if self.snr_on not in SNR_IMAGES:
            raise ValueError(f"snr_on must be one of {SNR_IMAGES}, got {self.snr_on!r}")
        if sorted(self.order) != sorted(CUTS):
            raise ValueError(f"the cut order must name each of {CUTS} once, got {self.order}")
        if not self.tau_step > 0:
            raise ValueError(f"tau_step must be > 0, got {self.tau_step}")
        if self.edge_width < 1:
            raise ValueError(f"edge_width must be ≥ 1, got {self.edge_width}")

    def to_dict(self) -> dict:
        return {**asdict(self), "order": list(self.order)}


def snr_sigma(x: np.ndarray, tau_start: float = 5.0, tau_step: float = 0.5,
              clip_sigma: float = 3.0) -> tuple[float, float]:
    """S/N_σ of an image (Eq. 9–10), ignoring NaN pixels.

    Parameters
    ----------
    x : ndarray
        Image in any brightness unit (Jy/beam for survey cut-outs).
    tau_start, tau_step : float
        Initial τ and the step by which it is lowered until a source region exists.
    clip_sigma : float
        Clipping threshold for the median and standard deviation.

    Returns
    -------
    snr : float
        x̄_src / x̄_bg; NaN when σ_x = 0 or no background pixel remains.
    tau : float
        The τ at which the source region was found (NaN if none).
    """
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.nan, np.nan
    _, median, sigma = sigma_clipped_stats(x, sigma=clip_sigma)      # x̃, σ_x
    if not sigma > 0:
        return np.nan, np.nan
    tau = tau_start
    # Terminates: max x ≥ x̃, so the region is non-empty once τ < 0.
    while not np.any(x > median + tau * sigma):                     # Eq. (9)
        tau -= tau_step
    source = x > median + tau * sigma
    if source.all():
        return np.nan, tau
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(x[source].mean() / x[~source].mean()), tau      # Eq. (10)


def bright_edges(x: np.ndarray, fraction: float = 0.8, width: int = 1) -> bool:
    """Whether any border pixel exceeds ``fraction`` × the image maximum (NaN ignored)."""
    inner = np.zeros(x.shape, dtype=bool)
    inner[width:-width, width:-width] = True
    border = x[~inner]
    border = border[np.isfinite(border)]
    return bool(border.size and border.max() > fraction * np.nanmax(x))


@dataclass(frozen=True)
class Judgement:
    """The outcome of every cut for one image (True = the image fails that cut)."""

    broken: bool
    snr: bool
    edge: bool
    incomplete: bool
    snr_sigma: float


def _snr_image(x: np.ndarray, snr_on: str) -> np.ndarray:
    if snr_on == "clipped":
        return np.maximum(x, 0)
    if snr_on == "minmax" and np.isfinite(x).any():
        lo, hi = np.nanmin(x), np.nanmax(x)
        return (x - lo) / (hi - lo) if hi > lo else x - lo                 # Eq. (11)
    return x


def judge(x: np.ndarray, inside: np.ndarray | None, settings: SelectionSettings) -> Judgement:
    """Evaluate every cut on one raw cut-out.

    Parameters
    ----------
    x : ndarray, shape (n, n)
        The cut-out in Jy/beam before any preprocessing; NaN where outside the mosaic.
    inside : ndarray of bool or None
        Which pixels lie on the mosaic; None when all do.
    settings : SelectionSettings
    """
    inside = np.ones(x.shape, dtype=bool) if inside is None else inside
    data = x[inside]
    broken = data.size == 0 or not np.all(np.isfinite(data))
    snr, _ = snr_sigma(_snr_image(x, settings.snr_on), settings.tau_start, settings.tau_step,
                       settings.clip_sigma)
    edge = np.isfinite(x).any() and bright_edges(x, settings.edge_fraction, settings.edge_width)
    return Judgement(broken=bool(broken), snr=not snr >= settings.snr_threshold,
                     edge=bool(edge), incomplete=not inside.all(), snr_sigma=snr)


def first_failed_cut(j: Judgement, order=CUTS) -> int:
    """Index into ``order`` of the first cut the image fails; ``len(order)`` if it passes all."""
    for i, cut in enumerate(order):
        if getattr(j, cut):
            return i
    return len(order)


@dataclass
class SelectionReport:
    """Counts of the selection (Table 1) and the files that could not be used.

    Attributes
    ----------
    n_cutouts : int
        Cut-outs made.
    order : list of str
        The cuts in the order applied.
    removed : list of int
        Images removed by each cut, in ``order``.
    failing : dict
        For each cut, how many cut-outs fail it regardless of the order.
    skipped_files : list of [str, str]
        Files that could not be used: name and reason.
    notes : list of str
        Other facts of the run (sources outside every mosaic, header repairs, …).
    """

    n_cutouts: int
    order: list[str]
    removed: list[int]
    failing: dict
    skipped_files: list
    notes: list

    @classmethod
    def from_codes(cls, codes: np.ndarray, fails: dict, order, skipped_files=(), notes=()):
        """Build from :func:`first_failed_cut` codes (one per cut-out) and per-cut fail counts."""
        codes = np.asarray(codes)
        removed = [int(np.sum(codes == i)) for i in range(len(order))]
        return cls(int(codes.size), list(order), removed, {k: int(v) for k, v in fails.items()},
                   [list(f) for f in skipped_files], list(notes))

    @property
    def n_selected(self) -> int:
        return self.n_cutouts - sum(self.removed)

    def rows(self) -> list[tuple[str, int, int]]:
        """(step, removed, total selected) as in Table 1, ending with the total."""
        rows, remaining = [("Cut-outs", 0, self.n_cutouts)], self.n_cutouts
        for cut, n in zip(self.order, self.removed):
            remaining -= n
            rows.append((CUT_TITLES[cut], n, remaining))
        rows.append(("Total", sum(self.removed), remaining))
        return rows

    def format(self) -> str:
        """The report as text: the Table-1 counts, then skipped files and notes."""
        lines = [f"{'Step':<14}{'Removed':>10}{'Total selected':>16}"]
        lines += [f"{step:<14}{removed:>10}{total:>16}" for step, removed, total in self.rows()]
        if self.skipped_files:
            lines.append(f"Skipped files: {len(self.skipped_files)}")
            lines += [f"  {name}: {reason}" for name, reason in self.skipped_files]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"n_cutouts": self.n_cutouts, "order": self.order, "removed": self.removed,
                "failing": self.failing, "skipped_files": self.skipped_files, "notes": self.notes,
                "table": [list(r) for r in self.rows()]}

    @classmethod
    def from_dict(cls, d: dict) -> "SelectionReport":
        return cls(d["n_cutouts"], list(d["order"]), list(d["removed"]), dict(d["failing"]),
                   list(d.get("skipped_files", [])), list(d.get("notes", [])))

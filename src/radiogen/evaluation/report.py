"""The report folder: ``report.json`` (every number), ``report.md`` (one page) and PNG figures.

The JSON holds one entry per section; a section that could not run holds ``{"skipped": reason}``
instead of numbers, and the Markdown page says so in words. NaN and infinities become ``null``
(strict JSON).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from radiogen.atomic import atomic_path

__all__ = ["to_json", "write_json", "write_markdown", "SECTION_TITLES"]

SECTION_TITLES = {
    "inputs": "Inputs",
    "image_statistics": "Image statistics (Section 5.1, Fig. 12–14)",
    "sources": "PyBDSF source models (Section 5.1, Fig. 15–16)",
    "flux_conditioning": "Flux conditioning: Δ+ against f̂_scaled (Section 5.2, Eq. 26, Fig. 17)",
    "classification": "Class conditioning: classifier accuracy (Section 5.3, Fig. 19)",
    "frechet": "Radio Fréchet distance (classifier features)",
    "memorisation": "Memorisation: nearest training images by SSIM (Appendix A)",
}


def to_json(value):
    """Plain JSON types from numpy scalars and arrays; NaN and ±inf → None."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def write_json(data: dict, path: str | os.PathLike) -> Path:
    """Write ``data`` as indented strict JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_json(data), indent=2, allow_nan=False) + "\n")
    return Path(path)


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(rows: list[tuple], header: tuple) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _distances(section: dict) -> list[str]:
    rows = [(name, d.get("wasserstein"), d.get("ks_statistic"), d.get("ks_pvalue"),
             d.get("n_real"), d.get("n_generated"))
            for name, d in section.items() if isinstance(d, dict) and "wasserstein" in d]
    if not rows:
        return []
    return _table(rows, ("quantity", "Wasserstein-1", "KS D", "KS p", "n real", "n generated"))


def _numbers(section: dict, skip=("figures",)) -> list[str]:
    rows = [(k, v) for k, v in section.items()
            if k not in skip and not isinstance(v, (dict, list))]
    return _table(rows, ("number", "value")) if rows else []


def _section_lines(key: str, section: dict) -> list[str]:
    lines = [f"## {SECTION_TITLES.get(key, key)}", ""]
    if "skipped" in section:
        return lines + [f"*Skipped:* {section['skipped']}", ""]
    lines += section.get("notes", [])
    lines += [""] if section.get("notes") else []
    lines += _distances(section) + _numbers(section)
    for name, sub in section.items():
        if isinstance(sub, dict) and "wasserstein" not in sub and name != "figures":
            flat = {k: v for k, v in sub.items() if not isinstance(v, (dict, list))}
            if flat:
                lines += [f"**{name}**", ""] + _table(list(flat.items()), ("number", "value"))
    for caption, figure in section.get("figures", {}).items():
        lines += [f"![{caption}](figures/{figure})", ""]
    return lines


def write_markdown(results: dict, path: str | os.PathLike, title: str) -> Path:
    """One page with every section's numbers and figures, in the order of ``results``."""
    lines = [f"# {title}", "", "Every number below is also in `report.json`.", ""]
    for key, section in results.items():
        if isinstance(section, dict):
            lines += _section_lines(key, section)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return Path(path)

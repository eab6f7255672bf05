"""Checks at the command-line boundary, in one place: the range of every numeric option (as
argparse types, so a bad value is refused before any work with a one-line error naming the
option and the allowed range, exit status 2) and the output paths (refused before the work
when they are files where folders are wanted, or cannot be written)."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

__all__ = ["Parser", "integer", "number", "beam", "SEED", "COUNT", "POSITIVE",
           "check_output_folder", "check_output_file"]

#: The largest seed: image k of a run uses seed + k, which numpy's SeedSequence and torch take.
MAX_SEED = 2**62


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (the usage is in ``--help``)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _range_text(kind: str, lo, hi, lo_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '≥'} {lo:g}")
    if hi is not None:
        parts.append(f"≤ {hi:g}")
    return f"{kind} {' and '.join(parts)}" if parts else kind


def integer(minimum: int | None = None, maximum: int | None = None):
    """An argparse type: an integer in [minimum, maximum]."""
    expected = _range_text("an integer", minimum, maximum, False)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{value} is out of range: expected {expected}")
        return value
    parse.__name__ = "integer"
    return parse


def number(minimum: float | None = None, maximum: float | None = None, *,
           exclusive_minimum: bool = False, allow_inf: bool = False):
    """An argparse type: a finite number (or +inf where ``allow_inf``) in the range, the
    minimum excluded where ``exclusive_minimum``."""
    expected = _range_text("a number", minimum, maximum, exclusive_minimum)
    if allow_inf:
        expected += " (or inf)"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        bad = (math.isnan(value) or (math.isinf(value) and not (allow_inf and value > 0))
               or (minimum is not None and (value <= minimum if exclusive_minimum
                                            else value < minimum))
               or (maximum is not None and value > maximum and not math.isinf(value)))
        if bad:
            raise argparse.ArgumentTypeError(f"{text} is out of range: expected {expected}")
        return value
    parse.__name__ = "number"
    return parse


def guidance(text: str) -> "float | dict":
    """An argparse type for guidance strengths: ω (a number ≥ 0), or comma-separated
    ``CLASS=ω`` items with at most one bare ω for the classes not named, e.g. ``Bent=0.3`` or
    ``0.75,Bent=0.3``; the latter as a dict, the bare ω under the key None."""
    omega = number(0)
    if "=" not in text:
        return omega(text)
    strengths: dict = {}
    for item in text.split(","):
        label, _, value = item.rpartition("=")
        key = label.strip() or None
        if ("=" in item and key is None) or key in strengths:
            raise argparse.ArgumentTypeError(f"{item!r} in {text!r}: expected CLASS=ω items "
                                             "and at most one bare ω, each once")
        strengths[key] = omega(value.strip())
    return strengths


#: Types shared by several commands.
SEED = integer(0, MAX_SEED)
COUNT = integer(1)
POSITIVE = number(0, exclusive_minimum=True)


def beam(values, option: str = "--beam") -> tuple[float, float, float] | None:
    """(BMAJ, BMIN, BPA) from 1-3 values (BMIN defaults to BMAJ, BPA to 0): axes in arcsec
    above 0, the angle in degrees."""
    from radiogen.cli import CommandError
    if not values:
        return None
    if len(values) > 3:
        raise CommandError(f"{option} takes BMAJ [BMIN [BPA]], got {len(values)} values")
    bmaj = values[0]
    bmin = values[1] if len(values) > 1 else bmaj
    bpa = values[2] if len(values) > 2 else 0.0
    if not (bmaj > 0 and bmin > 0):
        raise CommandError(f"{option} {' '.join(f'{v:g}' for v in values)}: the beam axes BMAJ "
                           "and BMIN must be > 0 arcsec")
    return float(bmaj), float(bmin), float(bpa)


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path, message: str) -> None:
    """Create and delete a file in ``folder`` (permission bits do not tell for every user or
    file system)."""
    from radiogen.cli import CommandError
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".radiogen-write-test.")
        os.close(fd)
        os.remove(name)
    except OSError as err:
        raise CommandError(f"{message}: cannot write in {folder} ({err.strerror or err})") \
            from None


def _check_folder(folder: Path, message: str) -> None:
    from radiogen.cli import CommandError
    base = _nearest_existing(folder)
    if not base.is_dir():
        where = "is a file" if base == folder.absolute() else f"lies under a file, {base}"
        raise CommandError(f"{message}: {where}, not a folder")
    _probe(base, message)


def check_output_folder(path, option: str = "--out") -> Path:
    """A folder that exists or can be created, and can be written in; nothing is created."""
    path = Path(path)
    _check_folder(path, f"{option} {path}")
    return path


def check_output_file(path, option: str = "--out") -> Path:
    """A file name whose folder exists or can be created and can be written in."""
    from radiogen.cli import CommandError
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"{option} {path}: is a folder, not a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"{option} {path}: lies under a file, {folder}")
    _check_folder(folder, f"{option} {path}")
    return path

"""Resumable parallel work for the data pipeline: units of work run in worker processes under a
progress bar, and each result is saved atomically (``.npz``) under a key of the unit's inputs and
settings, so a run that was interrupted resumes where it stopped when started again. Results come
back in unit order, whatever the number of processes and the order in which units finish."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from radiogen.atomic import atomic_path

__all__ = ["input_key", "run_units"]


def input_key(files, arrays=(), values=None) -> str:
    """A short hash of input files (path, size, modification time), arrays and JSON values."""
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode())
    for path in files:
        stat = os.stat(path)
        digest.update(json.dumps([str(Path(path).resolve()), stat.st_size,
                                  stat.st_mtime_ns]).encode())
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:20]


def _save(path: Path, result: dict) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **result)


def _load(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError):  # an unreadable part is simply redone
        return None


def _execute(work: Callable, units: list[dict], workers: int):
    """Yield (unit, result) as units finish, in worker processes when ``workers`` > 1."""
    if workers <= 1 or len(units) <= 1:
        for unit in units:
            yield unit, work(unit)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(min(workers, len(units)), mp_context=context) as pool:
        futures = {pool.submit(work, unit): unit for unit in units}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def run_units(work: Callable, units: list[dict], keys: list[str], parts_dir: Path,
              workers: int = 1, progress: bool = True, desc: str = "",
              unit_name: str = "src") -> list[dict]:
    """Run ``work(unit)`` for every unit, reusing results saved by an earlier run.

    Parameters
    ----------
    work : callable
        Picklable function of one unit returning a dict of numpy arrays (no objects).
    units : list of dict
        The units; ``unit["n"]`` is its weight on the progress bar (sources or files).
    keys : list of str
        One key per unit naming its inputs and settings (see :func:`input_key`).
    parts_dir : Path
        Where finished units are saved.
    workers : int
        Worker processes; 1 runs the units in this process.
    progress : bool
        Show a progress bar.
    """
    parts = [parts_dir / f"{i:06d}-{key}.npz" for i, key in enumerate(keys)]
    results = [_load(part) for part in parts]
    pending = [i for i, r in enumerate(results) if r is None]
    total = sum(u["n"] for u in units)
    initial = total - sum(units[i]["n"] for i in pending)
    with tqdm(total=total, initial=initial, desc=desc, unit=unit_name, disable=not progress) as bar:
        for unit, result in _execute(work, [dict(units[i], _index=i) for i in pending], workers):
            i = unit["_index"]
            _save(parts[i], result)
            results[i] = result
            bar.update(units[i]["n"])
    return results

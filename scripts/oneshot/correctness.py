"""Step 2, correctness on CUDA: the tests of tests/test_gpu.py (marker ``gpu``), called
directly (the GPU image has no pytest), each with its own folder, its printed output, its time
and its traceback recorded. The step fails if any test failed."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import sys
import time
import traceback
import unittest
from pathlib import Path

from oneshot.common import Step

TESTS = Path(__file__).resolve().parents[2] / "tests"
#: A test is started only with this many seconds of the step left.
MIN_LEFT_S = 3.0


def gpu_tests():
    """(module, [(name, function)] in file order) of tests/test_gpu.py."""
    sys.path.insert(0, str(TESTS))
    module = importlib.import_module("test_gpu")
    tests = [(name, fn) for name, fn in vars(module).items()
             if name.startswith("test_") and inspect.isfunction(fn)]
    return module, sorted(tests, key=lambda item: item[1].__code__.co_firstlineno)


def run_test(fn, tmp_path: Path) -> dict:
    """Call one test; outcome passed / failed / skipped with seconds, output and traceback."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    wants_tmp = "tmp_path" in inspect.signature(fn).parameters
    printed, start = io.StringIO(), time.perf_counter()
    row = {"outcome": "passed"}
    try:
        with contextlib.redirect_stdout(printed):
            fn(tmp_path) if wants_tmp else fn()
    except unittest.SkipTest as skip:
        row = {"outcome": "skipped", "reason": str(skip)}
    except Exception:
        row = {"outcome": "failed", "error": traceback.format_exc()[-4000:]}
    row["seconds"] = round(time.perf_counter() - start, 2)
    row["output"] = printed.getvalue()[-2000:]
    return row


def run(step: Step) -> None:
    module, tests = gpu_tests()
    r = step.result
    r.update(device=module.DEVICE, runner="direct calls (no pytest needed)", tests=[])
    if module.DEVICE is None:
        r["tests"] = [{"name": name, "outcome": "skipped", "reason": "no CUDA"} for name, _ in tests]
        step.save()
        return
    for name, fn in tests:
        if step.left() < MIN_LEFT_S:
            r["tests"].append({"name": name, "outcome": "not run", "reason": "out of time"})
            continue
        r["tests"].append({"name": name, "outcome": "running"})   # a kill shows which one hung
        step.save()
        r["tests"][-1].update(run_test(fn, step.work / "tests" / name))
        print(f"{name}: {r['tests'][-1]['outcome']} ({r['tests'][-1]['seconds']} s)", flush=True)
        step.save()
    outcomes = [t["outcome"] for t in r["tests"]]
    r["summary"] = {k: outcomes.count(k) for k in ("passed", "failed", "skipped", "not run")}
    step.save()
    failed = [t["name"] for t in r["tests"] if t["outcome"] == "failed"]
    if failed:
        raise AssertionError(f"{len(failed)} of {len(tests)} GPU tests failed: {', '.join(failed)}")

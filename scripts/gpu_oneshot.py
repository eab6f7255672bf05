"""One prepared run on a bare GPU machine (issue 14): check, measure, train, score.

    PYTHONPATH=src python scripts/gpu_oneshot.py --minutes 9 --out DIR
    PYTHONPATH=src python scripts/gpu_oneshot.py --smoke --out DIR     # the same on a CPU, tiny (CI)

Steps, in order, each in its own process under its own time budget (a hang or a crashed CUDA
context costs that step only; its failure, with the traceback, goes into the report and the next
step runs):

1. env          GPU, memory, torch / CUDA / cuDNN versions, bf16, packages   (oneshot/env.py)
2. correctness  the ``gpu`` tests of tests/test_gpu.py, called directly      (oneshot/correctness.py)
3. throughput   training images/s and sampling passes/s, % of bf16 peak      (oneshot/throughput.py)
4. train        a FIRST class model sized from step 3, to a deadline, bf16   (oneshot/training.py)
5. export       EMA and post-hoc EMA weights as bf16 files, metrics.csv      (oneshot/training.py)
6. score        500 images per class: classifier accuracy, recall, RFD, grid (oneshot/score.py)

DIR receives at most 8 files of at most 16 MiB (what comes back from the machine): report.json
(rewritten atomically before and after every step), log.txt (the steps' output),
model.safetensors, ema-0.100.safetensors, ema-0.050.safetensors, metrics.csv, samples.png.
Checkpoints, snapshots and test folders go to --work (a temporary folder by default).
Budgets at --minutes 9 are NOMINAL_S; --minutes scales them; training gets what the others
leave. astropy and bdsf are blocked before anything is imported: the GPU image has neither,
and every run (the CI smoke test included) thereby proves that nothing here needs them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "src"), str(HERE)]     # this checkout's radiogen, then oneshot/

from oneshot.common import Step, read_json, write_json  # noqa: E402  (imports no radiogen module that needs astropy)

#: Modules the GPU image lacks; main() makes importing them fail, in every step's process.
BLOCKED = ("astropy", "bdsf")

STEPS = ("env", "correctness", "throughput", "train", "export", "score")
#: Seconds per step at --minutes 9 (the issue's plan; train gets the rest), and the end's reserve.
NOMINAL_MINUTES = 9.0
NOMINAL_S = {"env": 30, "correctness": 60, "throughput": 90, "export": 25, "score": 60}
RESERVE_S = 15
#: --smoke: kill limits only (the work is tiny, about 90 CPU seconds in all; the training loop
#: stops after 4 s), generous because CI machines are shared: on a starved 2-core machine
#: importing torch alone took 60 s and the correctness step over 5 minutes.
SMOKE_S = dict.fromkeys(STEPS, 900)
MAX_FILES, MAX_FILE_BYTES = 8, 16 * 2**20
KILL_GRACE_S = 5


def step_budget(name: str, args, started: float) -> float:
    """Seconds for step ``name``: its nominal share scaled by --minutes; for train, whatever
    is left once export, score and the reserve are set aside. Never past the total."""
    if args.smoke:
        return SMOKE_S[name]
    scale = args.minutes / NOMINAL_MINUTES
    left = started + 60 * args.minutes - RESERVE_S * scale - time.time()
    if name == "train":
        return left - scale * (NOMINAL_S["export"] + NOMINAL_S["score"])
    return min(scale * NOMINAL_S[name], left)


def run_child(cmd: list[str], timeout: float, log, env=None) -> tuple[int | None, bool]:
    """Run ``cmd`` in its own process group with output to ``log``; kill the group after
    ``timeout`` seconds (SIGTERM, then SIGKILL). Returns (exit code, timed out)."""
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        return proc.wait(timeout=max(timeout, 1)), False
    except subprocess.TimeoutExpired:
        for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        proc.wait()
        return proc.returncode, True


def _log_tail(path: Path, start: int, n: int = 3000) -> str:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read().decode(errors="replace")[-n:]


def run_step(name: str, budget: float, args, work: Path, log_path: Path) -> dict:
    """Step ``name`` in a child process; its record for the report (status ok, failed,
    timeout or crashed; seconds; the child's result and traceback, or the log's tail)."""
    out = Path(args.out)
    result_path = work / f"step-{name}.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--out", str(out),
           "--work", str(work), "--deadline", str(time.time() + budget)] + (["--smoke"] if args.smoke else [])
    env = {**os.environ, **({"RADIOGEN_GPU_TESTS_ON_CPU": "1"} if args.smoke else {})}
    with open(log_path, "ab") as log:
        log.write(f"\n===== {name} (budget {budget:.0f} s) =====\n".encode())
        log.flush()
        start_byte, start = log.tell(), time.time()
        code, timed_out = run_child(cmd, budget, log, env)
    child = read_json(result_path)
    status = ("timeout" if timed_out else child.get("status", "crashed") if code in (0, 1)
              else "crashed")
    if status == "running":                  # exited without finishing (killed from inside)
        status = "crashed"
    record = {"status": status, "seconds": round(time.time() - start, 1), "budget_s": round(budget, 1),
              "exit_code": code, "result": child.get("result")}
    if child.get("error"):
        record["error"] = child["error"]
    elif status != "ok":
        record["error"] = _log_tail(log_path, start_byte)
    return record


def child_main(args) -> int:
    """Inside a step's process: run it, write its result (status, result, traceback)."""
    import importlib
    module, function = {"env": ("env", "run"), "correctness": ("correctness", "run"),
                        "throughput": ("throughput", "run"), "train": ("training", "run_train"),
                        "export": ("training", "run_export"), "score": ("score", "run")}[args.child]
    step = Step(args.child, Path(args.out), Path(args.work), args.deadline, args.smoke)
    if args.smoke:
        import torch
        torch.set_num_threads(1)                  # CI: a 2-core CPU shared with others
    try:
        step.save()
        getattr(importlib.import_module(f"oneshot.{module}"), function)(step)
    except Exception:
        step.save("failed", traceback.format_exc()[-6000:])
        traceback.print_exc()
        return 1
    step.save("ok")
    return 0


def _git(*cmd) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def files_report(out: Path) -> dict:
    """What will come back: every file with its size, and whether the limits hold."""
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    too_big = [name for name, size in files.items() if size > MAX_FILE_BYTES]
    return {"files": files, "count_ok": len(files) <= MAX_FILES, "too_big": too_big}


def _trim_log(path: Path, keep: int = 4 * 2**20) -> None:
    """Keep the log under the file limit: its last ``keep`` bytes."""
    if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        with open(path, "rb") as f:
            f.seek(-keep, os.SEEK_END)
            tail = f.read()
        path.write_bytes(b"[log trimmed to its last 4 MiB]\n" + tail)


def summary(report: dict) -> str:
    """A few lines for the console: each step's status and its headline numbers."""
    lines = []
    for name, record in report["steps"].items():
        lines.append(f"{name:12s} {record['status']:8s} {record.get('seconds', 0):6.1f} s")
        result = record.get("result") or {}
        if name == "env":
            lines.append(f"  {result.get('gpu')}, torch {result.get('torch')}, CUDA {result.get('cuda')}")
        if name == "correctness":
            lines.append(f"  {result.get('summary')}")
        for row in result.get("presets", []):
            train, sample = row.get("train", {}), row.get("sample", {})
            lines.append(f"  {row['preset']}: train {(train.get('best') or {}).get('rate', 0):.0f} img/s, "
                         f"sample {(sample.get('best') or {}).get('rate', 0):.0f} passes/s, paper's "
                         f"1000 images in {sample.get('paper_figure_seconds') or 0:.1f} s")
        if name == "train" and "plan" in result:
            lines.append(f"  {result['plan']['chosen']}: {result.get('images_seen') or 0:.0f} images "
                         f"seen of {result['plan']['expected_images']:.0f} expected")
        for row in result.get("rows", []):
            if "accuracy" in row:
                lines.append(f"  {row['model']}: accuracy {row['accuracy']:.3f}, "
                             f"RFD {row['frechet_to_test']:.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for what comes back (at most 8 files)")
    p.add_argument("--minutes", type=float, default=NOMINAL_MINUTES, help="total wall-clock budget")
    p.add_argument("--smoke", action="store_true", help="tiny end-to-end run on a CPU (CI)")
    p.add_argument("--work", help="scratch folder (default: a new temporary folder)")
    p.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="run only these")
    p.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in BLOCKED:
        sys.modules[name] = None                  # `import astropy` now raises ImportError
    if args.child:
        return child_main(args)
    from tqdm.auto import tqdm
    started, out = time.time(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="radiogen-oneshot-"))
    work.mkdir(parents=True, exist_ok=True)
    report = {"script": "scripts/gpu_oneshot.py", "issue": 14, "args": vars(args),
              "git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain")),
              "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "budget_s": 60 * args.minutes, "work": str(work), "steps": {}}
    log_path = out / "log.txt"
    for name in tqdm(args.steps, desc="gpu_oneshot", unit="step"):
        budget = step_budget(name, args, started)
        report["steps"][name] = {"status": "running", "budget_s": round(budget, 1)}
        report["elapsed_s"] = round(time.time() - started, 1)
        write_json(out / "report.json", report)
        if budget < 5:
            report["steps"][name] = {"status": "skipped", "reason": f"{budget:.0f} s left"}
            continue
        report["steps"][name] = run_step(name, budget, args, work, log_path)
        report["elapsed_s"] = round(time.time() - started, 1)
        write_json(out / "report.json", report)
    _trim_log(log_path)
    report["elapsed_s"] = round(time.time() - started, 1)
    write_json(out / "report.json", report)
    report["output"] = files_report(out)
    write_json(out / "report.json", report)
    try:
        print(summary(report))
    except Exception:                         # the report is written; the console is a bonus
        traceback.print_exc()
    return 0 if all(s["status"] == "ok" for s in report["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

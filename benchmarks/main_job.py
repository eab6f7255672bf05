"""The main job end to end: ``radiogen sample --class FRII -n 16`` timed as a user runs it (a new
process each time, imports, model loading and file writing included), once per precision and
round, the precisions interleaved so that a machine's drift touches them alike. Prints the
fastest, median and slowest wall time of each precision, its ratio to fp32, and the precision
that ``--precision auto`` took (the ``PRECISN`` card of its first FITS file). Issue 13's goal:
≤ 5 s on the 2-core CPU. Run it on an idle machine.

    python benchmarks/main_job.py --rounds 4 --precisions auto fp32 bf16
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import machine, print_table
from astropy.io import fits
from radiogen.precision import cpu_samples_faster_in_bf16, cpu_supports_bf16


def run_once(command: list[str], out: Path) -> float:
    """Wall seconds of one run of ``command`` writing to ``out`` (emptied first)."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=4, help="runs of each precision (default: 4)")
    p.add_argument("--precisions", nargs="+", default=["auto", "fp32", "bf16"],
                   choices=["auto", "fp32", "bf16"])
    p.add_argument("--model", default="first-class")
    p.add_argument("--class", dest="cls", default="FRII", help="class to draw (default: FRII)")
    p.add_argument("-n", type=int, default=16, help="images per run (default: 16)")
    args = p.parse_args()
    if args.rounds < 1:
        raise SystemExit(f"--rounds {args.rounds}: at least one round is needed")

    print(f"main job on {machine('cpu').rsplit(',', 1)[0]}: native bf16 {cpu_supports_bf16()}, "
          f"--precision auto samples in bf16 {cpu_samples_faster_in_bf16()}")
    # The console script, as users start it; `python -m radiogen` where it is not on the PATH.
    script = shutil.which("radiogen")
    radiogen = [script] if script else [sys.executable, "-m", "radiogen"]
    seconds = {precision: [] for precision in args.precisions}
    taken = {}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.rounds):
            for precision in args.precisions:
                out = Path(work) / precision
                command = [*radiogen, "sample", "--model", args.model,
                           "--class", args.cls, "-n", str(args.n), "--out", str(out),
                           "--precision", precision, "--no-progress"]
                seconds[precision].append(run_once(command, out))
                first = min(out.glob("*.fits"))
                taken[precision] = fits.getheader(first).get("PRECISN", "not recorded")
    base = statistics.median(seconds["fp32"]) if "fp32" in seconds else None
    rows = [{"precision": precision, "took": taken[precision],
             "fastest s": f"{min(s):.2f}", "median s": f"{statistics.median(s):.2f}",
             "slowest s": f"{max(s):.2f}",
             "median / fp32": f"{statistics.median(s) / base:.2f}" if base else "-"}
            for precision, s in seconds.items()]
    print(f"`radiogen sample --model {args.model} --class {args.cls} -n {args.n}`, "
          f"{args.rounds} runs each, interleaved")
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()

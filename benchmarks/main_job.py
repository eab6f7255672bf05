"""The main job end to end: ``radiogen sample --class FRII -n 16`` timed as a user runs it (a new
process each time, imports, model loading and file writing included), once per precision and
round, the precisions interleaved so that a machine's drift touches them alike. Prints the
fastest, median and slowest wall time of each precision, its ratio to fp32, and the precision
that ``--precision auto`` took (the ``PRECISN`` card of its first FITS file). Issue 13's goal:
≤ 5 s on the 2-core CPU. Run it on an idle machine.

    python benchmarks/main_job.py --rounds 4 --precisions auto fp32 bf16

``--peak-flux`` times a peak-flux model's example instead, and each ``--variant LABEL=OPTIONS``
adds the same command with more options, run in the same rounds (e.g. ``first-flux`` with 15
evaluations beside its recorded 25):

    python benchmarks/main_job.py --model first-flux --peak-flux 0.05 --precisions auto \
        --variant "15 evaluations=--steps 15"
"""

from __future__ import annotations

import argparse
import shlex
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
    p.add_argument("--peak-flux", metavar="JY", help="a peak-flux model: draw at this peak flux "
                                                      "(Jy/beam) instead of --class")
    p.add_argument("-n", type=int, default=16, help="images per run (default: 16)")
    p.add_argument("--variant", action="append", default=[], metavar="LABEL=OPTIONS",
                   help="also time the command with these options added (repeatable)")
    args = p.parse_args()
    if args.rounds < 1:
        raise SystemExit(f"--rounds {args.rounds}: at least one round is needed")
    variants = {"default": []}
    for text in args.variant:
        label, sep, options = text.partition("=")
        if not sep or not label:
            raise SystemExit(f"--variant {text!r}: give LABEL=OPTIONS")
        variants[label] = shlex.split(options)
    context = (["--peak-flux", args.peak_flux] if args.peak_flux else ["--class", args.cls])

    print(f"main job on {machine('cpu').rsplit(',', 1)[0]}: native bf16 {cpu_supports_bf16()}, "
          f"--precision auto samples in bf16 {cpu_samples_faster_in_bf16()}")
    # The console script, as users start it; `python -m radiogen` where it is not on the PATH.
    script = shutil.which("radiogen")
    radiogen = [script] if script else [sys.executable, "-m", "radiogen"]
    runs = [(label, precision) for label in variants for precision in args.precisions]
    seconds = {run: [] for run in runs}
    taken = {}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.rounds):
            for label, precision in runs:
                out = Path(work) / "out"
                command = [*radiogen, "sample", "--model", args.model, *context,
                           "-n", str(args.n), "--out", str(out), "--precision", precision,
                           "--no-progress", *variants[label]]
                seconds[label, precision].append(run_once(command, out))
                first = min(out.glob("*.fits"))
                taken[label, precision] = fits.getheader(first).get("PRECISN", "not recorded")
    reference = ("default", "fp32") if "fp32" in args.precisions else runs[0]
    base = statistics.median(seconds[reference])
    rows = [{"variant": label, "precision": precision, "took": taken[label, precision],
             "fastest s": f"{min(s):.2f}", "median s": f"{statistics.median(s):.2f}",
             "slowest s": f"{max(s):.2f}",
             f"median / {' '.join(reference)}": f"{statistics.median(s) / base:.2f}"}
            for (label, precision), s in seconds.items()]
    print(f"`radiogen sample --model {args.model} {' '.join(context)} -n {args.n}`, "
          f"{args.rounds} runs each, interleaved")
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()

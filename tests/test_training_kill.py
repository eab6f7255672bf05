"""Training survives ``kill -9``: killed at random moments and inside the checkpoint writer, a
run resumes each time from its last complete checkpoint, nothing in the run folder is corrupted,
and the continuation ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import csv
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import radiogen
from radiogen.training.checkpoint import (CHECKPOINT_FILES, latest_checkpoint,
                                         load_training_state, read_model_file)

HELPER = Path(__file__).with_name("kill_training.py")
STEPS = 24
OVERRIDES = [f"training.iterations={STEPS}", "training.checkpoint_every=2",
             "training.log_every=2", "training.val_every=4", "training.keep_checkpoints=2",
             "training.threads=1", "model.patch_size=4", "model.num_res_blocks=1"]
#: Where each run of the test is killed: inside the checkpoint writer (the first run is fresh,
#: so its pause hits the first checkpoint), or (None) a random moment a few steps in.
PLAN = ["checkpoint-files", None, "before-pointer", None, "pruning", None]


class Helper:
    """``kill_training.py`` in a subprocess: forks training runs on request."""

    def __init__(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(Path(radiogen.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
            OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, str(HELPER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, bufsize=1)

    def message(self, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if not ready:
                continue
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the helper process ended")
            if line.startswith("@@ "):
                return json.loads(line[3:])
        raise TimeoutError("no answer from the helper process")

    def start(self, run: Path, resume: bool, pause: str | None = None) -> int:
        self.proc.stdin.write(json.dumps({"run": str(run), "resume": resume, "pause": pause,
                                          "overrides": OVERRIDES}) + "\n")
        self.child = self.message()["pid"]
        return self.child

    def close(self):
        """End the helper, and a run it may still be waiting for (after a failure)."""
        if getattr(self, "child", None):
            try:
                os.kill(self.child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


def _step(run: Path) -> int:
    ckpt = latest_checkpoint(run)
    return -1 if ckpt is None else int(load_training_state(ckpt)["step"])


def _assert_consistent(run: Path, step_before: int) -> None:
    """Every checkpoint folder complete and readable; the newest no older than before."""
    root = run / "checkpoints"
    latest = latest_checkpoint(run)
    assert root.exists() == (latest is not None)    # a checkpoints folder always holds one
    for folder in root.glob("step-*") if root.exists() else []:
        assert all((folder / name).is_file() for name in CHECKPOINT_FILES), folder
        state = load_training_state(folder)
        assert folder.name == f"step-{state['step']:07d}"
        for name in ("model.safetensors", "ema.safetensors"):
            read_model_file(folder / name)
    assert _step(run) >= step_before


def _metrics(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return [{k: r[k] for k in ("step", "loss", "val_loss", "val_loss_ema")}
                for r in csv.DictReader(f)]


def _final_weights(run: Path) -> dict:
    ckpt = latest_checkpoint(run)
    return {name: read_model_file(ckpt / name)[0] for name in ("model.safetensors",
                                                                "ema.safetensors")}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
def test_training_killed_at_random_moments_resumes_to_the_uninterrupted_result(tmp_path):
    helper = Helper()
    rng = random.Random(3)
    try:
        reference, run = tmp_path / "reference", tmp_path / "run"
        helper.start(reference, resume=False)
        assert helper.message() == {"exit": 0}
        for pause in PLAN:
            before = _step(run)
            where = pause or f"after-steps:{rng.randint(1, 3)}"
            pid = helper.start(run, resume=before >= 0, pause=where)
            assert helper.message() == {"paused" if pause else "reached": where}
            time.sleep(0 if pause else rng.uniform(0.0, 0.3))
            os.kill(pid, signal.SIGKILL)
            assert helper.message() == {"exit": -signal.SIGKILL}
            _assert_consistent(run, before)
        assert _step(run) < STEPS                       # every run was killed before its end
        helper.start(run, resume=_step(run) >= 0)
        assert helper.message() == {"exit": 0}
    finally:
        helper.close()
    assert _step(run) == _step(reference) == STEPS
    leftovers = [p.name for p in [*run.iterdir(), *(run / "checkpoints").iterdir()]
                 if p.name.startswith(".")]
    assert leftovers == []
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "latest.json", f"step-{STEPS - 2:07d}", f"step-{STEPS:07d}"]
    # bit for bit: the same machine, thread count and batch size as the uninterrupted run
    ours, theirs = _final_weights(run), _final_weights(reference)
    for file_name in ours:
        for key, value in ours[file_name].items():
            assert torch.equal(value, theirs[file_name][key]), (file_name, key)
    assert _metrics(run) == _metrics(reference)

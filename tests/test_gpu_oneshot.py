"""scripts/gpu_oneshot.py end to end on the CPU (--smoke), so that the one GPU run cannot fail
on something a CPU would have caught; and its process handling (time limits, crashes)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from radiogen import api

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_oneshot.py"


def _script_module():
    spec = importlib.util.spec_from_file_location("gpu_oneshot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_writes_every_result_without_astropy(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(SCRIPT.parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    start = time.time()
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out),
                           "--work", str(tmp_path / "work")], env=env, capture_output=True,
                          text=True, timeout=6 * 900)
    seconds = time.time() - start
    report = json.loads((out / "report.json").read_text())
    steps = report["steps"]
    failed = {name: s.get("error", "")[-1500:] for name, s in steps.items() if s["status"] != "ok"}
    assert done.returncode == 0 and not failed, (done.stdout[-2000:], failed)
    print(f"smoke run: {seconds:.0f} s;", {name: s["seconds"] for name, s in steps.items()})

    env_result = steps["env"]["result"]
    assert env_result["torch"] and env_result["importable_despite_block"] == {"astropy": False, "bdsf": False}
    tests = steps["correctness"]["result"]["tests"]
    assert len(tests) >= 6 and {t["outcome"] for t in tests} <= {"passed", "skipped"}
    assert [t["name"] for t in tests if t["outcome"] == "skipped"] == ["test_train_fp16_with_loss_scaling"]
    throughput = steps["throughput"]["result"]
    assert throughput["probes"]["tiny-8"]["img_s"] > 0
    assert throughput["presets"][0]["train"]["best"]["rate"] > 0
    assert throughput["presets"][0]["sample"]["paper_figure_seconds"] > 0
    plan = steps["train"]["result"]["plan"]
    assert plan["chosen"] in ("tiny-8", "tiny-12") and plan["measured_rate"]
    assert steps["train"]["result"]["images_seen"] > 0

    files = report["output"]["files"]
    assert report["output"]["count_ok"] and not report["output"]["too_big"]
    assert {"report.json", "log.txt", "model.safetensors", "ema-0.100.safetensors",
            "ema-0.050.safetensors", "metrics.csv", "samples.png"} <= set(files)
    model = api.load_model(str(out / "model.safetensors"))
    assert model.meta["stored_dtype"] == "bf16" and model.meta["preset"] == "tiny"

    rows = steps["score"]["result"]["rows"]
    assert [r["model"] for r in rows[:3]] == ["model.safetensors", "ema-0.100.safetensors",
                                              "ema-0.050.safetensors"]
    for row in rows:
        assert 0 <= row["accuracy"] <= 1 and np.sum(row["confusion"]) == 8
        assert np.isfinite(row["frechet_to_test"])
    assert rows[-1]["sampler"]["sampler"] == "heun"


def test_a_step_past_its_time_is_killed_and_a_crash_is_reported(tmp_path):
    oneshot = _script_module()
    start = time.time()
    with open(tmp_path / "log.txt", "ab") as log:
        code, timed_out = oneshot.run_child([sys.executable, "-c", "import time; time.sleep(60)"], 1, log)
        assert timed_out and time.time() - start < 20
        code, timed_out = oneshot.run_child([sys.executable, "-c", "raise SystemExit(3)"], 30, log)
        assert (code, timed_out) == (3, False)


def test_a_failing_step_records_its_traceback(tmp_path, monkeypatch):
    oneshot = _script_module()
    from oneshot import env as env_step

    def broken(step):
        step.result["before"] = 1
        raise RuntimeError("no GPU today")
    monkeypatch.setattr(env_step, "run", broken)
    args = oneshot.argparse.Namespace(child="env", out=str(tmp_path), work=str(tmp_path),
                                      deadline=time.time() + 60, smoke=False)
    assert oneshot.child_main(args) == 1
    record = json.loads((tmp_path / "step-env.json").read_text())
    assert record["status"] == "failed" and record["result"] == {"before": 1}
    assert "RuntimeError: no GPU today" in record["error"]

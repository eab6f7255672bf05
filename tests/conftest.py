"""Shared fixtures: a tiny trained run reused by the API and command-line tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _few_threads():
    """Tests run on a 2-core CI machine: keep torch from oversubscribing it."""
    torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _sampling_precision_fp32(monkeypatch):
    """``radiogen sample`` takes bf16 on CPUs where it samples faster (native bf16): the tests
    compare its images with api.sample's fp32 ones, so they run it in fp32 on every CPU (the
    rule itself is tested in test_precision.py)."""
    monkeypatch.setattr("radiogen.precision.cpu_samples_faster_in_bf16", lambda: False)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny class-conditioned model trained for a few steps (seconds)."""
    from radiogen import api
    run_dir = tmp_path_factory.mktemp("tiny-run")
    api.train("tiny", run_dir, overrides=["training.iterations=4", "training.checkpoint_every=2",
                                          "training.val_every=2", "training.log_every=2"],
              progress=False)
    return run_dir

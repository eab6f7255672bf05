"""Which network precision ``auto`` means, for training and for sampling, by CPU features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.io import fits

from radiogen import api, precision
from radiogen.cli import main

#: The rule itself; conftest replaces it by ``False`` for the other tests.
SAMPLES_FASTER_IN_BF16 = precision.cpu_samples_faster_in_bf16

CPU = torch.device("cpu")
ZEN4 = {"avx2", "avx512f", "avx512_bf16"}                   # AVX512-BF16, no AMX
SAPPHIRE_RAPIDS = ZEN4 | {"amx_bf16", "amx_tile"}
OLDER = {"avx2", "avx512f"}


@pytest.mark.parametrize("flags, train, sample", [
    (ZEN4, torch.bfloat16, torch.bfloat16),
    (SAPPHIRE_RAPIDS, torch.bfloat16, torch.bfloat16),
    (OLDER, None, None),
    (set(), None, None),                                    # no /proc/cpuinfo (macOS, Windows)
])
def test_auto_precision_by_cpu_features(monkeypatch, flags, train, sample):
    monkeypatch.setattr(precision, "_cpu_flags", lambda: flags)
    monkeypatch.setattr(precision, "cpu_samples_faster_in_bf16", SAMPLES_FASTER_IN_BF16)
    assert precision.resolve_precision("auto", CPU) is train
    assert precision.resolve_precision("auto", CPU, job="sample") is sample
    # what is asked for explicitly does not depend on the CPU
    assert precision.resolve_precision("fp32", CPU, job="sample") is None
    assert precision.resolve_precision("bf16", CPU, job="sample") is torch.bfloat16
    with pytest.raises(ValueError, match="job"):
        precision.resolve_precision("fp32", CPU, job="serve")


def test_cpu_flags_are_read_from_the_flags_line():
    flags = precision._cpu_flags()
    assert isinstance(flags, set)
    if flags:                                               # an x86 Linux machine
        assert "fpu" in flags and not any(":" in f for f in flags)


def test_sample_records_the_precision_it_took(tiny_run, tmp_path, monkeypatch):
    kw = dict(class_label="FRII", steps=3, seed=5, progress=False)
    model = api.load_model(tiny_run)
    fp32 = api.sample(model, 2, **kw)
    common = ["sample", "--checkpoint", str(tiny_run), "--class", "FRII", "-n", "2", "--steps",
              "3", "--seed", "5", "--npy", "--no-progress"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0          # auto on a CPU without
    assert fits.getheader(tmp_path / "a" / "samples.fits")["PRECISN"] == "fp32"  # the rule: fp32
    assert np.array_equal(np.load(tmp_path / "a" / "samples.npy"), fp32)
    monkeypatch.setattr(precision, "cpu_samples_faster_in_bf16", lambda: True)   # native bf16
    assert main(common + ["--out", str(tmp_path / "b")]) == 0
    assert fits.getheader(tmp_path / "b" / "samples.fits")["PRECISN"] == "bf16"
    bf16 = np.load(tmp_path / "b" / "samples.npy")
    np.testing.assert_allclose(bf16, api.sample(model, 2, precision="bf16", **kw), atol=1e-5)
    assert not np.array_equal(bf16, fp32)                   # bf16 did run
    assert np.sqrt(np.mean((bf16 - fp32) ** 2)) < 0.02      # and stayed close to fp32
    assert main(common + ["--precision", "fp32", "--out", str(tmp_path / "c")]) == 0
    assert np.array_equal(np.load(tmp_path / "c" / "samples.npy"), fp32)

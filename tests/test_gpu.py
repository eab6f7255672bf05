"""Correctness on CUDA (marker ``gpu``; skipped without a GPU): training in bf16 and in fp16 with
loss scaling, resuming, every ODE sampler against the CPU, batched guidance, seeded sampling,
and DistributedDataParallel with one process over NCCL.

The GPU machines have no pytest, so these are plain functions of ``tmp_path`` (a folder) that
``scripts/gpu_oneshot.py`` also calls directly; a skip raises ``unittest.SkipTest``, which pytest
and that script both understand. With ``RADIOGEN_GPU_TESTS_ON_CPU=1`` (the script's ``--smoke``
run) they run on the CPU instead, where fp16 is skipped and DDP uses gloo, so that CI keeps the
tests themselves from rotting.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import unittest
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from radiogen import api
from radiogen.config import load_preset
from radiogen.data.first import CLASSES
from radiogen.diffusion import ODE_SAMPLERS, GuidedDenoiser, EDMLoss
from radiogen.models import Denoiser
from radiogen.training.checkpoint import latest_checkpoint, load_training_state, read_model_file

DEVICE = ("cuda" if torch.cuda.is_available() else
          "cpu" if os.environ.get("RADIOGEN_GPU_TESTS_ON_CPU") == "1" else None)

try:
    import pytest
except ImportError:             # the GPU image: scripts/gpu_oneshot.py calls the tests itself
    pytest = None
if pytest is not None:
    pytestmark = [pytest.mark.gpu, pytest.mark.skipif(DEVICE is None, reason="needs CUDA")]

#: bf16 autocast on the GPU; on the CPU (--smoke) fp32, where bf16 kernels run the tiny
#: network's 8-channel convolutions 7x slower.
BF16 = "bf16" if DEVICE == "cuda" else "fp32"
#: Two steps of the tiny preset, logged at every step and validated at the end.
SHORT = ["training.iterations=2", "training.checkpoint_every=1", "training.log_every=1",
         "training.val_every=2", "training.keep_checkpoints=5"]


def _needs_cuda(what: str) -> None:
    if DEVICE != "cuda":
        raise unittest.SkipTest(f"{what} needs CUDA")


def _random_class_model() -> api.Model:
    """The tiny network with random, non-zero weights (zero-initialised layers included)."""
    torch.manual_seed(0)
    denoiser = Denoiser(load_preset("tiny").model)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in denoiser.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    denoiser.eval().requires_grad_(False)
    meta = {"kind": "class", "class_names": list(CLASSES)}
    return api.Model(denoiser, denoiser.cfg, meta, "tiny-random", Path("tiny-random"))


def _on(model: api.Model, device) -> api.Model:
    """A copy of ``model`` on ``device``."""
    return api.Model(copy.deepcopy(model.denoiser).to(device), model.config, model.meta,
                     model.name, model.path)


@contextlib.contextmanager
def _ieee_fp32_convolutions():
    """cuDNN convolutions in true fp32 (by default they round to TF32), through the precision
    setting of torch ≥ 2.9 where it exists (it deprecates the older flag)."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        old, conv.fp32_precision = conv.fp32_precision, "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = old
        return
    old, torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32, False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = old


def _train_tiny(run_dir: Path, precision: str, **kwargs) -> Path:
    return api.train("tiny", run_dir, overrides=SHORT + [f"training.precision={precision}"],
                     device=DEVICE, progress=False, **kwargs)


def _losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.csv").read_text().strip().splitlines()[1:]
    return [float(line.split(",")[2]) for line in lines]


def test_train_bf16_then_export_load_and_sample(tmp_path):
    ckpt = _train_tiny(tmp_path / "run", BF16)
    losses = _losses(tmp_path / "run")
    assert len(losses) == 2 and all(np.isfinite(losses)), losses
    trained = read_model_file(ckpt / "model.safetensors")[0]
    assert all(torch.isfinite(v).all() for v in trained.values())
    torch.manual_seed(0)
    initial = Denoiser(load_preset("tiny").model).state_dict()
    assert any(not torch.equal(trained[k], initial[k]) for k in initial), "the weights never moved"
    path = api.export_model(tmp_path / "run", tmp_path / "model.safetensors", dtype="bf16")
    model = api.load_model(str(path), device=DEVICE)
    assert model.device.type == torch.device(DEVICE).type
    images = api.sample(model, 3, class_label="FRII", steps=4, seed=0, progress=False,
                        precision=BF16)
    assert images.shape == (3, 80, 80) and np.isfinite(images).all()
    print(f"{BF16} losses {losses}")


def test_train_fp16_with_loss_scaling(tmp_path):
    _needs_cuda("fp16 autocast")
    ckpt = _train_tiny(tmp_path / "run", "fp16")
    losses = _losses(tmp_path / "run")
    assert all(np.isfinite(losses)), losses
    scaler = load_training_state(ckpt)["scaler"]
    assert scaler["scale"] > 0, scaler        # the GradScaler ran and its state was saved
    assert all(torch.isfinite(v).all() for v in read_model_file(ckpt / "model.safetensors")[0].values())
    print(f"fp16 losses {losses}, loss scale {scaler['scale']}")


def test_resume_matches_the_uninterrupted_run(tmp_path):
    straight = _train_tiny(tmp_path / "a", BF16)
    _train_tiny(tmp_path / "b", BF16, max_steps=1)
    assert latest_checkpoint(tmp_path / "b").name == "step-0000001"
    resumed = _train_tiny(tmp_path / "b", BF16, resume=True)
    assert resumed.name == straight.name == "step-0000002"
    torch.manual_seed(0)
    start = Denoiser(load_preset("tiny").model).state_dict()
    a, b = read_model_file(straight / "model.safetensors")[0], read_model_file(resumed / "model.safetensors")[0]
    moved = sum(float((a[k] - start[k]).double().norm() ** 2) for k in a) ** 0.5
    differ = sum(float((a[k] - b[k]).double().norm() ** 2) for k in a) ** 0.5
    identical = all(torch.equal(a[k], b[k]) for k in a)
    print(f"resumed vs uninterrupted: |Δ| = {differ:.3g} against {moved:.3g} moved; "
          f"bit-identical: {identical}")
    # GPU kernels may sum in another order from run to run; the runs must agree far better than
    # training moves the weights
    assert differ <= 1e-3 * moved, (differ, moved)


def test_samplers_on_the_device_match_the_cpu():
    model = _random_class_model()
    on_cpu, on_device = model, _on(model, DEVICE)
    rows = {}
    with _ieee_fp32_convolutions():                  # compare fp32 with fp32, not TF32
        for sampler in ODE_SAMPLERS:
            kw = dict(class_label="Bent", steps=3, sampler=sampler, seed=3, progress=False)
            reference = api.sample(on_cpu, 2, **kw)
            got = api.sample(on_device, 2, **kw)
            half = api.sample(on_device, 2, precision=BF16, **kw)
            rows[sampler] = (float(np.sqrt(np.mean((got - reference) ** 2))),
                             float(np.sqrt(np.mean((half - reference) ** 2))))
            assert np.isfinite(got).all() and np.isfinite(half).all(), sampler
            assert got.min() >= 0 and got.max() <= 1, sampler
    print(f"rms against the CPU (fp32, {BF16}):", json.dumps(rows))
    for sampler, (fp32_rms, bf16_rms) in rows.items():
        assert fp32_rms < 1e-3, (sampler, fp32_rms)
        assert bf16_rms < 0.05, (sampler, bf16_rms)


def test_guidance_runs_both_halves_in_one_batch():
    denoiser = _on(_random_class_model(), DEVICE).denoiser
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 1, 80, 80, generator=g) * 2).to(DEVICE)
    ctx = torch.eye(4)[[0, 1, 3]].to(DEVICE)
    sigma, omega = 2.0, 0.75
    D = GuidedDenoiser(denoiser, ctx, omega, interval=(0.5, 5.0))
    with torch.inference_mode(), _ieee_fp32_convolutions():   # batches of 6 and 3: no TF32
        guided = D(x, sigma)
        s = torch.full((3,), sigma, device=DEVICE)
        cond = denoiser(x, s, ctx, torch.ones(3, device=DEVICE))
        uncond = denoiser(x, s, ctx, torch.zeros(3, device=DEVICE))
        outside = D(x, 10.0)                         # above the interval: conditional half only
    assert D.n_evals == 2 and D.n_network_evals == 3
    torch.testing.assert_close(guided, (1 + omega) * cond - omega * uncond, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(cond, uncond)          # the context matters to this network
    assert outside.shape == x.shape and torch.isfinite(outside).all()


def test_seeded_sampling_is_reproducible():
    model = _on(_random_class_model(), DEVICE)
    kw = dict(class_label="FRI", steps=4, seed=11, progress=False)
    once, again = (api.sample(model, 4, batch_size=4, **kw) for _ in range(2))
    assert np.array_equal(once, again)               # the same call gives the same bits
    with _ieee_fp32_convolutions():      # other batch sizes take other kernels: compare in fp32
        first = api.sample(model, 4, batch_size=4, **kw)
        split = api.sample(model, 4, batch_size=2, **kw)
        other = api.sample(model, 4, batch_size=4, **{**kw, "seed": 12})
    print(f"same seeds, batch 4 vs 2: max |Δ| = {np.abs(first - split).max():.3g}")
    np.testing.assert_allclose(first, split, atol=1e-3)   # image k does not depend on the batch
    np.testing.assert_allclose(first[1:], other[:3], atol=1e-3)  # image k is seed + k
    assert not np.allclose(first, other, atol=1e-3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_one_process(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from radiogen.training.loop import _past, _rank_fingerprints

    cuda = DEVICE == "cuda"
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    extra = {"device_id": device} if cuda else {}
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}",
                            rank=0, world_size=1, **extra)
    try:
        torch.manual_seed(0)
        model = Denoiser(load_preset("tiny").model).to(device)
        ddp = DistributedDataParallel(model, device_ids=[0] if cuda else None)
        g = torch.Generator().manual_seed(0)
        x = (torch.rand(4, 1, 80, 80, generator=g) * 2 - 1).to(device)
        ctx = torch.eye(4).to(device)
        sigma, noise = torch.full((4,), 0.7).to(device), torch.randn(4, 1, 80, 80, generator=g).to(device)
        loss_fn = EDMLoss()
        loss_fn(ddp, x, ctx, sigma=sigma, noise=noise).mean().backward()
        through_ddp = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        loss_fn(model, x, ctx, sigma=sigma, noise=noise).mean().backward()
        for a, b in zip(through_ddp, (p.grad for p in model.parameters())):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)   # all-reduce over one rank
        info = SimpleNamespace(enabled=True, device=device, world_size=1)
        assert _past(0.0, info) and not _past(float("inf"), info)    # the loop's broadcast
        fingerprints = _rank_fingerprints(model, info)               # the loop's all_gather
        assert len(fingerprints) == 1 and np.isfinite(fingerprints[0])
        print(f"DDP over {dist.get_backend()} with one process")
    finally:
        dist.destroy_process_group()

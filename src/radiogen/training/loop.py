"""The training loop of Section 4.2: Eq. (22) loss, Adam, EMA, mixed precision, flips/rot90,
context dropout, validation loss, resumable checkpoints, DDP through torchrun.

Randomness is derived from (seed, step, rank) at every step, so a resumed run draws exactly the
batches, noise levels and dropout masks that the uninterrupted run would have drawn.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from radiogen.atomic import atomic_path
from radiogen.config import Config
from radiogen.data.conditions import Condition, conditions_of
from radiogen.data.datasets import augment_dihedral, load_training_set, split_train_valid
from radiogen.data.transforms import recorded_stretch
from radiogen.diffusion.consistency import ConsistencyLoss
from radiogen.diffusion.loss import EDMLoss
from radiogen.models import Denoiser, count_parameters
from radiogen.precision import cpu_supports_bf16, resolve_precision
from radiogen.training.checkpoint import (latest_checkpoint, load_denoiser, load_training_state,
                                         read_model_file, resolve_model_path, save_checkpoint,
                                         save_model_file)
from radiogen.training.distributed import cleanup_distributed, init_distributed
from radiogen.training.ema import EMA, PowerEMA
from radiogen.training.posthoc_ema import snapshot_path

__all__ = ["train", "resolve_precision", "cpu_supports_bf16"]

METRIC_FIELDS = ["step", "images", "loss", "val_loss", "val_loss_ema", "lr", "images_per_s", "elapsed_s"]


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0]))


def _batch_indices(step: int, n: int, global_batch: int, rank: int, local_batch: int, seed: int):
    """Indices of this rank's share of batch ``step``: consecutive slices of one seeded random
    permutation of the training set per epoch."""
    positions = step * global_batch + rank * local_batch + np.arange(local_batch)
    epochs, offsets = np.divmod(positions, n)
    out = np.empty(local_batch, dtype=np.int64)
    for epoch in np.unique(epochs):
        perm = np.random.default_rng([seed, int(epoch)]).permutation(n)
        out[epochs == epoch] = perm[offsets[epochs == epoch]]
    return torch.from_numpy(out)


def context_keep(ctx: torch.Tensor, context_dropout: float, column_dropout: float,
                 column_mask: bool, generator: torch.Generator) -> torch.Tensor:
    """The context mask of a training batch: each image's whole context is dropped (the null
    token ∅ of classifier-free guidance) at rate ``context_dropout``; with ``column_mask``,
    each column of the others is also dropped on its own at rate ``column_dropout``, and
    unknown (NaN) values are never given. Shape (N,), or (N, k) with ``column_mask``."""
    keep = (torch.rand(len(ctx), generator=generator) >= context_dropout).float().to(ctx.device)
    if not column_mask:
        return keep
    columns = (torch.rand(ctx.shape, generator=generator) >= column_dropout).to(ctx.device)
    return (columns & torch.isfinite(ctx)).float() * keep[:, None]


@torch.no_grad()
def validation_loss(denoiser, loss_fn, valid, device, autocast, batch_size=256, seed=12345) -> float:
    """Eq. (22) on the validation set with fixed noise levels and noise: comparable over a run."""
    if len(valid) == 0:
        return float("nan")
    was_training = denoiser.training
    denoiser.eval()
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for start in range(0, len(valid), batch_size):
        x = valid.images[start:start + batch_size].to(device)
        ctx = valid.context[start:start + batch_size].to(device)
        sigma = loss_fn.sample_sigma(x.shape[0], g).to(device)
        noise = torch.randn(x.shape, generator=g).to(device)
        mask = torch.isfinite(ctx).float() if denoiser.cfg.column_mask else None
        with autocast():
            total += loss_fn(denoiser, x, ctx, mask, sigma=sigma, noise=noise).sum().item()
    denoiser.train(was_training)
    return total / len(valid)


class _MetricsLog:
    """metrics.csv (rows beyond a resumed step are dropped) and TensorBoard scalars."""

    def __init__(self, run_dir: Path, start_step: int):
        self.path = run_dir / "metrics.csv"
        rows = []
        if self.path.exists() and start_step > 0:
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, METRIC_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        from torch.utils.tensorboard import SummaryWriter
        self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step or None)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, METRIC_FIELDS).writerow({k: row.get(k, "") for k in METRIC_FIELDS})
        for key in ("loss", "val_loss", "val_loss_ema", "lr", "images_per_s"):
            if isinstance(row.get(key), float) and np.isfinite(row[key]):
                self.tb.add_scalar(key, row[key], row["step"])
        self.tb.flush()

    def close(self) -> None:
        self.tb.close()


def _init_from(model, ema, model_cfg, source: str, data_meta: dict) -> None:
    """Start ``model`` and its EMA from the weights in ``source`` (a model file or a run or
    checkpoint folder, EMA weights preferred), which must have the same architecture, except
    that a model conditioned on fewer source properties (e.g. ``first-flux``, peak flux only)
    may start one conditioned on more (:func:`_widen_context`). Weights trained on another
    pixel range (``data.stretch``) start it with a warning: a deliberate change of range is
    allowed (the stretched ``first-flux`` runs began so), an overlooked one is named."""
    path = resolve_model_path(source)           # api.train has turned a bundled name into a file
    state, saved_cfg, saved_meta = read_model_file(path)
    saved_stretch, stretch = recorded_stretch(saved_meta), recorded_stretch(data_meta)
    if saved_stretch != stretch:
        warnings.warn(f"{path}: training.init_from was trained with data.stretch={saved_stretch:g}, "
                      f"this run has data.stretch={stretch:g}: its weights start on another pixel "
                      f"range (--set data.stretch={saved_stretch:g} keeps theirs)", stacklevel=2)
    if saved_cfg != model_cfg:
        same_net = dataclasses.replace(saved_cfg, context_dim=model_cfg.context_dim,
                                       column_mask=model_cfg.column_mask) == model_cfg
        if not (same_net and model_cfg.column_mask):
            raise ValueError(f"{path}: training.init_from has another architecture than model "
                             f"({saved_cfg} against {model_cfg})")
        state = _widen_context(state, saved_cfg, saved_meta, model_cfg, data_meta, path)
    model.load_state_dict(state)
    ema.model.load_state_dict(state)


def _widen_context(state, saved_cfg, saved_meta, model_cfg, data_meta, path) -> dict:
    """The weights of a model with columns c₁…c_j, for one with columns that include them:
    the first layer of the context embedding gets a zero input weight for every new column and
    for the "given" flags, so that the new model starts as the old one whenever only the old
    columns are given."""
    old = [Condition.from_dict(c) for c in saved_meta.get("conditions", [])] or (
        conditions_of({f"boxcox_{k}": v for k, v in saved_meta.get("boxcox", {}).items()}))
    new = [Condition.from_dict(c) for c in data_meta.get("conditions", [])]
    where = {c.name: j for j, c in enumerate(new)}
    if not old or any(c.name not in where for c in old):
        raise ValueError(f"{path}: training.init_from is conditioned on "
                         f"{[c.name for c in old] or saved_meta.get('kind')}, which the new "
                         f"conditions {[c.name for c in new]} do not all include")
    for c in old:
        n = new[where[c.name]]
        if not all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
                   for a, b in ((c.mean, n.mean), (c.std, n.std), (c.lam, n.lam))):
            raise ValueError(f"{path}: training.init_from transforms {c.name} otherwise than "
                             f"the data ({c} against {n}); build the store from the same images")
    key = "net.context_embed.0.weight"
    w_old, k_old, k_new = state[key], saved_cfg.context_dim, model_cfg.context_dim
    w = torch.zeros(w_old.shape[0], 2 * k_new)
    for i, c in enumerate(old):
        w[:, where[c.name]] = w_old[:, i]
        if saved_cfg.column_mask:
            w[:, k_new + where[c.name]] = w_old[:, k_old + i]
    return {**state, key: w}


def _loss_function(tc, model_cfg, device, data_meta: dict):
    """Eq. (22), or the consistency loss with its teacher (frozen, in eval mode) if it has one,
    which must have been trained on the same pixel range (``data.stretch``)."""
    if tc.objective == "edm":
        return EDMLoss(tc.p_mean, tc.p_std, model_cfg.sigma_data)
    teacher = None
    if tc.consistency_teacher and tc.consistency_guidance and tc.context_dropout:
        raise ValueError("consistency distillation from a guided teacher teaches the guided image "
                         "for every context: set training.context_dropout=0")
    if tc.consistency_teacher:
        teacher, teacher_cfg, teacher_meta = load_denoiser(resolve_model_path(tc.consistency_teacher),
                                                           device)
        if teacher_cfg.context_dim != model_cfg.context_dim:
            raise ValueError(f"{tc.consistency_teacher}: the teacher has a {teacher_cfg.context_dim}-d "
                             f"context, the model {model_cfg.context_dim}")
        teacher_stretch, stretch = recorded_stretch(teacher_meta), recorded_stretch(data_meta)
        if teacher_stretch != stretch:
            raise ValueError(f"{tc.consistency_teacher}: the teacher was trained with data.stretch="
                             f"{teacher_stretch}, this run has {stretch}: set the same")
    return ConsistencyLoss(tc.p_mean, tc.p_std, model_cfg.sigma_data, teacher,
                           tc.consistency_guidance)


def _load_power_ema(power_ema: PowerEMA, ckpt: Path, model) -> None:
    """The profiles saved in a checkpoint; a profile the checkpoint lacks (post-hoc EMA switched
    on when resuming an older run) starts from the current weights, as if they had been
    constant so far."""
    for i, average in enumerate(power_ema.models):
        path = ckpt / power_ema.file_name(i)
        average.load_state_dict(read_model_file(path)[0] if path.is_file() else model.state_dict())


def _past(deadline: float, dist_info) -> bool:
    """Whether the wall-clock deadline has passed (rank 0 decides, so all ranks stop together)."""
    passed = time.monotonic() >= deadline
    if not dist_info.enabled:
        return passed
    flag = torch.tensor([float(passed)], device=dist_info.device)
    torch.distributed.broadcast(flag, 0)
    return bool(flag.item())


def _rank_fingerprints(model, dist_info) -> list[float]:
    """A checksum of the weights from every rank (all equal when DDP keeps them in step)."""
    fp = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    if not dist_info.enabled:
        return [fp.item()]
    import torch.distributed as dist
    gathered = [torch.zeros_like(fp) for _ in range(dist_info.world_size)]
    dist.all_gather(gathered, fp.to(dist_info.device))
    return [g.item() for g in gathered]


def train(cfg: Config, run_dir, resume: bool = False, device: str = "auto",
          progress: bool = True, max_steps: int | None = None,
          max_minutes: float | None = None) -> Path:
    """Train a denoiser as ``cfg`` says, writing checkpoints and metrics into ``run_dir``.

    ``resume`` continues from the newest checkpoint in ``run_dir`` (exactly: same batches and
    noise as without the interruption). ``max_steps`` stops early after that many steps of this
    call, ``max_minutes`` after the first step that ends past that wall-clock time; either way
    a checkpoint is written and the run can be resumed. Returns the folder of the last
    checkpoint.
    """
    tc, run_dir = cfg.training, Path(run_dir)
    dist_info = init_distributed(device)
    dev = dist_info.device
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.set_flush_denormal(True)  # softmax tails underflow to subnormals, 10-50x slower on CPUs
    amp_dtype = resolve_precision(tc.precision, dev)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    def autocast():
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(dev.type, dtype=amp_dtype)

    data = load_training_set(cfg.data, tc.seed)
    if data.context.shape[1] != cfg.model.context_dim:
        raise ValueError(f"the data has a {data.context.shape[1]}-d context ({data.meta['kind']}) "
                         f"but model.context_dim is {cfg.model.context_dim}")
    if ("conditions" in data.meta) != cfg.model.column_mask:
        raise ValueError("data conditioned on named source properties need model.column_mask=true, "
                         "and model.column_mask=true needs such data (`radiogen data conditions`)")
    if tc.augment and any(c["name"] == "position_angle" for c in data.meta.get("conditions", [])):
        raise ValueError("position_angle as a condition would be scrambled by the flips and "
                         "rotations of training.augment: set training.augment=false, or rotate "
                         "the images on placement instead (radiogen map does)")
    train_set, valid_set = split_train_valid(data, cfg.data.valid_fraction, tc.seed)
    torch.manual_seed(tc.seed)
    model = Denoiser(cfg.model).to(dev)
    ema = EMA(model, tc.ema_rate, tc.ema_warmup)
    power_ema = PowerEMA(model, tc.ema_profiles) if tc.ema_profiles else None
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr)
    loss_fn = _loss_function(tc, cfg.model, dev, data.meta)
    meta = {**data.meta, "preset": cfg.name, "training": json.loads(json.dumps(vars(tc)))}

    step = 0
    ckpt = latest_checkpoint(run_dir) if resume else None
    if resume and ckpt is None:
        raise FileNotFoundError(f"{run_dir}: nothing to resume (no checkpoint)")
    if ckpt is not None:
        model.load_state_dict(read_model_file(ckpt / "model.safetensors")[0])
        ema.model.load_state_dict(read_model_file(ckpt / "ema.safetensors")[0])
        if power_ema is not None:
            _load_power_ema(power_ema, ckpt, model)
        state = load_training_state(ckpt)
        optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
    elif dist_info.is_main and (run_dir / "checkpoints").exists():
        raise ValueError(f"{run_dir} already holds a run; use --resume or another folder")
    elif tc.init_from:
        _init_from(model, ema, cfg.model, tc.init_from, data.meta)
        if power_ema is not None:
            power_ema = PowerEMA(model, tc.ema_profiles)

    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(run_dir / "config.json") as tmp:
            tmp.write_text(cfg.to_json())
        print(f"radiogen train: {count_parameters(model):,} parameters, {len(train_set)} training and "
              f"{len(valid_set)} validation images, {dev}, "
              f"{'fp32' if amp_dtype is None else str(amp_dtype).split('.')[-1]}"
              f"{f', {dist_info.world_size} processes' if dist_info.enabled else ''}", flush=True)
    log = _MetricsLog(run_dir, step) if dist_info.is_main else None
    net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None) \
        if dist_info.enabled else model
    if tc.batch_size % dist_info.world_size:
        raise ValueError(f"batch size {tc.batch_size} does not split over {dist_info.world_size} processes")
    local_batch = tc.batch_size // dist_info.world_size
    weights = train_set.weights.to(dev)
    end = tc.iterations if max_steps is None else min(tc.iterations, step + max_steps)
    deadline = None if max_minutes is None else time.monotonic() + 60 * max_minutes
    snapshot_every = tc.ema_snapshot_every or tc.checkpoint_every
    bar = tqdm(total=tc.iterations, initial=step, disable=not (progress and dist_info.is_main),
               desc="training", unit="step", dynamic_ncols=True)
    model.train()
    t0, window_t, window_steps, losses = time.perf_counter(), time.perf_counter(), 0, []
    last_ckpt = ckpt
    while step < end:
        g = _step_generator(tc.seed, step, dist_info.rank)
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=g)))  # dropout masks
        idx = _batch_indices(step, len(train_set), tc.batch_size, dist_info.rank, local_batch, tc.seed)
        # flips and rotations after the copy: on a GPU they are free there, while on the host
        # they cost more than the step itself (0.2 s per 512 images on one core)
        x, ctx = train_set.images[idx].to(dev), train_set.context[idx].to(dev)
        if tc.augment:
            x = augment_dihedral(x, g)
        keep = context_keep(ctx, tc.context_dropout, tc.column_dropout, cfg.model.column_mask, g)
        sigma = loss_fn.sample_sigma(local_batch, g).to(dev)
        noise = torch.randn(x.shape, generator=g).to(dev)
        lr = tc.lr * min(1.0, (step + 1) / tc.lr_warmup) if tc.lr_warmup else tc.lr
        for group in optimizer.param_groups:
            group["lr"] = lr
        if isinstance(loss_fn, ConsistencyLoss):
            loss_fn.stage = tc.consistency_stages * step // tc.iterations
        with autocast():
            per_image = loss_fn(net, x, ctx, keep, sigma=sigma, noise=noise)
        loss = (per_image * weights[idx.to(dev)]).mean()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if tc.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        ema.update(model, step)
        if power_ema is not None:
            power_ema.update(model, step)
        step += 1
        if deadline is not None and _past(deadline, dist_info):
            end = step
        window_steps += 1
        losses.append(loss.detach())   # read at logging time: no host-device sync every step
        bar.update(1)

        row = None
        if step % tc.log_every == 0 or step == end:
            mean_loss = float(np.mean(torch.stack(losses).cpu().numpy(), dtype=np.float64))
            rate = window_steps * tc.batch_size / (time.perf_counter() - window_t)  # after the sync
            row = {"step": step, "images": step * tc.batch_size, "loss": mean_loss,
                   "lr": lr, "images_per_s": rate, "elapsed_s": time.perf_counter() - t0}
            bar.set_postfix(loss=f"{row['loss']:.4f}", img_s=f"{rate:.1f}")
            window_t, window_steps, losses = time.perf_counter(), 0, []
        if dist_info.is_main and (step % tc.val_every == 0 or step == end):
            row = row or {"step": step, "images": step * tc.batch_size, "lr": lr,
                          "elapsed_s": time.perf_counter() - t0}
            row["val_loss"] = validation_loss(model, loss_fn, valid_set, dev, autocast)
            row["val_loss_ema"] = validation_loss(ema.model, loss_fn, valid_set, dev, autocast)
        if row is not None and log is not None:
            log.write(row)
        if power_ema is not None and dist_info.is_main and (step % snapshot_every == 0 or step == end):
            for sigma_rel, average in zip(power_ema.sigma_rels, power_ema.models):
                save_model_file(snapshot_path(run_dir, sigma_rel, step), average.state_dict(),
                                cfg.model, {**meta, "step": step, "ema_sigma_rel": sigma_rel})
        if step % tc.checkpoint_every == 0 or step == end:
            fingerprints = _rank_fingerprints(model, dist_info)
            if dist_info.is_main:
                profiles = {} if power_ema is None else {
                    power_ema.file_name(i): m for i, m in enumerate(power_ema.models)}
                last_ckpt = save_checkpoint(
                    run_dir, step, model, ema.model, optimizer, cfg.model,
                    {**meta, "rank_fingerprints": fingerprints},
                    {"scaler": scaler.state_dict()} if scaler.is_enabled() else None,
                    keep=tc.keep_checkpoints, extra_models=profiles)
            if dist_info.enabled:
                torch.distributed.barrier()
    bar.close()
    if log is not None:
        log.close()
    cleanup_distributed()
    return last_ckpt if last_ckpt is not None else Path(run_dir)

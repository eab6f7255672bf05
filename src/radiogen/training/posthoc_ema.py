"""Post-hoc EMA (Karras et al. 2024, EDM2, Section 3 and Appendix C.2): choose the EMA length
after training.

During training two or more power-function EMA profiles (``training.ema_profiles``, σ_rel) are
kept and snapshotted every ``training.ema_snapshot_every`` steps into ``RUN/ema-snapshots/``.
A snapshot of profile γ taken after t steps averages the weights θ(τ) with the density

    p_{γ,t}(τ) = (γ + 1) τ^γ / t^(γ+1),   0 ≤ τ ≤ t.

The average of any other profile (γ_r, t_r) is approximated by the combination Σ x_i θ̂_i of the
snapshots whose densities come closest to p_{γ_r,t_r} in L2: x minimises xᵀA x − 2 bᵀx with
A_ij = ⟨p_i, p_j⟩ and b_i = ⟨p_i, p_r⟩, where for two profiles

    ⟨p_{γa,ta}, p_{γb,tb}⟩ = (γa + 1)(γb + 1) min(ta, tb)^(γa+γb+1) / ((γa + γb + 1) ta^(γa+1) tb^(γb+1)),

under Σ x_i = 1, so that the result stays an average of weights. EDM2 solves A x = b alone,
which is exact inside the range of the tracked lengths; outside it (σ_rel 0.20 from snapshots of
0.05 and 0.10, on a run of 4259 steps) that x sums to 0.984 and scales every weight down by 1.6%,
which a denoiser does not survive (first-flux.md, "Training on at lr 1e-4"). How well p_r is
matched is returned by ``profile_error``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radiogen.training.checkpoint import read_model_file, save_model_file
from radiogen.training.ema import sigma_rel_to_gamma

__all__ = ["Snapshot", "SNAPSHOT_DIR", "snapshot_path", "list_snapshots", "inner_products",
           "coefficients", "profile_error", "reconstruct", "write_reconstructions", "describe"]

SNAPSHOT_DIR = "ema-snapshots"
_NAME = re.compile(r"power-(?P<sigma>[0-9.]+)-step-(?P<step>\d+)\.safetensors$")


@dataclass(frozen=True)
class Snapshot:
    path: Path
    sigma_rel: float
    gamma: float
    step: int


def snapshot_path(run_dir, sigma_rel: float, step: int) -> Path:
    return Path(run_dir) / SNAPSHOT_DIR / f"power-{sigma_rel:.3f}-step-{step:07d}.safetensors"


def list_snapshots(run_dir) -> list[Snapshot]:
    """The power-EMA snapshots of a run, oldest first."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    found = []
    for path in sorted(folder.glob("power-*-step-*.safetensors")):
        m = _NAME.search(path.name)
        if m:
            sigma = float(m["sigma"])
            found.append(Snapshot(path, sigma, sigma_rel_to_gamma(sigma), int(m["step"])))
    return sorted(found, key=lambda s: (s.step, s.sigma_rel))


def inner_products(gamma_a, t_a, gamma_b, t_b) -> np.ndarray:
    """⟨p_{γa,ta}, p_{γb,tb}⟩ for arrays that broadcast (computed in logarithms: γ t can be large)."""
    gamma_a, t_a, gamma_b, t_b = (np.asarray(v, dtype=np.float64) for v in (gamma_a, t_a, gamma_b, t_b))
    log = (np.log((gamma_a + 1) * (gamma_b + 1) / (gamma_a + gamma_b + 1))
           + (gamma_a + gamma_b + 1) * np.log(np.minimum(t_a, t_b))
           - (gamma_a + 1) * np.log(t_a) - (gamma_b + 1) * np.log(t_b))
    return np.exp(log)


def _gram(gammas, steps, gamma_r: float, step_r: int):
    """A and b of the least-squares fit, times t_r (which makes them of order 1)."""
    g, t = np.asarray(gammas, dtype=np.float64), np.asarray(steps, dtype=np.float64)
    A = inner_products(g[:, None], t[:, None], g[None, :], t[None, :]) * step_r
    b = inner_products(g, t, gamma_r, step_r) * step_r
    return A, b


def coefficients(gammas, steps, gamma_r: float, step_r: int) -> np.ndarray:
    """Weights x of the snapshots (profiles ``gammas`` after ``steps``) whose combination best
    approximates the profile γ_r after ``step_r`` steps: least squares under Σ x_i = 1, solved
    with its Lagrange multiplier μ as [[A, 1], [1ᵀ, 0]] [x, μ] = [b, 1]."""
    A, b = _gram(gammas, steps, gamma_r, step_r)
    n = len(b)
    kkt = np.block([[A, np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    return np.linalg.lstsq(kkt, np.append(b, 1.0), rcond=None)[0][:n]


def profile_error(gammas, steps, x, gamma_r: float, step_r: int) -> float:
    """Relative L2 distance ‖Σ x_i p_i − p_r‖ / ‖p_r‖ of the rebuilt averaging profile to the one
    asked for (0 when p_r is a tracked snapshot; a few per cent outside the tracked lengths)."""
    A, b = _gram(gammas, steps, gamma_r, step_r)
    x = np.asarray(x, dtype=np.float64)
    r_r = inner_products(gamma_r, step_r, gamma_r, step_r) * step_r
    return float(np.sqrt(max(x @ A @ x - 2 * x @ b + r_r, 0.0) / r_r))


def reconstruct(run_dir, sigma_rel: float, step: int | None = None):
    """(state dict, model config, meta) of the EMA with length ``sigma_rel`` after ``step``
    training steps (default: the newest snapshot), from the run's snapshots up to that step."""
    snaps = list_snapshots(run_dir)
    if not snaps:
        raise FileNotFoundError(f"{run_dir}: no power-EMA snapshots in {SNAPSHOT_DIR}/ (train with "
                                "training.ema_profiles set)")
    step = snaps[-1].step if step is None else int(step)
    snaps = [s for s in snaps if s.step <= step]
    if not snaps:
        raise ValueError(f"{run_dir}: no power-EMA snapshot at or before step {step}")
    gammas, steps = [s.gamma for s in snaps], [s.step for s in snaps]
    gamma_r = sigma_rel_to_gamma(sigma_rel)
    x = coefficients(gammas, steps, gamma_r, step)
    state, cfg, meta = None, None, {}
    for weight, snap in zip(x, snaps):
        snap_state, cfg, meta = read_model_file(snap.path)
        if state is None:
            state = {k: torch.zeros_like(v, dtype=torch.float64) if v.is_floating_point() else v
                     for k, v in snap_state.items()}
        for k, v in snap_state.items():
            if v.is_floating_point():
                state[k] += float(weight) * v.double()
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    error = profile_error(gammas, steps, x, gamma_r, step)
    meta = {**meta, "step": step, "ema": {"posthoc_sigma_rel": sigma_rel,
                                          "from_snapshots": len(snaps), "profile_error": error}}
    return state, cfg, meta


def write_reconstructions(run_dir, sigma_rels, out_dir, step: int | None = None) -> list[Path]:
    """One model file ``ema-<σ_rel>.safetensors`` per length in ``out_dir``."""
    paths = []
    for sigma_rel in sigma_rels:
        state, cfg, meta = reconstruct(run_dir, sigma_rel, step)
        paths.append(save_model_file(Path(out_dir) / f"ema-{sigma_rel:.3f}.safetensors",
                                     state, cfg, meta))
    return paths


def describe(run_dir) -> str:
    """A line on a run's snapshots."""
    snaps = list_snapshots(run_dir)
    if not snaps:
        return f"{run_dir}: no power-EMA snapshots"
    profiles = sorted({s.sigma_rel for s in snaps})
    return (f"{run_dir}: {len(snaps)} snapshots of the profiles σ_rel = "
            f"{', '.join(f'{p:.3f}' for p in profiles)}, steps {snaps[0].step}–{snaps[-1].step}")

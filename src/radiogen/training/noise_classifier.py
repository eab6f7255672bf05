"""Training the noise-aware classifier p_φ(c | x; σ) that classifier guidance uses
(:class:`radiogen.models.noise_classifier.NoiseAwareClassifier`, Dhariwal & Nichol 2021).

Images of the FIRST train split are noised as in diffusion training, x = y + σ·n with
ln σ ~ N(P_mean, P_std²), flipped and rotated by multiples of 90°, and classified with a
class-weighted cross-entropy (the paper's balancing for its classifier, Section 5.3). An EMA of
the weights is scored on the valid split at a fixed set of noise levels; the best one is kept.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from radiogen.config import DataConfig, ModelConfig
from radiogen.data.datasets import augment_dihedral, load_training_set
from radiogen.models.noise_classifier import NoiseAwareClassifier
from radiogen.training.checkpoint import read_model_file, save_model_file
from radiogen.training.ema import EMA

__all__ = ["train_noise_classifier", "load_noise_classifier", "accuracy_by_sigma", "SCORE_SIGMAS",
           "guide_classifier_config"]

#: Noise levels at which the classifier is scored on the valid split (those where guidance acts).
SCORE_SIGMAS = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0)


def guide_classifier_config(width: int = 16) -> ModelConfig:
    """The default network: the ResNet-18 layout at ``width`` first-stage channels (16: 0.7 M
    parameters), stored as a :class:`ModelConfig` whose ``channels`` is that width."""
    return ModelConfig(channels=width, channel_mult=(1,), attention=(False,), norm_groups=1,
                       dropout=0.0, context_dim=0)


@torch.no_grad()
def accuracy_by_sigma(classifier, images, labels, sigmas=SCORE_SIGMAS, seed=0) -> dict:
    """Accuracy on ``images`` (N, 1, H, W in [−1, 1]) noised with fixed noise at each σ."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=g)
    out = {}
    for sigma in sigmas:
        logits = torch.cat([classifier(images[i:i + 256] + sigma * noise[i:i + 256], sigma)
                            for i in range(0, len(images), 256)])
        out[f"{sigma:g}"] = float((logits.argmax(1) == labels).float().mean())
    return out


def train_noise_classifier(out, cfg: ModelConfig, steps: int = 3000, batch_size: int = 64,
                           lr: float = 1e-3, p_mean: float = -0.6, p_std: float = 1.5,
                           ema_rate: float = 0.999, eval_every: int = 250, seed: int = 0,
                           limit: int = 0, progress: bool = True) -> dict:
    """Train on the FIRST train split, keep the EMA weights that score best on the valid split
    (mean accuracy over :data:`SCORE_SIGMAS`), write them to ``out`` (a model file) and return
    the record (accuracy by σ, step)."""
    train = load_training_set(DataConfig(first_splits=("train",), balance="weight", limit=limit), seed)
    valid = load_training_set(DataConfig(first_splits=("valid",), balance="none", limit=limit), seed)
    names = train.meta["class_names"]
    train_labels, valid_labels = train.context.argmax(1), valid.context.argmax(1)
    torch.manual_seed(seed)
    net = NoiseAwareClassifier(cfg, len(names))
    ema = EMA(net, ema_rate)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    best = {"score": -1.0}
    for step in tqdm(range(steps), desc="noise-aware classifier", disable=not progress):
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))
        idx = torch.randint(len(train), (batch_size,), generator=g)
        y = augment_dihedral(train.images[idx], g)
        sigma = (torch.randn(batch_size, generator=g) * p_std + p_mean).exp()
        x = y + sigma[:, None, None, None] * torch.randn(y.shape, generator=g)
        loss = (F.cross_entropy(net(x, sigma), train_labels[idx], reduction="none")
                * train.weights[idx]).mean()
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(net, step)
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            acc = accuracy_by_sigma(ema.model, valid.images, valid_labels)
            score = float(np.mean(list(acc.values())))
            if score > best["score"]:
                best = {"score": score, "step": step + 1, "valid_accuracy_by_sigma": acc,
                        "state": {k: v.clone() for k, v in ema.model.state_dict().items()}}
    meta = {"kind": "noise-classifier", "class_names": list(names),
            "step": best["step"], "valid_accuracy_by_sigma": best["valid_accuracy_by_sigma"],
            "training": {"steps": steps, "batch_size": batch_size, "lr": lr, "p_mean": p_mean,
                         "p_std": p_std, "ema_rate": ema_rate, "seed": seed,
                         "data": "FIRST train split; best EMA on the valid split"}}
    save_model_file(out, best.pop("state"), cfg, meta)
    return {k: v for k, v in best.items()}


def load_noise_classifier(path, device="cpu") -> NoiseAwareClassifier:
    """A noise-aware classifier from its model file (frozen, eval mode)."""
    state, cfg, meta = read_model_file(path)
    if meta.get("kind") != "noise-classifier":
        raise ValueError(f"{path}: not a noise-aware classifier (kind {meta.get('kind')!r}); "
                         "train one with `radiogen classifier train-guide`")
    net = NoiseAwareClassifier(cfg, len(meta["class_names"]))
    net.load_state_dict(state)
    net.class_names = list(meta["class_names"])
    return net.eval().requires_grad_(False).to(device)

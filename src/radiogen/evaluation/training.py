"""Training the morphology classifier (Section 5.3, Table 6).

Cross-entropy weighted by inverse class frequency, Adam (learning rate 1e−3), batches of 128,
200 epochs, and a reduce-on-plateau learning-rate schedule on the validation loss (factor 0.135,
patience 50 epochs, minimum 1e−5), with the augmentations of :mod:`~radiogen.evaluation.augment`.
The checkpoint kept is the epoch with the lowest validation loss; it is written (safetensors,
atomically) each time the validation loss improves, so an interrupted run leaves its best
weights behind.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from radiogen.data.first import inverse_frequency_weights
from radiogen.evaluation.augment import AugmentSettings, augment
from radiogen.evaluation.classifier import (Classification, ClassifierConfig, RadioClassifier,
                                            classify, resolve_device, save_classifier,
                                            to_network_range)

__all__ = ["TrainSettings", "TrainResult", "train_classifier", "train_first_classifier"]


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters of the classifier training (Table 6)."""

    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 200
    lr_factor: float = 0.135
    lr_patience: int = 50
    min_learning_rate: float = 1e-5
    augment: bool = True
    seed: int = 0


@dataclass
class TrainResult:
    """The best-validation classifier and the record of its training."""

    model: RadioClassifier
    best_epoch: int
    best_valid_loss: float
    best_valid_accuracy: float
    history: list[dict] = field(default_factory=list)

    def record(self) -> dict:
        return {"best_epoch": self.best_epoch, "best_valid_loss": self.best_valid_loss,
                "best_valid_accuracy": self.best_valid_accuracy, "history": self.history}


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        index = order[i:i + batch_size]
        if len(index) > 1:  # batch norm needs two samples
            yield index


def _train_epoch(model, optimizer, x, y, weights, settings, generator, device) -> float:
    model.train()
    total, count = 0.0, 0
    for index in _batches(len(x), settings.batch_size, generator):
        xb = x[index]
        if settings.augment:
            xb = augment(xb, generator, AugmentSettings())
        loss = F.cross_entropy(model(xb.to(device)), y[index].to(device), weight=weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(index), count + len(index)
    return total / max(count, 1)


@torch.no_grad()
def _validate(model, x, y, weights, batch_size, device) -> tuple[float, float]:
    model.eval()
    logits = torch.cat([model(x[i:i + batch_size].to(device)) for i in range(0, len(x), batch_size)])
    loss = F.cross_entropy(logits, y.to(device), weight=weights)
    return float(loss), float((logits.argmax(1).cpu() == y).float().mean())


def train_classifier(train_images: np.ndarray, train_labels: np.ndarray,
                     valid_images: np.ndarray, valid_labels: np.ndarray,
                     settings: TrainSettings = TrainSettings(),
                     config: ClassifierConfig = ClassifierConfig(),
                     out: str | os.PathLike | None = None, device="auto",
                     progress: bool = True) -> TrainResult:
    """Train the classifier and return its best-validation state.

    Parameters
    ----------
    train_images, valid_images : ndarray, shape (N, H, W)
        Images in [0, 1].
    train_labels, valid_labels : ndarray of int
        Class indices.
    settings : TrainSettings
        Table 6 by default.
    config : ClassifierConfig
        ResNet-18 with the paper's head by default.
    out : path, optional
        Safetensors file rewritten at every new best validation loss.
    device : str
        ``"auto"``: CUDA where available.
    """
    if len(train_images) < 2 or len(valid_images) < 1:
        raise ValueError("training needs at least 2 training and 1 validation image")
    device = resolve_device(device)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    model = RadioClassifier(config).to(device)
    x, y = to_network_range(train_images), torch.as_tensor(train_labels, dtype=torch.int64)
    xv, yv = to_network_range(valid_images), torch.as_tensor(valid_labels, dtype=torch.int64)
    weights = torch.as_tensor(inverse_frequency_weights(np.asarray(train_labels),
                                                        config.n_classes)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=settings.lr_factor, patience=settings.lr_patience,
        min_lr=settings.min_learning_rate)
    best = TrainResult(model, -1, float("inf"), 0.0)
    best_state = None
    bar = tqdm(range(settings.epochs), desc="classifier", unit="epoch", disable=not progress)
    for epoch in bar:
        train_loss = _train_epoch(model, optimizer, x, y, weights, settings, generator, device)
        valid_loss, valid_accuracy = _validate(model, xv, yv, weights, settings.batch_size, device)
        scheduler.step(valid_loss)
        best.history.append({"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                             "valid_accuracy": valid_accuracy,
                             "learning_rate": optimizer.param_groups[0]["lr"]})
        if valid_loss < best.best_valid_loss:
            best.best_epoch, best.best_valid_loss = epoch, valid_loss
            best.best_valid_accuracy = valid_accuracy
            best_state = copy.deepcopy(model.state_dict())
            if out is not None:
                save_classifier(model, out, {**best.record(), "settings": asdict(settings)})
        bar.set_postfix(valid_loss=f"{valid_loss:.3f}", valid_acc=f"{valid_accuracy:.3f}")
    model.load_state_dict(best_state)
    return best


def train_first_classifier(out: str | os.PathLike, settings: TrainSettings = TrainSettings(),
                           config: ClassifierConfig = ClassifierConfig(), zip_path=None,
                           device="auto", progress: bool = True
                           ) -> tuple[TrainResult, Classification]:
    """Train on the FIRST train split, select on its valid split, test on its test split.

    The test accuracy and confusion matrix are written into the checkpoint's record, where
    ``radiogen evaluate`` reads them as the real-data reference (81.5% in the paper).
    """
    from radiogen.data.first import load_first

    train, valid, test = (load_first(s, zip_path) for s in ("train", "valid", "test"))
    result = train_classifier(train.images, train.labels, valid.images, valid.labels, settings,
                              config, out, device, progress)
    tested = classify(result.model, test.images, test.labels, device=device)
    record = {**result.record(), "settings": asdict(settings), "test": tested.to_dict(),
              "data": "FIRST (Griese et al. 2023): train / valid / test splits"}
    save_classifier(result.model, out, record)
    return result, tested

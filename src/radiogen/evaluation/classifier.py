"""The morphology classifier of Section 5.3: ResNet-18 encoder and a two-layer head.

The encoder maps an image to an 8·width-d vector (512 for ResNet-18, 256 for the bundled
half-width classifier); batch norm follows it; the head is two linear layers (256 hidden units,
4 logits for FRI, FRII, Compact, Bent) with dropout 0.5 after the encoder and after the hidden
layer, and no non-linearity, as the paper describes. Images enter in [−1, 1]
(the range in which the paper's rotations fill gaps with −1).

Weights are stored only as safetensors, with the configuration and training record as JSON
metadata; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from radiogen.atomic import atomic_path
from radiogen.data.first import CLASSES
from radiogen.evaluation.resnet import ResNet18

__all__ = [
    "ClassifierConfig",
    "RadioClassifier",
    "Classification",
    "to_network_range",
    "predict",
    "encode",
    "classify",
    "confusion_matrix",
    "save_classifier",
    "load_classifier",
    "resolve_device",
    "bundled_classifier",
    "classifier_path",
    "BUNDLED_CLASSIFIERS",
]

#: The classifiers shipped with the package (weights/classifiers/NAME.safetensors, each with a
#: card): the default, and a second one of another width and seed, trained the same way, to score
#: results whose settings were chosen with the first (scripts/train_classifier.sh).
BUNDLED_CLASSIFIERS = ("first-morphology", "first-morphology-2")


@dataclass(frozen=True)
class ClassifierConfig:
    """Shape of the classifier (Section 5.3, Table 6).

    Attributes
    ----------
    width : int
        ResNet-18 first-stage channels (64; features are 8·width = 512-d).
    hidden : int
        Hidden units of the head.
    n_classes : int
        Outputs (the four classes of :data:`~radiogen.data.first.CLASSES`).
    dropout : float
        Dropout rate after the encoder and after the hidden layer.
    """

    width: int = 64
    hidden: int = 256
    n_classes: int = len(CLASSES)
    dropout: float = 0.5


class RadioClassifier(nn.Module):
    """ResNet-18 encoder, batch norm, and the two-layer linear head."""

    def __init__(self, config: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.config = config
        self.encoder = ResNet18(in_channels=1, width=config.width)
        features = self.encoder.out_features
        self.head = nn.Sequential(nn.BatchNorm1d(features), nn.Dropout(config.dropout),
                                  nn.Linear(features, config.hidden), nn.Dropout(config.dropout),
                                  nn.Linear(config.hidden, config.n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output (B, 8·width): the space of the radio Fréchet distance."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


@dataclass
class Classification:
    """Accuracy and confusion matrix of a classifier on one labelled set.

    ``confusion[i, j]`` counts images of true class i predicted as class j; it sums to ``n``.
    """

    accuracy: float
    confusion: np.ndarray
    n: int

    def to_dict(self) -> dict:
        per_class = self.confusion.diagonal() / np.maximum(self.confusion.sum(axis=1), 1)
        return {"accuracy": self.accuracy, "n": self.n, "classes": list(CLASSES),
                "confusion": self.confusion.tolist(), "recall_per_class": per_class.tolist()}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) → CUDA where available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def to_network_range(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images (N, H, W) in [0, 1] → tensor (N, 1, H, W) in [−1, 1]."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    return (x * 2 - 1).unsqueeze(1)


@torch.no_grad()
def _batched(model: RadioClassifier, images: np.ndarray, fn, batch_size: int, device) -> np.ndarray:
    device = resolve_device(device)
    model.eval().to(device)
    out = [fn(to_network_range(images[i:i + batch_size]).to(device)).float().cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def predict(model: RadioClassifier, images: np.ndarray, batch_size: int = 256,
            device="auto") -> np.ndarray:
    """Predicted class index of every image."""
    return _batched(model, images, model, batch_size, device).argmax(axis=1)


def encode(model: RadioClassifier, images: np.ndarray, batch_size: int = 256,
           device="auto") -> np.ndarray:
    """Encoder features (N, 8·width) of every image, float64."""
    return _batched(model, images, model.features, batch_size, device).astype(np.float64)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray,
                     n_classes: int = len(CLASSES)) -> np.ndarray:
    """Counts of (true class, predicted class) pairs, shape (n_classes, n_classes)."""
    true, predicted = np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    return np.bincount(true * n_classes + predicted,
                       minlength=n_classes ** 2).reshape(n_classes, n_classes)


def classify(model: RadioClassifier, images: np.ndarray, labels: np.ndarray,
             batch_size: int = 256, device="auto") -> Classification:
    """Accuracy and confusion matrix on labelled images."""
    if len(images) == 0:
        raise ValueError("no images to classify")
    predicted = predict(model, images, batch_size, device)
    confusion = confusion_matrix(labels, predicted, model.config.n_classes)
    return Classification(float((predicted == labels).mean()), confusion, int(len(labels)))


def save_classifier(model: RadioClassifier, path: str | os.PathLike,
                    record: dict | None = None, dtype: torch.dtype | None = None) -> Path:
    """Write the weights as safetensors (atomically), with config and ``record`` as metadata.

    ``dtype`` (e.g. ``torch.float16``) stores floating-point tensors at that precision, to ship
    small files; :func:`load_classifier` reads them back into a float32 network.
    """
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    metadata = {"format": "radiogen-classifier", "config": json.dumps(asdict(model.config)),
                "classes": json.dumps(list(CLASSES)), "record": json.dumps(record or {}),
                "stored_dtype": str(dtype or torch.float32).replace("torch.", "")}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return Path(path)


def bundled_classifier(name: str = BUNDLED_CLASSIFIERS[0]) -> Path:
    """Path of a bundled classifier's weights; FileNotFoundError where they are not installed."""
    from importlib import resources

    if name not in BUNDLED_CLASSIFIERS:
        raise ValueError(f"{name!r}: no such bundled classifier (bundled: "
                         f"{', '.join(BUNDLED_CLASSIFIERS)})")
    folder = resources.files("radiogen") / "weights" / "classifiers"
    path = Path(str(folder / f"{name}.safetensors"))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the bundled classifier is not installed; train one with "
                                "`radiogen classifier train --out WEIGHTS` and pass --classifier")
    return path


def classifier_path(name_or_path: str | os.PathLike) -> Path:
    """The weights of a bundled classifier named ``name_or_path``, else that file."""
    if str(name_or_path) in BUNDLED_CLASSIFIERS:
        return bundled_classifier(str(name_or_path))
    return Path(name_or_path)


def load_classifier(path: str | os.PathLike, device="cpu") -> tuple[RadioClassifier, dict]:
    """Read a classifier written by :func:`save_classifier`: (model in eval mode, record)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such classifier weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error type for a bad header
        raise ValueError(f"{path}: not a safetensors file ({err})") from None
    if metadata.get("format") != "radiogen-classifier":
        raise ValueError(f"{path}: not a radiogen classifier (metadata format "
                         f"{metadata.get('format')!r})")
    if json.loads(metadata["classes"]) != list(CLASSES):
        raise ValueError(f"{path}: trained for classes {metadata['classes']}, not {CLASSES}")
    model = RadioClassifier(ClassifierConfig(**json.loads(metadata["config"])))
    try:
        model.load_state_dict(load_file(str(path)))
    except RuntimeError as err:
        raise ValueError(f"{path}: weights that do not fit the classifier its metadata "
                         f"describes ({' '.join(str(err).split())[:200]})") from None
    return model.eval().to(resolve_device(device)), json.loads(metadata.get("record", "{}"))

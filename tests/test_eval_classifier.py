"""The ResNet-18 classifier of Section 5.3 (resnet, classifier, augment, training)."""

import numpy as np
import pytest
import torch

from radiogen.data.first import CLASSES, load_first
from radiogen.evaluation.augment import affine_warp, augment, gaussian_blur
from radiogen.evaluation.classifier import (ClassifierConfig, RadioClassifier, classify,
                                            confusion_matrix, encode, load_classifier,
                                            save_classifier)
from radiogen.evaluation.resnet import ResNet18
from radiogen.evaluation.training import TrainSettings, train_classifier


def test_resnet18_shape_and_size():
    net = ResNet18()
    assert net(torch.zeros(2, 1, 80, 80)).shape == (2, 512)
    # torchvision's resnet18 has 11.69 M parameters with 3 input channels and a 1000-class fc;
    # without the fc (513 000) and with one input channel (2 × 64·49 fewer) it has 11.17 M
    assert sum(p.numel() for p in net.parameters()) == 11_170_240


def test_head_is_the_papers():
    model = RadioClassifier()
    layers = [type(m).__name__ for m in model.head]
    assert layers == ["BatchNorm1d", "Dropout", "Linear", "Dropout", "Linear"]
    assert model.head[2].out_features == 256 and model.head[4].out_features == 4
    assert model.head[1].p == 0.5


def test_augmentations_keep_shape_and_fill_gaps_with_minus_one():
    g = torch.Generator().manual_seed(0)
    x = torch.ones(4, 1, 40, 40)
    out = augment(x, g)
    assert out.shape == x.shape
    # a 45° turn leaves the corners empty: they take the fill value −1
    turned = affine_warp(x[:1], torch.ones(1), torch.zeros(1, 2), torch.tensor([np.pi / 4]),
                         torch.tensor([False]), fill=-1.0)
    assert turned[0, 0, 0, 0].item() == pytest.approx(-1.0)
    assert turned[0, 0, 20, 20].item() == pytest.approx(1.0)
    # blurring keeps a constant image constant and spreads a point
    assert gaussian_blur(x, torch.full((4,), 0.8)) == pytest.approx(x)
    point = torch.zeros(1, 1, 5, 5)
    point[0, 0, 2, 2] = 1
    blurred = gaussian_blur(point, torch.tensor([1.0]))
    assert blurred.sum().item() == pytest.approx(1.0) and 0 < blurred[0, 0, 1, 2] < 1


def test_confusion_matrix_counts_pairs():
    confusion = confusion_matrix(np.array([0, 0, 1, 3, 3]), np.array([0, 1, 1, 3, 2]))
    assert confusion.sum() == 5
    assert confusion[0, 1] == 1 and confusion[3, 2] == 1 and np.trace(confusion) == 3


def test_classifier_learns_compact_against_frii(tmp_path):
    rng = np.random.default_rng(0)

    def pick(split, n):
        data = load_first(split)
        index = np.concatenate([rng.choice(np.flatnonzero(data.labels == CLASSES.index(c)),
                                           n, replace=False) for c in ("FRII", "Compact")])
        return data.images[index], data.labels[index]

    x, y = pick("train", 64)
    xv, yv = pick("valid", 20)
    xt, yt = pick("test", 40)
    out = tmp_path / "classifier.safetensors"
    result = train_classifier(x, y, xv, yv, TrainSettings(epochs=10, batch_size=16),
                              ClassifierConfig(width=16), out=out, device="cpu", progress=False)
    tested = classify(result.model, xt, yt, device="cpu")
    assert tested.accuracy > 0.75                      # chance is 0.5
    assert tested.confusion.sum() == len(yt) == tested.n
    assert len(result.history) == 10 and 0 <= result.best_epoch < 10
    # the file holds the best-validation weights and its record; it loads without pickle
    loaded, record = load_classifier(out)
    assert record["best_epoch"] == result.best_epoch
    np.testing.assert_allclose(encode(loaded, xt[:4], device="cpu"),
                               encode(result.model, xt[:4], device="cpu"), rtol=1e-5, atol=1e-5)


def test_load_classifier_rejects_other_files(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(ValueError, match="not a radiogen classifier"):
        load_classifier(other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a safetensors file"):
        load_classifier(junk)
    with pytest.raises(FileNotFoundError):
        load_classifier(tmp_path / "missing.safetensors")


def test_save_and_load_round_trip(tmp_path):
    model = RadioClassifier(ClassifierConfig(width=4)).eval()
    save_classifier(model, tmp_path / "c.safetensors", {"note": "x"})
    loaded, record = load_classifier(tmp_path / "c.safetensors")
    assert record == {"note": "x"} and loaded.config.width == 4
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))

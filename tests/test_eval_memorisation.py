"""PCA alignment (Eq. A.1) and SSIM nearest neighbours (Eq. A.2)."""

import numpy as np
import pytest

from radiogen.evaluation.memorisation import (C1, C2, align_images, clipped_sigma,
                                              memorisation_check, nearest_neighbours,
                                              pca_threshold, principal_angles, ssim_matrix)

N = 64
ROWS, COLS = np.mgrid[:N, :N].astype(np.float64) - (N - 1) / 2


def elongated(angle_deg, long=10.0, short=2.5, noise=0.0, seed=0):
    """A Gaussian source whose long axis points at ``angle_deg`` (columns towards rows)."""
    t = np.deg2rad(angle_deg)
    u = COLS * np.cos(t) + ROWS * np.sin(t)
    v = -COLS * np.sin(t) + ROWS * np.cos(t)
    image = np.exp(-u ** 2 / (2 * long ** 2) - v ** 2 / (2 * short ** 2))
    image += np.random.default_rng(seed).normal(0, noise, image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def ssim_by_hand(x, y):
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cxy = ((x - mx) * (y - my)).mean()
    return ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx ** 2 + my ** 2 + C1) * (vx + vy + C2))


def test_threshold_follows_eq_a1():
    rng = np.random.default_rng(0)
    images = rng.normal(0.2, 0.05, (3, N, N))
    assert clipped_sigma(images) == pytest.approx([0.05] * 3, rel=0.05)
    assert pca_threshold(images) == pytest.approx(0.1 + 0.5 * clipped_sigma(images))


@pytest.mark.parametrize("angle", [30.0, -55.0, 90.0, 120.0])
def test_alignment_turns_an_elongated_source_horizontal(angle):
    image = elongated(angle, noise=0.01)
    assert np.rad2deg(principal_angles(image[None]))[0] % 180 == pytest.approx(angle % 180, abs=2)
    aligned = align_images(image[None])[0]
    assert np.rad2deg(principal_angles(aligned[None]))[0] == pytest.approx(0.0, abs=2)
    # pixel by pixel the same as the source drawn horizontal (up to noise and interpolation)
    assert np.abs(aligned - elongated(0.0)).max() < 0.06


def test_ssim_matrix_is_eq_a2():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(size=(3, 16, 16)), rng.uniform(size=(4, 16, 16)) ** 2
    expected = [[ssim_by_hand(a, b) for b in y] for a in x]
    assert ssim_matrix(x, y).numpy() == pytest.approx(np.array(expected), rel=1e-4)


def test_ssim_with_itself_and_with_its_rotated_copy_after_alignment():
    image = elongated(20.0)
    assert ssim_matrix(image[None], image[None]).item() == pytest.approx(1.0, abs=1e-6)
    turned = elongated(20.0 + 73.0)
    assert ssim_matrix(image[None], turned[None]).item() < 0.7   # unaligned: different
    a, b = align_images(np.stack([image, turned]))
    assert ssim_matrix(a[None], b[None]).item() == pytest.approx(1.0, abs=2e-3)
    flipped = elongated(20.0 + 180.0 + 1.0)                    # the axis has no direction
    nn = nearest_neighbours(align_images(image[None]), align_images(flipped[None]), k=1,
                            progress=False)
    assert nn.best[0] == pytest.approx(1.0, abs=2e-3)


def test_nearest_neighbours_find_the_copies_across_batches():
    rng = np.random.default_rng(4)
    references = rng.uniform(size=(50, 16, 16)).astype(np.float32)
    queries = references[[7, 31, 44]] + rng.normal(0, 0.01, (3, 16, 16)).astype(np.float32)
    nn = nearest_neighbours(queries, references, k=3, query_batch=2, reference_batch=8,
                            progress=False)
    assert nn.index[:, 0].tolist() == [7, 31, 44]
    assert np.all(nn.best > 0.99) and np.all(np.diff(nn.ssim, axis=1) <= 0)
    full = ssim_matrix(queries, references).numpy()
    assert nn.ssim[:, 1] == pytest.approx(np.sort(full, axis=1)[:, -2], rel=1e-5)


def test_memorisation_check_flags_copies():
    training = np.stack([elongated(a, long=4 + a % 7, noise=0.02, seed=i)
                         for i, a in enumerate(range(0, 180, 9))])
    held_out = np.stack([elongated(a + 4, long=5 + a % 5, noise=0.02, seed=100 + i)
                         for i, a in enumerate(range(0, 180, 30))])
    copies = training[:5] + 0.001
    result = memorisation_check(copies, training, held_out, k=2, progress=False)
    summary = result["summary"]
    assert summary["n_generated"] == 5 and summary["n_training"] == 20
    assert result["generated"].best.min() > result["held_out"].best.max()
    assert summary["fraction_generated_above_held_out_max"] == 1.0

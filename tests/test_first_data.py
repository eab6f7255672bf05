import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest
import torch

from radiogen.data.datasets import augment_dihedral
from radiogen.data.first import (CLASSES, FIRST_SHA256, bundled_first_zip, download_first, load_first,
                                 undersample_indices)


@pytest.fixture(scope="module")
def first_all():
    return load_first("all")


def test_published_split_sizes():
    # Griese et al. (2023): train 1758 (395/824/291/248), valid 200 and test 200 (50 per class);
    # three crops are blank (one FRII and one Bent in train, one Bent in valid) and dropped.
    sizes = {s: np.bincount(load_first(s).labels, minlength=4).tolist() for s in ("train", "valid", "test")}
    assert sizes == {"train": [395, 823, 291, 247], "valid": [50, 50, 50, 49], "test": [50, 50, 50, 50]}
    kept = load_first("train", drop_empty=False)
    assert len(kept) == 1758 and kept.n_empty == 0


def test_crop_and_value_range(first_all):
    assert first_all.images.shape[1:] == (80, 80)
    assert first_all.images.dtype == np.float32
    assert np.allclose(first_all.images.min(axis=(1, 2)), 0) and np.allclose(first_all.images.max(axis=(1, 2)), 1)
    assert set(first_all.labels.tolist()) == set(range(len(CLASSES)))


def test_background_clip_zeroes_the_haze_and_keeps_the_source(first_all):
    from radiogen.data.transforms import clip_background
    real = first_all.images[:50]
    assert (real == 0).mean() > 0.9          # the authors' 3σ clip: exactly-zero backgrounds
    rng = np.random.default_rng(0)
    hazy = np.clip(real + rng.uniform(0, 0.01, real.shape).astype(np.float32), 0, 1)
    assert (hazy == 0).mean() < 0.01
    clipped = clip_background(hazy, 0.01)
    assert clipped.dtype == np.float32 and clipped.min() == 0 and clipped.max() == 1
    assert np.array_equal(clipped == 0, hazy <= 0.01)
    assert (clipped == 0).mean() >= (real == 0).mean()
    bright = hazy > 0.5                       # the source is kept, stretched by 1/(1 − t)
    assert np.allclose(clipped[bright], (hazy[bright] - 0.01) / 0.99, atol=1e-6)
    order = np.argsort(hazy[0].ravel(), kind="stable")
    assert np.all(np.diff(clipped[0].ravel()[order]) >= 0)   # monotonic
    assert clip_background(hazy, 0.0) is hazy
    assert torch.allclose(clip_background(torch.from_numpy(hazy), 0.01), torch.from_numpy(clipped))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="background clip threshold"):
            clip_background(hazy, bad)


def test_undersampling_balances_classes(first_all):
    keep = undersample_indices(first_all.labels, np.random.default_rng(0))
    counts = np.bincount(first_all.labels[keep])
    assert counts.tolist() == [346] * 4
    # With the blank crops kept, undersampling gives the paper's 1392 images (4 × 348).
    full = load_first("all", drop_empty=False)
    assert len(undersample_indices(full.labels, np.random.default_rng(0))) == 1392


def test_dihedral_augmentation_keeps_pixels():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    g = torch.Generator().manual_seed(3)
    seen = set()
    for _ in range(40):
        y = augment_dihedral(x, g)
        for k in range(2):
            assert torch.equal(y[k].flatten().sort().values, x[k].flatten().sort().values)
            variants = [torch.rot90(v, r, dims=(-2, -1)) for v in (x[k], x[k].flip(-1)) for r in range(4)]
            assert any(torch.equal(y[k], v) for v in variants)
            seen.add(y[k].flatten()[:3].tolist().__str__())
    assert len(seen) > 8   # different transforms were drawn


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def loopback_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "galaxy_data.zip").write_bytes(bundled_first_zip().read_bytes())
    (served / "corrupt.zip").write_bytes(b"not the archive")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_from_loopback_server(loopback_server, tmp_path):
    dest = tmp_path / "dl" / "galaxy_data.zip"
    # the first address fails (404), the second is the archive
    path = download_first(dest, urls=(f"{loopback_server}/missing.zip", f"{loopback_server}/galaxy_data.zip"))
    assert path == dest
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == FIRST_SHA256
    assert len(load_first("test", zip_path=dest)) == 200
    assert list(dest.parent.iterdir()) == [dest]          # no temporary files left


def test_download_rejects_a_corrupt_file(loopback_server, tmp_path):
    dest = tmp_path / "dl" / "galaxy_data.zip"
    with pytest.raises(OSError, match="checksum mismatch"):
        download_first(dest, urls=(f"{loopback_server}/corrupt.zip",))
    assert list(dest.parent.iterdir()) == []   # nothing half-written left behind


def test_bad_archive_is_named(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"junk")
    with pytest.raises(ValueError, match="bad.zip: not a readable zip"):
        load_first("train", zip_path=bad)
    with pytest.raises(ValueError, match="unknown FIRST split"):
        load_first("training")

"""The quick-look PNG grid of `radiogen sample`."""

import numpy as np
from PIL import Image

from radiogen.outputs import write_png_grid


def test_png_grid_layout_orientation_and_scaling(tmp_path):
    images = np.zeros((3, 10, 12), dtype=np.float32)
    images[0, 0, 0] = 5.0           # row 0 (FITS bottom), column 0 of the first image
    images[1] = 0.25                # a flat image is drawn at its own maximum: full colour
    path = write_png_grid(tmp_path / "grid.png", images, ncols=2, zoom=3)
    grid = np.asarray(Image.open(path).convert("RGB"))
    gap, cell_h, cell_w = 4, 3 * 10 + 4, 3 * 12 + 4
    assert grid.shape == (2 * cell_h + gap, 2 * cell_w + gap, 3)
    first, flat, blank = (grid[gap + (k // 2) * cell_h:][:30, gap + (k % 2) * cell_w:][:, :36]
                          for k in range(3))
    bright = np.argwhere(first.sum(axis=2) > first.sum(axis=2).min())
    # the bright pixel fills a 3×3 block at the bottom-left corner of its tile
    assert {tuple(p) for p in bright} == {(r, c) for r in range(27, 30) for c in range(3)}
    assert np.all(flat == first[29, 0]) and np.all(blank == first[0, 0])
    assert not np.array_equal(first[29, 0], first[0, 0])
    # the fourth cell is empty (background), and titles make the cells taller
    assert np.all(grid[gap + cell_h:, gap + cell_w:] == 255)
    titled = np.asarray(Image.open(write_png_grid(tmp_path / "t.png", images, ncols=2, zoom=3,
                                                  titles=["FRI", "FRII", "Bent"])))
    assert titled.shape[0] == grid.shape[0] + 2 * 14

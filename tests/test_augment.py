"""Test-time augmentation over the symmetries of the square."""

import numpy as np
import pytest

from radioseg_utils.data.augment import N_SYMMETRIES, dihedral, undo_dihedral, with_tta


def test_the_eight_symmetries_are_distinct_and_invertible():
    a = np.arange(16.0).reshape(1, 4, 4, 1)
    copies = {dihedral(a, k).tobytes() for k in range(N_SYMMETRIES)}
    assert len(copies) == N_SYMMETRIES
    for k in range(N_SYMMETRIES):
        np.testing.assert_array_equal(undo_dihedral(dihedral(a, k), k), a)


def test_tta_of_an_equivariant_model_is_the_model():
    def blur(batch):  # a symmetric 3x3 box filter: commutes with every symmetry
        padded = np.pad(batch, ((0, 0), (1, 1), (1, 1), (0, 0)))
        return sum(padded[:, i:i + batch.shape[1], j:j + batch.shape[2]]
                   for i in range(3) for j in range(3)) / 9.0

    rng = np.random.default_rng(3)
    batch = rng.normal(size=(2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(with_tta(blur)(batch), blur(batch), atol=1e-6)


def test_tta_averages_an_orientation_dependent_model():
    def left_edge(batch):  # marks the first column only: not symmetric
        out = np.zeros_like(batch)
        out[:, :, 0] = 1.0
        return out

    out = with_tta(left_edge)(np.zeros((1, 6, 6, 1), np.float32))
    # every border pixel is a first column in two of the eight frames (corners in four)
    assert out[0, 0, 3, 0] == pytest.approx(2 / 8) and out[0, 0, 0, 0] == pytest.approx(4 / 8)
    assert out[0, 3, 3, 0] == 0.0
    # non-square tiles use the four shape-preserving symmetries
    rect = with_tta(left_edge)(np.zeros((1, 4, 6, 1), np.float32))
    assert rect.shape == (1, 4, 6, 1) and rect[0, 2, 0, 0] == pytest.approx(0.5)

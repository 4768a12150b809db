"""Dice and the normalised surface Dice on constructed masks whose values are known."""
import numpy as np
import pytest

from napari_sam_mis.evaluation.metrics import surface_dice


def _cube(shape=(20, 40, 40), lo=(5, 10, 10), hi=(15, 30, 30)):
    m = np.zeros(shape, bool)
    m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return m


def test_identical_masks_and_empty_cases():
    a = _cube()
    assert surface_dice(a, a, (1, 1, 1)) == 1.0
    assert surface_dice(np.zeros_like(a), np.zeros_like(a), (1, 1, 1)) == 1.0
    assert surface_dice(a, np.zeros_like(a), (1, 1, 1)) == 0.0


def test_tolerance_is_in_millimetres():
    a = _cube()
    shifted = np.roll(a, 2, axis=2)  # 2 voxels along x
    assert surface_dice(a, shifted, (1.0, 1.0, 1.0), 2.0) == 1.0  # 2 mm apart: within 2 mm
    assert surface_dice(a, shifted, (1.0, 1.0, 0.5), 1.0) == 1.0  # 2 voxels of 0.5 mm = 1 mm
    far = surface_dice(a, shifted, (1.0, 1.0, 2.0), 2.0)  # 4 mm apart: the x faces are out of tolerance
    assert 0.5 < far < 1.0


def test_value_of_a_one_sided_shift():
    """A cube moved by 4 voxels along x with a tolerance of 2: exactly the boundary voxels of
    both cubes lying farther than 2 from the other boundary are lost."""
    a = _cube()
    b = np.roll(a, 4, axis=2)
    value = surface_dice(a, b, (1, 1, 1), 2.0)
    from scipy import ndimage

    def boundary(m):
        return m & ~ndimage.binary_erosion(m)

    ba, bb = boundary(a), boundary(b)
    da, db = ndimage.distance_transform_edt(~bb), ndimage.distance_transform_edt(~ba)
    expected = ((da[ba] <= 2).sum() + (db[bb] <= 2).sum()) / (ba.sum() + bb.sum())
    assert value == pytest.approx(expected) and value < 0.9

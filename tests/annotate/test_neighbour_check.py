"""A first click next to a slice that holds the object: the neighbour's mask bounds the fresh one."""
from types import SimpleNamespace

import numpy as np

from napari_sam_mis.annotate.masks import MaskResult
from napari_sam_mis.annotate.neighbour_check import MAX_GROWTH, checked_by_neighbour, neighbour_mask
from napari_sam_mis.annotate.prompts import POSITIVE, Prompt


class _BoxSession:
    """Decodes a box as its interior; records the prompts it was given."""

    def __init__(self, box_trained=True):
        self.prompts = []
        self.engine = SimpleNamespace(spec=SimpleNamespace(box_trained=box_trained))

    def embedding(self, z):
        return SimpleNamespace(geometry=SimpleNamespace(scale=(1.0, 1.0)))

    def predict(self, z, prompt):
        self.prompts.append(prompt)
        r0, c0, r1, c1 = (int(round(v)) for v in prompt.box)
        mask = np.zeros((40, 40), bool)
        mask[r0 : r1 + 1, c0 : c1 + 1] = True
        return MaskResult(mask, 0.9, np.zeros((1, 256, 256), np.float32))


def _square(r0, r1):
    mask = np.zeros((40, 40), bool)
    mask[r0:r1, r0:r1] = True
    return mask


def test_a_fresh_mask_that_outgrows_its_neighbour_is_decoded_from_the_neighbours_box():
    session, neighbour = _BoxSession(), _square(10, 16)  # 36 px
    click = Prompt(points=[(12, 12)], labels=[POSITIVE])
    leak = MaskResult(_square(0, 30), 0.8, np.zeros((1, 256, 256), np.float32))
    checked = checked_by_neighbour(session, 3, click, leak, neighbour)
    (asked,) = session.prompts
    assert asked.points == click.points and asked.box == (7.0, 7.0, 18.0, 18.0)  # widened by 3 model pixels
    assert checked.mask.sum() == 12 * 12 and checked.mask[12, 12]


def test_a_plausible_mask_a_box_or_a_correction_is_left_as_it_is():
    session, neighbour = _BoxSession(), _square(10, 16)
    click = Prompt(points=[(12, 12)], labels=[POSITIVE])
    fine = MaskResult(_square(10, 18), 0.9, np.zeros((1, 256, 256), np.float32))  # 64 px < 2 x 36
    assert 64 <= MAX_GROWTH * 36
    assert checked_by_neighbour(session, 3, click, fine, neighbour) is fine
    leak = MaskResult(_square(0, 30), 0.8, np.zeros((1, 256, 256), np.float32))
    assert checked_by_neighbour(session, 3, click, leak, None) is leak
    boxed = Prompt(points=[(12, 12)], labels=[POSITIVE], box=(0, 0, 30, 30))
    assert checked_by_neighbour(session, 3, boxed, leak, neighbour) is leak
    again = Prompt(points=[(12, 12)], labels=[POSITIVE], mask_logits=np.zeros((1, 256, 256), np.float32))
    assert checked_by_neighbour(session, 3, again, leak, neighbour) is leak
    assert session.prompts == []
    click_trained = _BoxSession(box_trained=False)  # its own click path is not bounded
    assert checked_by_neighbour(click_trained, 3, click, leak, neighbour) is leak


def test_the_larger_neighbour_bounds_the_slice():
    small, large = _square(10, 12), _square(10, 20)
    assert neighbour_mask({2: small, 4: large}, 3) is large
    assert neighbour_mask({2: small, 4: np.zeros((40, 40), bool)}, 3) is small
    assert neighbour_mask({1: large}, 3) is None

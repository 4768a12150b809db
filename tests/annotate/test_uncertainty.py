"""The box ensemble's uncertainty: jittered boxes stay on the slice and repeat with the seed, the
map is where the ensemble splits, the next click goes into the most unsure region with the
majority's sign; on the real spleen slice the map marks the mask's errors."""
import numpy as np

from napari_sam_mis.annotate.uncertainty import Uncertainty, ensemble_boxes
from napari_sam_mis.evaluation.metrics import auroc


def test_ensemble_boxes_are_reproducible_and_inside_the_slice():
    boxes = ensemble_boxes((2, 3, 40, 60), (50, 64), n=8)
    assert len(boxes) == 8 and boxes[0] == (2.0, 3.0, 40.0, 60.0)
    assert boxes == ensemble_boxes((2, 3, 40, 60), (50, 64), n=8)
    for r0, c0, r1, c1 in boxes:
        assert 0 <= r0 <= r1 <= 49 and 0 <= c0 <= c1 <= 63


def test_next_click_goes_to_the_middle_of_the_most_unsure_region():
    p = np.zeros((40, 40))
    p[5:15, 5:25] = 0.5  # a large split region: held by half of the ensemble
    p[30:32, 30:32] = 0.625  # a small one
    unc = Uncertainty(p, 1 - np.abs(2 * p - 1))
    (r, c), sign = unc.next_click()
    assert 5 <= r < 15 and 5 <= c < 25 and abs(r - 9.5) <= 1 and sign == 1
    p[5:15, 5:25] = 0.375
    assert unc.__class__(p, 1 - np.abs(2 * p - 1)).next_click()[1] == 0, "negative where most members leave it out"
    assert Uncertainty(np.ones((8, 8)), np.zeros((8, 8))).next_click() is None


def test_auroc():
    assert auroc([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1]) == 1.0
    assert auroc([0.5, 0.5], [0, 1]) == 0.5
    assert np.isnan(auroc([0.1, 0.2], [0, 0]))


def test_the_map_marks_the_box_masks_errors_on_the_spleen(spleen, lite_engine):
    from napari_sam_mis.annotate.prompts import Prompt
    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.evaluation.simulate import simulate_prompt

    ct, gt = spleen
    session = AnnotationSession(ct, lite_engine)
    z = 15
    box = simulate_prompt(gt[z], "box").box
    mask = session.segment(z, Prompt(box=box)).mask
    unc = session.uncertainty(z, box)
    assert unc.map.shape == gt[z].shape and 0 <= unc.map.min() and unc.map.max() <= 1
    r0, c0, r1, c1 = (int(v) for v in box)
    window = (slice(r0, r1 + 1), slice(c0, c1 + 1))
    assert auroc(unc.map[window], (mask != gt[z])[window]) > 0.7

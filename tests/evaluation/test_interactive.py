"""The interactive protocol (CVPR 2025 challenge): click placement on constructed cases, and a
real run through the CLI on DeepLesion 000009 with the bundled LiteMedSAM."""
import json

import numpy as np
import pytest

from napari_sam_mis.annotate.prompts import NEGATIVE, POSITIVE
from napari_sam_mis.evaluation.interactive import error_click

from ..helpers import LESION_9, need


def test_click_goes_to_the_centre_of_the_largest_missed_component():
    gt = np.zeros((12, 30, 30), bool)
    gt[2:10, 5:25, 5:25] = True
    pred = gt.copy()
    pred[3:8, 8:14, 8:14] = False  # a missed block of 5 x 6 x 6 voxels ...
    pred[9, 20:22, 20:22] = False  # ... and a smaller one
    z, (r, c), label = error_click(pred, gt, (1.0, 1.0, 1.0))
    assert label == POSITIVE and z == 5 and (r, c) in {(10, 10), (10, 11), (11, 10), (11, 11)}


def test_extra_region_larger_than_missed_gets_a_negative_click_on_its_slice():
    gt = np.zeros((12, 30, 30), bool)
    gt[2:10, 5:15, 5:15] = True
    pred = gt.copy()
    pred[4, 5, 5] = False  # one missed voxel
    pred[6:9, 20:28, 20:28] = True  # an extra 3 x 8 x 8 block
    z, (r, c), label = error_click(pred, gt, (1.0, 1.0, 1.0))
    assert label == NEGATIVE and z == 7 and 21 <= r <= 26 and 21 <= c <= 26  # as deep as the block allows


def test_depth_is_measured_in_millimetres():
    """A block thin in voxels along z but 5 mm slices: its centre is found along z too."""
    gt = np.zeros((9, 40, 40), bool)
    pred = np.zeros_like(gt)
    gt[2:7, 5:35, 5:35] = True
    z, _, label = error_click(pred, gt, (5.0, 1.0, 1.0))
    assert label == POSITIVE and z == 4


def test_no_error_no_click():
    gt = np.zeros((3, 8, 8), bool)
    gt[1, 2:5, 2:5] = True
    assert error_click(gt.copy(), gt, (1, 1, 1)) is None


@pytest.mark.parametrize("first", ["box", "click"])
def test_protocol_on_a_real_lesion_through_the_cli(first, tmp_path, capsys):
    from napari_sam_mis.cli import main

    out = tmp_path / "result.json"
    code = main(["eval", str(need(LESION_9)), "--protocol", "interactive", "--first", first, "--clicks", "2",
                 "--device", "cpu", "--json", str(out)])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.loads(out.read_text()) == result
    for key in ("protocol", "dice_per_step", "nsd_per_step", "final_dice", "final_nsd", "dice_auc", "nsd_auc",
                "per_label", "seconds"):
        assert key in result
    assert result["protocol"] == "interactive" and len(result["dice_per_step"]) == 3
    assert result["final_dice"] == result["dice_per_step"][-1]
    assert result["dice_auc"] == pytest.approx(np.trapezoid(result["dice_per_step"]))
    assert all(0.0 <= v <= 1.0 for v in result["dice_per_step"] + result["nsd_per_step"])
    label = result["per_label"]["1"]
    assert len(label["clicks"]) <= 2 and all(len(c) == 4 for c in label["clicks"])
    assert result["final_dice"] >= 0.85  # 0.94 measured (box first)
    assert result["final_dice"] >= result["dice_per_step"][0] - 0.02

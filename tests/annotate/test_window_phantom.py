"""Intensity windows, the sample phantom and the plugin manifest."""
import numpy as np
import pytest

from napari_sam_mis.annotate.window import CT_PRESETS, Window, apply_window
from napari_sam_mis.embeddings.compute import center_out_order
from napari_sam_mis.io.phantom import ORGANS, abdomen_phantom
from napari_sam_mis.volume import Volume


def test_ct_presets_and_level_width():
    assert CT_PRESETS["soft tissue"] == (40, 400) and CT_PRESETS["lung"] == (-600, 1500)
    w = Window.preset("liver")
    lo, hi = w.bounds(np.zeros(3))
    assert (lo, hi) == (-20, 140)
    out = apply_window(np.array([-1000, -20, 60, 140, 3000]), (lo, hi))
    np.testing.assert_allclose(out, [0, 0, 127.5, 255, 255])
    with pytest.raises(ValueError, match="unknown CT window preset 'kidney'"):
        Window.preset("kidney")


def test_mr_percentile_window_keeps_background():
    rng = np.random.default_rng(0)
    mr = np.zeros((4, 32, 32), np.float32)
    mr[:, 8:24, 8:24] = rng.uniform(100, 1000, (4, 16, 16))
    w = Window.for_volume(Volume(mr, modality="MR"))
    assert w.kind == "percentile"
    lo, hi = w.bounds(mr)
    assert 100 <= lo < 110 and 990 < hi <= 1000
    out = apply_window(mr, (lo, hi), keep_zero=True)
    assert out[0, 0, 0] == 0 and out.max() == 255


def test_center_out_order():
    assert center_out_order(2, 5) == [2, 3, 1, 4, 0]
    assert center_out_order(0, 3) == [0, 1, 2]
    assert sorted(center_out_order(7, 10)) == list(range(10))


def test_phantom_is_ct_in_hu_with_organs():
    vol, labels = abdomen_phantom()
    assert vol.array.dtype == np.int16 and vol.modality == "CT"
    assert vol.array.min() == -1000 and vol.array.max() > 500
    assert set(np.unique(labels)) == {0, *ORGANS}
    liver = vol.array[labels == 1]
    assert abs(float(np.median(liver)) - 60) < 10


def test_manifest_is_valid_and_sample_loads():
    from npe2 import PluginManifest

    from napari_sam_mis._napari.sample_data import abdomen_phantom_layers

    mf = PluginManifest.from_distribution("napari-sam-mis")
    assert mf.name == "napari-sam-mis"
    assert mf.contributions.widgets and mf.contributions.sample_data and mf.contributions.readers
    (data, kwargs, kind), = abdomen_phantom_layers()
    assert kind == "image" and data.ndim == 3 and kwargs["scale"] == (2.5, 0.8, 0.8)
    assert isinstance(kwargs["metadata"]["volume"], Volume)

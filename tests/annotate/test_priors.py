"""SAMAug prior maps with the real LiteMedSAM on the MSD spleen crop: high inside the spleen, the
boundary prior on its edge; cached beside the embeddings, a damaged cache entry recomputed."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from napari_sam_mis.annotate.priors import PriorRecipe, box_groups, slice_priors, volume_priors
from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.embeddings.priors_store import PRIORS_FOLDER, PriorCacheWarning

CHEAP = PriorRecipe(box_sizes=(1 / 2, 3 / 4))  # 13 boxes a slice: for the cache, not the maps' quality


def _counting(monkeypatch, engine, name="decode_candidates") -> list:
    calls = []
    real = getattr(engine, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, name, counted)
    return calls


def _two_slices(spleen):
    ct, gt = spleen
    return replace(ct, array=ct.array[14:16].copy()), gt[14:16]


def test_priors_are_high_inside_the_spleen_and_peak_on_its_edge(lite_engine, spleen):
    ct, gt = spleen
    z = int(np.argmax(gt.sum(axis=(1, 2))))
    seg, boundary = slice_priors(AnnotationSession(ct, lite_engine), z)
    for prior in (seg, boundary):
        assert prior.dtype == np.float32 and prior.shape == gt[z].shape
        assert prior.min() >= 0.0 and prior.max() <= 1.0
    inside = ndimage.binary_erosion(gt[z], iterations=3)
    edge = ndimage.morphological_gradient(gt[z].astype(np.uint8), size=3) > 0
    far = ~ndimage.binary_dilation(gt[z], iterations=5)
    assert seg[inside].mean() > 0.95
    assert boundary[edge].mean() > 0.5
    assert boundary[edge].mean() > 3 * boundary[inside].mean() and boundary[edge].mean() > 3 * boundary[far].mean()


def test_the_box_grid_covers_the_slice_in_groups_of_one_size():
    groups = box_groups((166, 164), PriorRecipe())
    boxes = [b for g in groups for b in g]
    assert len(boxes) == 15 * 15 + 7 * 7 + 3 * 3 + 2 * 2
    assert all(len(g) <= 9 for g in groups)
    assert all(len({round(b[2] - b[0]) for b in g}) == 1 for g in groups)
    assert min(b[0] for b in boxes) == 0 and max(b[3] for b in boxes) == pytest.approx(163)


def test_volume_priors_are_cached_and_a_damaged_entry_is_recomputed(lite_engine, spleen, tmp_path, monkeypatch):
    volume, _ = _two_slices(spleen)
    calls = _counting(monkeypatch, lite_engine)
    seen = []
    first = volume_priors(AnnotationSession(volume, lite_engine, cache_dir=tmp_path), lambda d, t: seen.append((d, t)),
                          recipe=CHEAP)
    assert seen == [(1, 2), (2, 2)] and calls
    assert first[0].shape == volume.shape and first[0].dtype == np.float32

    session = AnnotationSession(volume, lite_engine, cache_dir=tmp_path)
    calls.clear()
    again = volume_priors(session, recipe=CHEAP)
    assert not calls  # read back, nothing decoded
    assert all(np.array_equal(a, b) for a, b in zip(first, again))

    folders = list((session.cache_path / PRIORS_FOLDER).iterdir())
    assert len(folders) == 1
    chunk = sorted(folders[0].glob("00001.*.npy"))[0]
    data = bytearray(chunk.read_bytes())
    data[-10] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.warns(PriorCacheWarning, match="damaged"):
        repaired = volume_priors(AnnotationSession(volume, lite_engine, cache_dir=tmp_path), recipe=CHEAP)
    assert len(calls) == len(box_groups(volume.shape[1:], CHEAP))  # slice 1 only
    assert all(np.array_equal(a, b) for a, b in zip(first, repaired))

    (folders[0] / "meta.json").write_text("{not json")
    calls.clear()
    with pytest.warns(PriorCacheWarning, match="unreadable"):
        volume_priors(AnnotationSession(volume, lite_engine, cache_dir=tmp_path), recipe=CHEAP)
    assert len(calls) == 2 * len(box_groups(volume.shape[1:], CHEAP))
    assert json.loads((folders[0] / "meta.json").read_text())["recipe"] == CHEAP.key()

    calls.clear()
    volume_priors(AnnotationSession(volume, lite_engine, cache_dir=tmp_path), recipe=replace(CHEAP, iou_min=0.8))
    assert calls and len(list((session.cache_path / PRIORS_FOLDER).iterdir())) == 2  # another recipe, another entry


def test_a_model_that_is_not_box_trained_gets_a_grid_of_points(spleen, monkeypatch):
    import torch

    from napari_sam_mis.model.engine import SamEngine
    from napari_sam_mis.model.registry import get_spec

    from ..helpers import tiny_sam

    engine = SamEngine(tiny_sam(), get_spec("sam_vit_b"), torch.device("cpu"), weights_path=None)
    volume = replace(spleen[0], array=spleen[0].array[15:16, 40:120, 30:110].copy())
    monkeypatch.setattr(engine, "decode_candidates", lambda *a, **k: pytest.fail("boxes for a point model"))
    points = _counting(monkeypatch, engine, "decode")
    keep_all = PriorRecipe(points_per_side=4, iou_min=-1e9, stability_min=0.0, contrast_min=0.0, min_pixels=1)
    seg, boundary = slice_priors(AnnotationSession(volume, engine), 0, keep_all)
    assert len(points) == 2  # 16 points, 8 a call
    assert seg.shape == boundary.shape == (80, 80)
    assert 0.0 <= seg.min() and seg.max() <= 1.0 and set(np.unique(boundary)) <= {0.0, 1.0}

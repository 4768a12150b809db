"""Disk cache of slice embeddings and sessions along any axis, with the real LiteMedSAM.

Encoding is the slow part (about 1 s per slice on a free CPU), so each test counts and keeps
its encoder calls few: a 3-slice crop of the MSD spleen CT for the cache, one slice per plane
for the coronal/sagittal checks.
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

from napari_sam_mis.annotate.geometry import dice, mask_box
from napari_sam_mis.annotate.planes import SlicePlane, isotropic_shape
from napari_sam_mis.annotate.prompts import Prompt, to_model_frame
from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.annotate.window import Window
from napari_sam_mis.embeddings.store import (
    DEFAULT_MEMORY_SLICES,
    EmbeddingCacheWarning,
    SliceLRU,
    default_cache_dir,
    geometry_from_dict,
    volume_hash,
)
from napari_sam_mis.volume import Volume

from ..helpers import LESION_9, need


@pytest.fixture(scope="module")
def small(spleen):
    """Three axial slices through the spleen (slices 13..15 of the crop)."""
    vol, gt = spleen
    return Volume(np.ascontiguousarray(vol.array[13:16]), spacing=vol.spacing, modality="CT"), gt[13:16]


@pytest.fixture
def encoder_calls(lite_engine, monkeypatch):
    """Slices passed to the image encoder during the test."""
    calls: list[int] = []
    real = lite_engine.embed_slices

    def counting(slices):
        slices = list(slices)
        calls.append(len(slices))
        return real(slices)

    monkeypatch.setattr(lite_engine, "embed_slices", counting)
    return calls


def session(vol, engine, cache, **kw):
    return AnnotationSession(vol, engine, Window.preset("soft tissue"), batch_size=3, cache_dir=cache, **kw)


def chunk_files(sess):
    return sorted(p for p in sess.cache_path.glob("*.npy"))


def test_second_session_loads_from_disk_without_encoding(small, lite_engine, encoder_calls, tmp_path):
    vol, gt = small
    first = session(vol, lite_engine, tmp_path)
    assert first.embed([0, 1]) == [0, 1]
    assert sum(encoder_calls) == 2
    box = Prompt(box=mask_box(gt[1]))
    mask = first.predict(1, box).mask

    second = session(vol, lite_engine, tmp_path)
    assert second.n_embedded == 2 and second.has_embedding(1) and not second.has_embedding(2)
    assert second.missing(center=0) == [2]
    again = second.predict(1, box).mask
    assert sum(encoder_calls) == 2, "a cache hit must not call the encoder"
    np.testing.assert_array_equal(again, mask)  # the first session decodes the same float16 values
    assert dice(again, gt[1]) > 0.9

    # float16 on disk: 256 x 64 x 64 x 2 bytes = 2 MiB per slice (+ the 128-byte .npy header)
    sizes = [p.stat().st_size for p in chunk_files(second)]
    assert len(sizes) == 2 and all(s <= 2 * 2**20 + 128 for s in sizes)
    meta = json.loads((second.cache_path / "meta.json").read_text())
    assert meta["dtype"] == "float16" and meta["shape"] == [256, 64, 64]
    assert geometry_from_dict(meta["geometry"]) == second.geometry == second.embedding(1).geometry
    assert meta["signature"]["weights_sha256"] == lite_engine.weights_sha256


def test_window_change_is_a_miss_and_switching_back_a_hit(small, lite_engine, encoder_calls, tmp_path):
    vol, _ = small
    sess = session(vol, lite_engine, tmp_path)
    sess.embed([0])
    soft_dir = sess.cache_path
    sess.set_window(Window.preset("liver"))
    assert sess.cache_path != soft_dir and not sess.has_embedding(0) and sess.n_embedded == 0
    sess.embed([0])
    assert sum(encoder_calls) == 2
    sess.set_window(Window.preset("soft tissue"))
    assert sess.has_embedding(0)
    sess.embedding(0)
    assert sum(encoder_calls) == 2
    # other voxels (same shape) -> another signature
    other = Volume(vol.array + 1.0, spacing=vol.spacing)
    assert not session(other, lite_engine, tmp_path).has_embedding(0)


def test_corrupted_chunk_is_detected_and_recomputed(small, lite_engine, encoder_calls, tmp_path):
    vol, _ = small
    sess = session(vol, lite_engine, tmp_path)
    sess.embed([0, 1])
    good = sess.embedding(0).features.clone()
    path = chunk_files(sess)[0]
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF  # one flipped byte in the features
    path.write_bytes(bytes(data))

    fresh = session(vol, lite_engine, tmp_path)
    assert fresh.has_embedding(0)  # not yet read
    with pytest.warns(EmbeddingCacheWarning, match="damaged"):
        emb = fresh.embedding(0)
    assert sum(encoder_calls) == 3, "the damaged slice is encoded again (only it)"
    assert np.allclose(emb.features.numpy(), good.numpy(), atol=2e-2)
    assert len(chunk_files(fresh)) == 2  # rewritten (same bytes: the encoder is deterministic)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmbeddingCacheWarning)
        session(vol, lite_engine, tmp_path).embedding(0)  # the rewritten chunk is good

    # truncated chunk (e.g. a full disk): same
    path = chunk_files(fresh)[1]
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.warns(EmbeddingCacheWarning):
        session(vol, lite_engine, tmp_path).embedding(1)
    assert sum(encoder_calls) == 4


def test_stale_or_unreadable_metadata_is_recomputed(small, lite_engine, encoder_calls, tmp_path):
    vol, _ = small
    sess = session(vol, lite_engine, tmp_path)
    sess.embed([0])
    meta_path = sess.cache_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["signature"]["weights_sha256"] = "0" * 64  # written by other weights
    meta_path.write_text(json.dumps(meta))
    with pytest.warns(EmbeddingCacheWarning, match="signature does not match"):
        stale = session(vol, lite_engine, tmp_path)
    assert stale.n_embedded == 0 and chunk_files(stale) == []
    stale.embed([0])
    assert sum(encoder_calls) == 2

    meta_path.write_text("{not json")
    with pytest.warns(EmbeddingCacheWarning, match="unreadable"):
        broken = session(vol, lite_engine, tmp_path)
    assert broken.n_embedded == 0
    assert json.loads(meta_path.read_text())["signature"] == broken.signature()


def test_interrupted_precompute_resumes_with_the_rest(small, lite_engine, encoder_calls, tmp_path):
    vol, _ = small
    sess = AnnotationSession(vol, lite_engine, batch_size=1, cache_dir=tmp_path)
    for k, _ in enumerate(sess.iter_embed(range(vol.n_slices)), start=1):
        if k == 1:
            break  # interrupted after the first slice
    from napari_sam_mis.io.atomic import _HOST

    killed = sess.cache_path / f".00002.x.npy.{_HOST}-{2**22 + 1}.abc12345.tmp.npy"  # its writer is gone
    running = sess.cache_path / f".00001.x.npy.{_HOST}-{os.getpid()}.abc12345.tmp.npy"  # a write in progress
    for p in (killed, running):
        p.write_bytes(b"half-written")
    assert sum(encoder_calls) == 1

    resumed = AnnotationSession(vol, lite_engine, batch_size=1, cache_dir=tmp_path)
    assert resumed.n_embedded == 1 and not killed.exists() and running.exists()
    running.unlink()
    assert resumed.embed(resumed.missing()) == [1, 2]
    assert sum(encoder_calls) == 3, "only the missing slices are computed"
    assert AnnotationSession(vol, lite_engine, cache_dir=tmp_path).n_embedded == vol.n_slices


def test_memory_is_bounded_by_the_lru(small, lite_engine, encoder_calls, tmp_path):
    vol, _ = small
    sess = session(vol, lite_engine, tmp_path, memory_slices=2)
    sess.embed([0, 1, 2])
    assert len(sess._memory) == 2 and sess.n_embedded == 3
    assert 0 not in sess._memory  # the least recently used went to disk only
    sess.embedding(0)
    assert sum(encoder_calls) == 3 and len(sess._memory) == 2 and 0 in sess._memory
    # without a disk cache an evicted slice is simply missing again
    ram = session(vol, lite_engine, None, memory_slices=1)
    ram.embed([0, 1])
    assert ram.n_embedded == 1 and ram.missing() == [0, 2] and ram.cache_path is None
    # defaults: bounded with a disk behind, unbounded without (nothing would be lost for good)
    assert session(vol, lite_engine, tmp_path)._memory.capacity == DEFAULT_MEMORY_SLICES
    assert session(vol, lite_engine, None)._memory.capacity is None


def test_lru_and_cache_dir_units(tmp_path, monkeypatch):
    lru = SliceLRU(2)
    for k in "abc":
        lru.put(k, k)
    assert lru.keys() == {"b", "c"}
    lru.get("b")
    lru.put("d", "d")
    assert lru.keys() == {"b", "d"}
    with pytest.raises(ValueError, match="memory_slices"):
        SliceLRU(0)
    monkeypatch.setenv("NAPARI_SAM_MIS_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("NAPARI_SAM_MIS_CACHE")
    assert "napari-sam-mis" in str(default_cache_dir())
    a = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    assert volume_hash(a) == volume_hash(a.copy()) != volume_hash(a.astype(np.float32))
    assert volume_hash(a) != volume_hash(a[:, :, ::-1])


def test_embed_cli_end_to_end_and_resume(lite_engine, tmp_path, capsys):
    from napari_sam_mis.cli import main

    with np.load(need(LESION_9)) as data:  # 3 windowed 512 x 512 slices of a real lesion CT
        np.savez(tmp_path / "lesion3.npz", imgs=data["imgs"][5:8], gts=data["gts"][5:8], spacing=data["spacing"])
    args = ["embed", str(tmp_path / "lesion3.npz"), "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--batch", "2"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["slices"] == 3 and summary["computed"] == 3 and summary["complete"] and not summary["interrupted"]
    assert "3/3" in err
    chunks = sorted((tmp_path / "cache").glob("*/*.npy"))
    assert len(chunks) == 3

    chunks[1].unlink()  # as if the run had stopped before that slice
    assert main(args) == 0
    summary = json.loads(capsys.readouterr()[0].strip().splitlines()[-1])
    assert (summary["cached_before"], summary["computed"]) == (2, 1)

    assert main([*args[:2], "--batch", "0"]) == 2
    assert "--batch" in capsys.readouterr()[1]


def test_isotropic_resampling_geometry(spleen, lite_engine):
    vol, _ = spleen
    axial, coronal, sagittal = (SlicePlane.of(vol, a) for a in range(3))
    assert not axial.resampled and axial.shape == (166, 164)
    assert coronal.shape == (26, 164) and coronal.model_shape == (164, 164)  # 26 x 5 mm -> 164 x 0.795 mm rows
    assert sagittal.shape == (26, 166) and sagittal.resampled
    assert isotropic_shape((10, 10), (1.4, 1.0)) == (10, 10)  # ratio <= 1.5: left as is
    geom = coronal.geometry(lite_engine)
    assert geom.original == (26, 164) and geom.resized == (256, 256)
    # a box on slice rows 2..5 reaches from grid row 2*f to the last grid row of row 5
    f = coronal.factors[0]
    _, _, box = to_model_frame(coronal.resampled_prompt(Prompt(box=(2, 10, 5, 20))), geom.scale)
    s = 256 / 164
    assert box[1] == pytest.approx(2 * f * s) and box[3] == pytest.approx((6 * f - 1) * s)
    with pytest.raises(ValueError, match="axis"):
        SlicePlane.of(vol, 3)


@pytest.mark.parametrize("axis", [1, 2])
def test_coronal_and_sagittal_box_gives_the_organ(spleen, lite_engine, encoder_calls, axis):
    vol, gt = spleen
    sess = AnnotationSession(vol, lite_engine, axis=axis)
    plane_gt = np.moveaxis(gt, axis, 0)
    i = int(plane_gt.reshape(plane_gt.shape[0], -1).sum(1).argmax())  # the largest cross-section
    result = sess.predict(i, Prompt(box=mask_box(plane_gt[i])))
    assert sess.n_slices == vol.shape[axis] and result.mask.shape == plane_gt[i].shape
    assert encoder_calls == [1]
    np.testing.assert_array_equal(sess.display_slice(i).shape, plane_gt[i].shape)
    d = dice(result.mask, plane_gt[i])
    print(f"axis {axis} slice {i}: Dice {d:.4f}")
    assert d >= 0.88


def test_a_chunk_renamed_to_another_slice_and_a_stray_chunk_are_not_taken(small, lite_engine, encoder_calls, tmp_path):
    vol, _ = small
    sess = session(vol, lite_engine, tmp_path)
    sess.embed([0, 1, 2])
    a, b = chunk_files(sess)[:2]  # slices 0 and 1, their names (with valid CRCs) swapped
    tmp = a.with_name("swap")
    a.rename(tmp)
    b.rename(b.with_name(a.name.replace("00000", "00001", 1)))
    tmp.rename(a.with_name(b.name.replace("00001", "00000", 1)))
    (sess.cache_path / f"00099.{'0' * 8}.npy").write_bytes(b"not a slice of this image")

    fresh = session(vol, lite_engine, tmp_path)
    assert fresh.n_embedded == 3, "a chunk beyond the image's slices is not counted"
    with pytest.warns(EmbeddingCacheWarning, match="damaged"):
        assert sorted(fresh.verify_cache()) == [0, 1, 99]  # each chunk is bound to its slice index
    assert fresh.missing() == [0, 1]


def test_embed_recomputes_damaged_chunks_instead_of_reporting_complete(small, lite_engine, tmp_path, capsys):
    from napari_sam_mis.cli import main
    from napari_sam_mis.io.nifti import write_nifti

    vol, _ = small
    path = write_nifti(vol.array, vol, tmp_path / "small.nii.gz", is_labels=False)
    cache = tmp_path / "cache"
    assert main(["embed", str(path), "--cache-dir", str(cache), "--device", "cpu"]) == 0
    chunk = sorted(cache.rglob("00001.*.npy"))[0]
    chunk.write_bytes(chunk.read_bytes()[:1000])
    capsys.readouterr()
    with pytest.warns(EmbeddingCacheWarning):
        assert main(["embed", str(path), "--cache-dir", str(cache), "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["damaged_before"] == 1 and summary["computed"] == 1 and summary["complete"]

"""NIfTI images and labels: exact geometry, sidecar names, reorientation and bad inputs."""
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_sam_mis.errors import InputError
from napari_sam_mis.io import read_labels, read_volume, write_labels

from ..helpers import DATA

SPLEEN = DATA / "msd_spleen_crop"
TOTALSEG = DATA / "totalseg_example"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared test data not found")


def test_spleen_labels_round_trip_keeps_affine_bit_exact(tmp_path):
    vol = read_volume(SPLEEN / "spleen2_ct.nii.gz")
    labels = read_labels(SPLEEN / "spleen2_label.nii.gz", vol)
    assert labels.array.shape == vol.shape == (26, 166, 164) and int(labels.array.sum()) == 96672

    written = write_labels(labels.array, vol, tmp_path / "spleen.nii.gz", segments={1: "spleen"})
    assert [p.name for p in written] == ["spleen.nii.gz", "spleen.json"]
    src, out = nib.load(SPLEEN / "spleen2_ct.nii.gz"), nib.load(written[0])
    assert np.array_equal(out.affine, src.affine)
    for key in ("qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y",
                "qoffset_z", "srow_x", "srow_y", "srow_z", "pixdim"):
        assert np.array_equal(out.header[key], src.header[key]), key
    assert out.get_data_dtype() == np.uint8
    back = read_labels(written[0], vol)
    assert np.array_equal(back.array, labels.array) and back.segments[1].name == "spleen"
    assert json.loads(written[1].read_text())["labels"]["1"]["name"] == "spleen"


def test_labels_align_with_image_in_simpleitk(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    vol = read_volume(SPLEEN / "spleen2_ct.nii.gz")
    labels = read_labels(SPLEEN / "spleen2_label.nii.gz", vol)
    out = write_labels(labels.array, vol, tmp_path / "l.nii.gz")[0]
    img, lab = sitk.ReadImage(str(SPLEEN / "spleen2_ct.nii.gz")), sitk.ReadImage(str(out))
    assert img.GetSize() == lab.GetSize()
    assert np.allclose(img.GetOrigin(), lab.GetOrigin()) and np.allclose(img.GetDirection(), lab.GetDirection())
    assert np.allclose(img.GetSpacing(), lab.GetSpacing())
    assert np.array_equal(sitk.GetArrayFromImage(lab), labels.array)  # SimpleITK arrays are (z, y, x) too


def test_labels_in_other_orientation_are_reoriented_onto_dicom_volume():
    vol = read_volume(TOTALSEG / "example_ct_dicom")
    labels = read_labels(TOTALSEG / "example_seg_dicom.nii.gz", vol)
    raw = np.asanyarray(nib.load(TOTALSEG / "example_seg_dicom.nii.gz").dataobj)
    assert labels.array.shape == vol.shape
    assert np.array_equal(np.bincount(labels.array.ravel()), np.bincount(raw.ravel()))
    liver, spleen = labels.array == 5, labels.array == 1
    assert np.nonzero(liver)[2].mean() < np.nonzero(spleen)[2].mean()  # x index runs right -> left (LPS)
    assert 0 < vol.array[liver].mean() < 200  # liver in HU


def test_labels_on_another_grid_are_refused():
    vol = read_volume(SPLEEN / "spleen2_ct.nii.gz")
    with pytest.raises(InputError, match="does not match the image grid"):
        read_labels(TOTALSEG / "example_seg.nii.gz", vol)


def _save(tmp_path, name, data, affine=None):
    path = tmp_path / name
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path


def test_4d_nifti_is_refused(tmp_path):
    path = _save(tmp_path, "4d.nii.gz", np.zeros((4, 4, 4, 3), np.int16))
    with pytest.raises(InputError, match=r"4d.nii.gz: expected a 3D image, got 4D"):
        read_volume(path)


def test_rgb_nifti_is_refused(tmp_path):
    rgb = np.zeros((4, 4, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    path = _save(tmp_path, "rgb.nii.gz", rgb)
    with pytest.raises(InputError, match="RGB NIfTI"):
        read_volume(path)


def test_truncated_nifti_is_refused(tmp_path):
    path = tmp_path / "cut.nii"
    path.write_bytes((SPLEEN / "spleen2_label.nii.gz").read_bytes()[:200])
    with pytest.raises(InputError, match="not a readable NIfTI"):
        read_volume(path)


def test_bad_labels_are_refused(tmp_path):
    vol = read_volume(SPLEEN / "spleen2_ct.nii.gz")
    with pytest.raises(InputError, match=r"labels have shape \(2, 3, 4\)"):
        write_labels(np.zeros((2, 3, 4), np.uint8), vol, tmp_path / "x.nii.gz")
    big = np.zeros(vol.shape, np.int32)
    big[0, 0, 0] = 300
    with pytest.raises(InputError, match=r"0\.\.255"):
        write_labels(big, vol, tmp_path / "x.nii.gz")
    with pytest.raises(InputError, match="unknown labels format"):
        write_labels(np.zeros(vol.shape, np.uint8), vol, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_writer_never_overwrites_the_source_and_leaves_no_temp_files(tmp_path):
    src = tmp_path / "ct.nii.gz"
    src.write_bytes((SPLEEN / "spleen2_ct.nii.gz").read_bytes())
    vol = read_volume(src)
    with pytest.raises(InputError, match="refusing to write over"):
        write_labels(np.zeros(vol.shape, np.uint8), vol, src)
    assert src.read_bytes() == (SPLEEN / "spleen2_ct.nii.gz").read_bytes()
    write_labels(np.ones(vol.shape, np.uint8), vol, tmp_path / "l.nii.gz")
    write_labels(np.ones(vol.shape, np.uint8), vol, tmp_path / "l.nii.gz")  # saving again replaces it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz", "l.json", "l.nii.gz"]


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    vol = read_volume(SPLEEN / "spleen2_ct.nii.gz")
    out = write_labels(np.ones(vol.shape, np.uint8), vol, tmp_path / "l.nii.gz")[0]
    before = out.read_bytes()

    def broken_save(img, filename):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_labels(np.zeros(vol.shape, np.uint8), vol, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.json", "l.nii.gz"]


def test_label_maps_are_told_from_images(tmp_path):
    from napari_sam_mis.io.nifti import is_label_map, read_nifti

    ct = read_nifti(DATA / "msd_spleen_crop" / "spleen2_ct.nii.gz")
    written = write_labels(np.zeros(ct.shape, np.uint8), ct, tmp_path / "work.nii.gz")[0]
    assert is_label_map(written)  # the plugin's own output: intent "label" and a sidecar
    assert is_label_map(DATA / "totalseg_example" / "example_seg.nii.gz")  # a model's map, named like labels
    assert not is_label_map(DATA / "totalseg_example" / "example_ct_sm.nii.gz")
    ct_named_like_labels = tmp_path / "ct_seg_input.nii.gz"
    nib.save(nib.Nifti1Image(np.full((4, 4, 2), -1000, np.int16), np.eye(4)), str(ct_named_like_labels))
    assert not is_label_map(ct_named_like_labels), "Hounsfield units are negative: an image, whatever its name"

"""NRRD images and label maps (SimpleITK) on real data, and broken NRRD files."""
from __future__ import annotations

import numpy as np
import pytest

from napari_sam_mis.errors import InputError
from napari_sam_mis.io import read_labels, read_volume

from ..helpers import DATA, need

LUNG = DATA / "pyradiomics_tumours" / "lung1_image.nrrd"
LUNG_LABEL = DATA / "pyradiomics_tumours" / "lung1_label.nrrd"
LIVER_CT = DATA / "dcmqi_ct3slice_liver_seg" / "ct"
LIVER_SPINE = DATA / "dcmqi_ct3slice_liver_seg" / "liver_spine_seg.nrrd"


def test_lung_ct_reads_with_its_geometry():
    vol = read_volume(need(LUNG))
    assert vol.shape == (48, 512, 512) and vol.modality == "CT"
    assert vol.spacing == pytest.approx((5.0, 0.5703125, 0.5703125))
    # the header's LPS origin (-146, -325, -777.5) is RAS (146, 325, -777.5); x and y steps point to R->L, A->P
    assert vol.affine[:3, 3] == pytest.approx([146.0, 325.0, -777.5])
    assert vol.affine[0, 2] == pytest.approx(-0.5703125) and vol.affine[2, 0] == pytest.approx(5.0)
    labels = read_labels(need(LUNG_LABEL), vol)
    assert labels.array.sum() == 837 and set(np.unique(labels.array)) == {0, 1}


def test_nrrd_label_map_lands_on_its_dicom_series():
    """Slicer's labelmap of the 3-slice CT: same world grid as the DICOM series read by pydicom."""
    vol = read_volume(need(LIVER_CT))
    labels = read_labels(need(LIVER_SPINE), vol).array
    assert np.bincount(labels.ravel()).tolist() == [666895, 107098, 12439]


def test_mr_nrrd_is_inferred_as_mr():
    vol = read_volume(need(DATA / "pyradiomics_tumours" / "brain2_image.nrrd"))
    assert vol.modality == "MR" and "inferred" in vol.meta["modality_source"]


@pytest.mark.parametrize("content", [b"", b"NRRD0004\n# truncated header", b"NRRD0004\ntype: short\ndimension: 3\n"
                                     b"sizes: 4 4 4\nencoding: raw\n\n\x00\x01"],
                         ids=["empty file", "truncated header", "data cut short"])
def test_broken_nrrd_names_the_file(tmp_path, content):
    bad = tmp_path / "broken.nrrd"
    bad.write_bytes(content)
    with pytest.raises(InputError, match="broken.nrrd"):
        read_volume(bad)


def test_label_map_on_another_grid_is_refused(tmp_path):
    import nrrd

    vol = read_volume(need(LUNG))
    path = tmp_path / "other_seg.nrrd"
    nrrd.write(str(path), np.zeros((10, 10, 10), np.uint8), {"space": "left-posterior-superior",
               "space directions": np.eye(3), "space origin": np.zeros(3)})
    with pytest.raises(InputError, match="does not match the image grid"):
        read_labels(path, vol)


def test_negative_or_fractional_labels_are_refused(tmp_path):
    import nrrd

    header = {"space": "left-posterior-superior", "space directions": np.eye(3), "space origin": np.zeros(3)}
    vol = read_volume(need(LUNG))
    for name, arr, words in (("neg_seg.nrrd", -np.ones((2, 2, 2), np.int16), "0..65535"),
                             ("frac_seg.nrrd", np.full((2, 2, 2), 0.5, np.float32), "whole numbers")):
        nrrd.write(str(tmp_path / name), arr, header)
        with pytest.raises(InputError, match=words):
            read_labels(tmp_path / name, vol)


def test_rgb_nrrd_is_refused(tmp_path):
    import nrrd

    path = tmp_path / "colour.nrrd"
    directions = np.vstack([np.full((1, 3), np.nan), np.eye(3)])  # NaN row: the colour axis has no direction
    nrrd.write(str(path), np.zeros((3, 8, 8, 2), np.uint8), {"kinds": ["RGB-color", "space", "space", "space"],
               "space": "left-posterior-superior", "space directions": directions, "space origin": np.zeros(3)})
    with pytest.raises(InputError, match="colour.nrrd"):
        read_volume(path)


def test_napari_reader_opens_a_nrrd_label_map_as_labels():
    from napari_sam_mis._napari.readers import napari_get_reader

    layers = napari_get_reader(str(need(LUNG_LABEL)))(str(LUNG_LABEL))
    assert [kind for _, _, kind in layers] == ["labels"]
    image = napari_get_reader(str(LUNG))(str(LUNG))
    assert [kind for _, _, kind in image] == ["image"]


def test_labels_written_as_nrrd_reopen_aligned_with_names(tmp_path):
    """Round trip: labels of the lung CT saved as NRRD open on the same grid, values and names
    kept; SimpleITK reads the same geometry as the image's header."""
    import SimpleITK

    from napari_sam_mis.io import write_labels

    vol = read_volume(need(LUNG))
    truth = read_labels(need(LUNG_LABEL), vol).array
    out = tmp_path / "tumour_seg.nrrd"
    written = write_labels(truth * 2, vol, out, segments={2: "tumour"})
    assert [p.name for p in written] == ["tumour_seg.nrrd", "tumour_seg.json"]
    back = read_labels(out, vol)
    assert np.array_equal(back.array, truth * 2) and back.segments[2].name == "tumour"
    mine, theirs = SimpleITK.ReadImage(str(out)), SimpleITK.ReadImage(str(LUNG))
    assert np.allclose(mine.GetOrigin(), theirs.GetOrigin()) and np.allclose(mine.GetSpacing(), theirs.GetSpacing())
    assert np.allclose(mine.GetDirection(), theirs.GetDirection())


def test_a_broken_nrrd_sidecar_names_the_sidecar(tmp_path):
    from napari_sam_mis.io import write_labels

    vol = read_volume(need(LUNG))
    out = tmp_path / "mask.nrrd"
    write_labels(read_labels(need(LUNG_LABEL), vol).array, vol, out)
    (tmp_path / "mask.json").write_text("{not json")
    with pytest.raises(InputError, match="mask.json"):
        read_labels(out, vol)


def _slicer_seg(tmp_path, fields: dict):
    """The liver/spine labelmap saved as a 3D Slicer .seg.nrrd with the given Segment header fields."""
    import SimpleITK

    img = SimpleITK.ReadImage(str(need(LIVER_SPINE)))
    for key, text in fields.items():
        img.SetMetaData(key, text)
    out = tmp_path / "liver_spine.seg.nrrd"
    SimpleITK.WriteImage(img, str(out), True)
    return out


def test_slicer_segment_names_are_read_from_a_seg_nrrd(tmp_path):
    path = _slicer_seg(tmp_path, {"Segment0_Name": "liver", "Segment0_LabelValue": "1", "Segment0_Color": "0.8 0.4 0.2",
                                  "Segment0_Layer": "0", "Segment1_Name": "spine", "Segment1_LabelValue": "2"})
    labels = read_labels(path, read_volume(need(LIVER_CT)))
    assert {v: s.name for v, s in labels.segments.items()} == {1: "liver", 2: "spine"}
    assert labels.segments[1].color == (204, 102, 51)


@pytest.mark.parametrize("fields", [{"Segment0_Name": "liver", "Segment0_LabelValue": "one"},
                                    {"Segment0_Name": "liver", "Segment0_Layer": "1"}])
def test_a_seg_nrrd_with_a_broken_segment_header_is_named(tmp_path, fields):
    path = _slicer_seg(tmp_path, fields)
    with pytest.raises(InputError, match="liver_spine.seg.nrrd.*segment 0"):
        read_labels(path, read_volume(need(LIVER_CT)))


def test_written_label_maps_carry_slicer_segment_fields(tmp_path):
    import SimpleITK

    from napari_sam_mis.io import write_labels

    vol = read_volume(need(LIVER_CT))
    labels = read_labels(need(LIVER_SPINE), vol).array
    out, sidecar = write_labels(labels, vol, tmp_path / "work.seg.nrrd", segments={1: "liver", 2: "spine"})
    img = SimpleITK.ReadImage(str(out))
    assert img.GetMetaData("Segment1_Name") == "spine" and img.GetMetaData("Segment1_LabelValue") == "2"
    assert img.GetMetaData("Segmentation_MasterRepresentation") == "Binary labelmap"
    sidecar.unlink()  # Slicer keeps only the .seg.nrrd: the names are still there
    back = read_labels(out, vol)
    assert {v: s.name for v, s in back.segments.items()} == {1: "liver", 2: "spine"}
    assert np.array_equal(back.array, labels)

"""DICOM-SEG: reading the dcmqi example, writing with highdicom, dciodvfy validation, anonymised sources."""
import shutil
import subprocess

import highdicom as hd
import numpy as np
import pytest

from napari_sam_mis.errors import InputError
from napari_sam_mis.io import read_labels, read_volume, write_labels

from ..helpers import DATA

DCMQI = DATA / "dcmqi_ct3slice_liver_seg"
TOTALSEG = DATA / "totalseg_example"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared test data not found")
needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")


def nrrd_labels(name):
    nrrd = pytest.importorskip("nrrd")
    return nrrd.read(str(DCMQI / name))[0].transpose(2, 1, 0).astype(np.uint8)  # (x, y, z) -> (z, y, x)


def dciodvfy_errors(path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def ct():
    return read_volume(DCMQI / "ct")


def test_dcmqi_seg_reads_onto_its_ct_like_the_nrrd(ct):
    labels = read_labels(DCMQI / "liver_seg.dcm", ct)
    assert np.array_equal(labels.array, nrrd_labels("liver_seg.nrrd"))
    assert labels.segments[1].name == "Liver" and labels.segments[1].color == (221, 130, 101)


@needs_dciodvfy
def test_two_segment_seg_is_valid_and_reads_back_identical(ct, tmp_path):
    labels = nrrd_labels("liver_spine_seg.nrrd")
    out = write_labels(labels, ct, tmp_path / "seg.dcm", segments={1: "liver", 2: {"name": "spine", "color": [0, 0, 255]}},
                       algorithm_name="LiteMedSAM")
    assert out == [tmp_path / "seg.dcm"]
    assert dciodvfy_errors(out[0]) == []

    seg = hd.seg.segread(str(out[0]))
    assert seg.SegmentationType == "BINARY" and seg.StudyInstanceUID == ct.meta["dicom"]["StudyInstanceUID"]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.meta["dicom"]["SeriesInstanceUID"]
    liver, spine = seg.SegmentSequence
    assert (liver.SegmentLabel, liver.SegmentedPropertyTypeCodeSequence[0].CodeValue) == ("liver", "10200004")
    assert liver.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert liver.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"  # anatomical structure
    assert spine.SegmentedPropertyTypeCodeSequence[0].CodeValue == "421060004"
    assert liver.SegmentAlgorithmType == "SEMIAUTOMATIC" and liver.SegmentAlgorithmName == "LiteMedSAM"
    present = sum(int(labels[z].__eq__(v).any()) for z in range(3) for v in (1, 2))
    assert seg.NumberOfFrames == present  # only frames that contain the segment

    back = read_labels(out[0], ct)
    assert np.array_equal(back.array, labels)
    assert back.segments[2].name == "spine" and back.segments[2].color == (0, 0, 255)


def test_free_text_names_fall_back_to_generic_codes(ct, tmp_path):
    labels = np.zeros(ct.shape, np.uint8)
    labels[1, 100:120, 100:120] = 3
    write_labels(labels, ct, tmp_path / "x.dcm", segments={3: "my odd structure"})
    (seg_item,) = hd.seg.segread(str(tmp_path / "x.dcm")).SegmentSequence
    assert seg_item.SegmentLabel == "my odd structure"
    assert seg_item.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"
    back = read_labels(tmp_path / "x.dcm", ct)  # values are renumbered 1..N in the SEG
    assert np.array_equal(back.array, (labels > 0).astype(np.uint8))


def test_overlapping_segments_read_as_separate_masks(ct, tmp_path):
    from pydicom.sr.codedict import codes

    masks = np.zeros((*ct.shape, 2), bool)
    masks[:, 100:200, 100:200, 0] = True
    masks[:, 150:250, 150:250, 1] = True
    algo = hd.AlgorithmIdentificationSequence(name="test", family=codes.DCM.ArtificialIntelligence, version="1")
    descs = [hd.seg.SegmentDescription(i + 1, name, codes.SCT.AnatomicalStructure, code, "SEMIAUTOMATIC", algo)
             for i, (name, code) in enumerate([("liver", codes.SCT.Liver), ("lesion", codes.SCT.Lesion)])]
    seg = hd.seg.Segmentation(ct.meta["dicom_datasets"], masks, "BINARY", descs, hd.UID(), 5, hd.UID(), 1,
                              "test", "test", "1", "1")
    seg.save_as(tmp_path / "overlap.dcm", enforce_file_format=True)
    labels = read_labels(tmp_path / "overlap.dcm", ct)
    assert labels.overlapping and labels.array.shape == (2, *ct.shape)
    assert np.array_equal(labels.array.astype(bool), np.moveaxis(masks, -1, 0))
    assert [s.name for s in labels.segments.values()] == ["liver", "lesion"]


def test_anonymised_series_is_refused_with_a_way_out(tmp_path):
    vol = read_volume(TOTALSEG / "example_ct_dicom")
    labels = read_labels(TOTALSEG / "example_seg_dicom.nii.gz", vol)
    with pytest.raises(InputError, match=r"blank SeriesInstanceUID, StudyInstanceUID .*\.nii\.gz.*new_uids=True"):
        write_labels(labels.array, vol, tmp_path / "seg.dcm")
    assert list(tmp_path.iterdir()) == []


@needs_dciodvfy
def test_anonymised_series_with_new_uids_gives_a_valid_seg(tmp_path):
    vol = read_volume(TOTALSEG / "example_ct_dicom")
    labels = read_labels(TOTALSEG / "example_seg_dicom.nii.gz", vol)
    (out,) = write_labels(labels.array, vol, tmp_path / "seg.dcm", segments={1: "spleen", 5: "liver"}, new_uids=True)
    assert dciodvfy_errors(out) == []
    back = read_labels(out, vol)
    values = np.unique(labels.array)[1:]
    lut = np.zeros(256, np.uint8)
    lut[values] = np.arange(1, len(values) + 1)
    assert np.array_equal(back.array, lut[labels.array])
    assert back.segments[1].name == "spleen" and back.segments[int(lut[5])].name == "liver"


def test_seg_needs_a_dicom_volume_and_labels(ct, tmp_path):
    nifti_vol = read_volume(DATA / "msd_spleen_crop" / "spleen2_ct.nii.gz")
    with pytest.raises(InputError, match="must reference DICOM images.*nii.gz"):
        write_labels(np.ones(nifti_vol.shape, np.uint8), nifti_vol, tmp_path / "s.dcm")
    with pytest.raises(InputError, match="labels are empty"):
        write_labels(np.zeros(ct.shape, np.uint8), ct, tmp_path / "s.dcm")
    with pytest.raises(InputError, match="refusing to write over or into the source"):
        write_labels(np.ones(ct.shape, np.uint8), ct, DCMQI / "ct" / "seg.dcm")


def test_damaged_seg_is_refused(ct, tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes((DCMQI / "liver_seg.dcm").read_bytes()[:3000])
    with pytest.raises(InputError, match="bad.dcm: not a readable DICOM-SEG"):
        read_labels(bad, ct)


@needs_dciodvfy
def test_255_segments_with_ascii_names_give_a_valid_seg(ct, tmp_path):
    import pydicom

    labels = np.zeros(ct.shape, np.uint8)
    for value in range(1, 256):  # a 4 x 10 patch per value, spread over the 3 slices
        labels[value % 3, (value // 3) * 5:(value // 3) * 5 + 4, 10:20] = value
    out = write_labels(labels, ct, tmp_path / "seg.dcm", segments={v: f"structure {v}" for v in range(1, 256)})[0]
    assert dciodvfy_errors(out) == []
    assert len(pydicom.dcmread(out).SegmentSequence) == 255


@needs_dciodvfy
def test_names_in_any_script_survive_in_a_valid_seg(ct, tmp_path):
    labels = nrrd_labels("liver_spine_seg.nrrd")
    names = {1: "肝臓 (liver)", 2: "Wirbelsäule"}
    out = write_labels(labels, ct, tmp_path / "seg.dcm", segments=names)[0]
    assert dciodvfy_errors(out) == []
    back = read_labels(out, ct)
    assert {v: s.name for v, s in back.segments.items()} == names


def test_a_seg_of_another_frame_of_reference_is_refused_unless_allowed(ct, tmp_path, capsys):
    import pydicom

    from napari_sam_mis.cli import main

    other = tmp_path / "other_patient_seg.dcm"
    ds = pydicom.dcmread(DCMQI / "liver_seg.dcm")
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.99"
    ds.save_as(other)
    with pytest.raises(InputError, match="other_patient_seg.dcm: belongs to frame of reference"):
        read_labels(other, ct)
    assert read_labels(other, ct, allow_other_frame=True).array.any()
    code = main(["export-dataset", "--case", str(DCMQI / "ct"), str(other), "--out", str(tmp_path / "raw"),
                 "--id", "3", "--name", "Liver"])
    assert code == 2 and "frame of reference" in capsys.readouterr().err and not (tmp_path / "raw").exists()

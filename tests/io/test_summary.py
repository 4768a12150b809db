"""The header lines the widget shows: a DICOM series by patient, study and series; a NIfTI by
its file; a bare array with a geometry warning."""
import numpy as np

from napari_sam_mis.io import read_volume
from napari_sam_mis.io.summary import NO_GEOMETRY, image_summary
from napari_sam_mis.volume import Volume

from ..helpers import DATA, SPLEEN_CT, need


def test_dicom_series_shows_patient_study_series():
    volume = read_volume(need(DATA / "dcmqi_ct3slice_liver_seg" / "ct"))
    rows = dict(image_summary(volume))
    d = volume.meta["dicom"]
    assert d["PatientID"] in rows["patient"] and rows["modality"].startswith("CT")
    if len(d["StudyDate"]) == 8:
        assert f"{d['StudyDate'][:4]}-{d['StudyDate'][4:6]}-{d['StudyDate'][6:]}" in rows["study"]
    assert rows["grid"].startswith("3 × 512 × 512 voxels")
    assert "geometry" not in rows


def test_nifti_names_its_file_and_a_bare_array_warns():
    rows = dict(image_summary(read_volume(need(SPLEEN_CT))))
    assert rows["file"] == SPLEEN_CT.name and "5.00" in rows["grid"] and "inferred" in rows["modality"]
    bare = Volume(np.zeros((4, 8, 8), np.int16), meta={NO_GEOMETRY: True})
    rows = dict(image_summary(bare))
    assert rows["file"] == "(not from a file)" and rows["geometry"].startswith("none")

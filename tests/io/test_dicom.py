"""DICOM series and multi-frame images: geometry, HU, sorting, JPEG 2000 and bad folders."""
import shutil

import numpy as np
import pydicom
import pytest

from napari_sam_mis.errors import InputError
from napari_sam_mis.io import read_volume

from ..helpers import DATA

TOTALSEG_CT = DATA / "totalseg_example" / "example_ct_dicom"
DCMQI_CT = DATA / "dcmqi_ct3slice_liver_seg" / "ct"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared test data not found")


def test_jpeg2000_ct_series_reads_in_hu_with_its_geometry():
    vol = read_volume(TOTALSEG_CT)
    assert vol.shape == (20, 512, 512) and vol.modality == "CT"
    assert vol.array.dtype == np.int16 and vol.array.min() == -1024 and 1000 < vol.array.max() < 3100
    assert np.allclose(vol.spacing, (2.0, 0.9765625, 0.9765625))
    # RAS affine: x index -> patient left (-R), y index -> posterior (-A), z index -> superior
    expected = np.array([[0, 0, -0.9765625, 249.51171875], [0, -0.9765625, 0, 437.51171875],
                         [2.0, 0, 0, -804.5], [0, 0, 0, 1]])
    assert np.allclose(vol.affine, expected)
    assert vol.meta["dicom"]["SeriesDescription"] == "CT Body 3.0"
    assert len(vol.meta["sop_instance_uids"]) == 20 and all(vol.meta["sop_instance_uids"])  # from the file meta


def test_slices_are_sorted_by_position_not_by_name(tmp_path):
    for src, new in zip(sorted(DCMQI_CT.iterdir()), ["b.dcm", "c.dcm", "a.dcm"]):
        shutil.copy(src, tmp_path / new)
    vol, ref = read_volume(tmp_path), read_volume(DCMQI_CT)
    assert np.array_equal(vol.array, ref.array)
    z = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in vol.meta["dicom_files"]]
    assert z == sorted(z)  # ascending along the slice normal
    assert vol.array.min() == -3024  # rescale intercept -1024 applied


def _copy(src_files, folder):
    folder.mkdir(exist_ok=True)
    for f in src_files:
        shutil.copy(f, folder / f.name)
    return folder


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no DICOM image files"):
        read_volume(tmp_path)


def test_non_dicom_files_are_skipped_with_a_warning(tmp_path):
    _copy(DCMQI_CT.iterdir(), tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "thumb.png").write_bytes(b"\x89PNG\r\n")
    with pytest.warns(UserWarning, match="skipped 2 file"):
        vol = read_volume(tmp_path)
    assert vol.shape == (3, 512, 512)


def test_only_non_dicom_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning), pytest.raises(InputError, match="no DICOM image files"):
        read_volume(tmp_path)


def test_two_series_in_one_folder_are_refused_and_can_be_picked(tmp_path):
    _copy(DCMQI_CT.iterdir(), tmp_path)
    _copy(sorted(TOTALSEG_CT.iterdir())[:4], tmp_path)
    with pytest.raises(InputError, match=r"2 series in one folder: .*'CT Body 3.0' \(4 files.*series="):
        read_volume(tmp_path)
    assert read_volume(tmp_path, series="CT Body 3.0").shape == (4, 512, 512)
    with pytest.raises(InputError, match="0 series match 'nope'"):
        read_volume(tmp_path, series="nope")


def test_missing_slice_is_reported(tmp_path):
    files = sorted(TOTALSEG_CT.iterdir())
    _copy(files[:9] + files[10:], tmp_path)
    with pytest.raises(InputError, match=r"missing slice\(s\): 1 between .* slice step is 2.000 mm"):
        read_volume(tmp_path)


def test_non_uniform_spacing_is_reported(tmp_path):
    _copy(DCMQI_CT.iterdir(), tmp_path)
    ds = pydicom.dcmread(tmp_path / "01.dcm")
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.5
    ds.save_as(tmp_path / "01.dcm")
    with pytest.raises(InputError, match="non-uniform slice spacing"):
        read_volume(tmp_path)


def test_truncated_file_is_reported(tmp_path):
    _copy(DCMQI_CT.iterdir(), tmp_path)
    data = (tmp_path / "02.dcm").read_bytes()
    (tmp_path / "02.dcm").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"02.dcm: (truncated|cannot decode)"):
        read_volume(tmp_path)


def test_single_slice_file_and_missing_path(tmp_path):
    vol = read_volume(DCMQI_CT / "02.dcm")
    assert vol.shape == (1, 512, 512) and np.isclose(vol.spacing[0], 1.25)  # slice thickness
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "nothing")


def test_multiframe_dicom_matches_the_series(tmp_path):
    hd = pytest.importorskip("highdicom")
    datasets = [pydicom.dcmread(f) for f in sorted(DCMQI_CT.iterdir())]
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        legacy_datasets=datasets, series_instance_uid=hd.UID(), series_number=2, sop_instance_uid=hd.UID(),
        instance_number=1)
    enhanced.save_as(tmp_path / "enhanced.dcm", enforce_file_format=True)
    vol, ref = read_volume(tmp_path / "enhanced.dcm"), read_volume(DCMQI_CT)
    assert vol.shape == ref.shape
    assert np.allclose(vol.affine, ref.affine, atol=1e-4)
    assert np.array_equal(vol.array, ref.array)

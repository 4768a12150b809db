"""DICOM series with faults in their geometry: each is refused, naming the file and the problem."""
import shutil

import pydicom
import pytest

from napari_sam_mis.cli import main
from napari_sam_mis.errors import InputError
from napari_sam_mis.io import read_volume

from ..helpers import DATA, need

DCMQI_CT = DATA / "dcmqi_ct3slice_liver_seg" / "ct"


def _series_with(tmp_path, change):
    """A copy of the 3-slice GE CT with ``change(dataset)`` applied to its second file."""
    files = sorted(need(DCMQI_CT).iterdir())
    for f in files:
        shutil.copy(f, tmp_path / f.name)
    target = tmp_path / files[1].name
    ds = pydicom.dcmread(target)
    change(ds)
    ds.save_as(target)
    return target


FAULTS = [
    ("no ImagePositionPatient", "lacks ImagePositionPatient"),
    ("no ImageOrientationPatient", "differs from the other 2 slices .*ImageOrientationPatient None"),
    ("a tilted slice", "differs from the other 2 slices .* orientation.* move 02.dcm out of the folder"),
    ("no PixelSpacing", "lacks PixelSpacing"),
    ("another PixelSpacing", "has PixelSpacing"),
    ("zero PixelSpacing", "PixelSpacing must be positive"),
]


@pytest.mark.parametrize("fault, message", FAULTS, ids=[fault for fault, _ in FAULTS])
def test_a_slice_with_faulty_geometry_is_named(fault, message, tmp_path):
    def change(ds):
        if fault.startswith("no "):
            delattr(ds, fault[3:])
        elif fault == "a tilted slice":
            ds.ImageOrientationPatient = [1, 0, 0, 0, 0.9962, -0.0872]  # 5 degrees
        elif fault == "another PixelSpacing":
            ds.PixelSpacing = [0.5, 0.5]
        else:
            ds.PixelSpacing = [0, 0]

    target = _series_with(tmp_path, change)
    with pytest.raises(InputError, match=message) as info:
        read_volume(tmp_path)
    assert target.name in str(info.value)


def test_cli_series_option_picks_one_of_several(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for f in sorted(need(DCMQI_CT).iterdir()):
        shutil.copy(f, folder / f.name)
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1"
        ds.SeriesDescription = "copy"
        ds.SOPInstanceUID = ds.SOPInstanceUID + ".1"
        ds.save_as(folder / f"copy_{f.name}")
    code = main(["embed", str(folder), "--level", "40", "--width", "0"])  # fails on the folder first
    err = capsys.readouterr().err
    assert code == 2 and "2 series in one folder" in err and "--series" in err
    code = main(["embed", str(folder), "--series", "copy", "--level", "40", "--width", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "--level/--width" in err  # the series was read: the bad window is what stops it


def test_an_extra_tilted_slice_is_named_with_the_way_to_open_the_rest(tmp_path, capsys):
    """A slice of another orientation in the series (a localizer, say): the error names it and says
    how to open the others, and doing so opens the regular volume."""
    for f in sorted(need(DCMQI_CT).iterdir()):
        shutil.copy(f, tmp_path / f.name)
    ds = pydicom.dcmread(tmp_path / "02.dcm")
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0.9962, -0.0872]
    ds.SOPInstanceUID = ds.SOPInstanceUID + ".9"
    ds.save_as(tmp_path / "localizer.dcm")
    code = main(["embed", str(tmp_path), "--level", "40", "--width", "0"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "localizer.dcm: differs from the other 3 slices" in err and "move localizer.dcm out of the folder" in err
    (tmp_path / "localizer.dcm").rename(tmp_path.parent / f"{tmp_path.name}_localizer.dcm")
    assert read_volume(tmp_path).shape == read_volume(DCMQI_CT).shape

"""nnU-Net v2 dataset export, checked by nnU-Net's own integrity verification."""
import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_sam_mis.errors import InputError
from napari_sam_mis.io import read_volume, write_labels
from napari_sam_mis.io.dataset import export_nnunet_dataset
from napari_sam_mis.volume import Volume

from ..helpers import DATA

SPLEEN = DATA / "msd_spleen_crop"
TOTALSEG = DATA / "totalseg_example"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared test data not found")


def test_export_passes_nnunet_verification(tmp_path):
    verify = pytest.importorskip("nnunetv2.experiment_planning.verify_dataset_integrity").verify_dataset_integrity
    cases = [(SPLEEN / "spleen2_ct.nii.gz", SPLEEN / "spleen2_label.nii.gz"),
             (TOTALSEG / "example_ct_sm.nii.gz", TOTALSEG / "example_seg.nii.gz"),
             (TOTALSEG / "example_ct_dicom", TOTALSEG / "example_seg_dicom.nii.gz")]
    out = export_nnunet_dataset(cases, tmp_path, dataset_id=501, name="SpleenTS", segments={1: "spleen", 5: "liver"})
    assert out == tmp_path / "Dataset501_SpleenTS"
    info = json.loads((out / "dataset.json").read_text())
    assert info["channel_names"] == {"0": "CT"} and info["numTraining"] == 3 and info["file_ending"] == ".nii.gz"
    assert list(info["labels"].values()) == list(range(len(info["labels"])))  # consecutive
    assert info["labels"]["spleen"] == 1
    assert sorted(p.name for p in (out / "imagesTr").iterdir())[0] == "SpleenTS_001_0000.nii.gz"
    src = nib.load(SPLEEN / "spleen2_ct.nii.gz")
    assert np.array_equal(nib.load(out / "labelsTr" / "SpleenTS_001.nii.gz").affine, src.affine)
    verify(str(out), 1)  # raises on any inconsistency


def test_labels_are_numbered_consistently_by_name(tmp_path):
    vol = read_volume(SPLEEN / "spleen2_ct.nii.gz")
    a, b = np.zeros(vol.shape, np.uint8), np.zeros(vol.shape, np.uint8)
    a[5, 10:20, 10:20], a[6, 10:20, 10:20] = 1, 2
    b[5, 10:20, 10:20] = 7
    write_labels(a, vol, tmp_path / "a.nii.gz", segments={1: "liver", 2: "lesion"})
    write_labels(b, vol, tmp_path / "b.nii.gz", segments={7: "lesion"})
    out = export_nnunet_dataset([(vol, tmp_path / "a.nii.gz"), (vol, tmp_path / "b.nii.gz")], tmp_path / "raw",
                                dataset_id=2, name="T")
    assert json.loads((out / "dataset.json").read_text())["labels"] == {"background": 0, "liver": 1, "lesion": 2}
    second = np.asanyarray(nib.load(out / "labelsTr" / "T_002.nii.gz").dataobj)
    assert set(np.unique(second)) == {0, 2}
    with pytest.raises(InputError, match="already exists"):
        export_nnunet_dataset([(vol, tmp_path / "a.nii.gz")], tmp_path / "raw", dataset_id=2, name="T")


def test_empty_mask_mixed_grids_and_rgb_are_refused(tmp_path):
    vol = read_volume(SPLEEN / "spleen2_ct.nii.gz")
    with pytest.raises(InputError, match="labels are empty"):
        export_nnunet_dataset([(vol, np.zeros(vol.shape, np.uint8))], tmp_path, dataset_id=3, name="E")
    with pytest.raises(InputError, match="does not match the image grid"):
        export_nnunet_dataset([(SPLEEN / "spleen2_ct.nii.gz", TOTALSEG / "example_seg.nii.gz")], tmp_path,
                              dataset_id=3, name="E")
    rgb = Volume(np.zeros((1, 8, 8, 3), np.uint8),
                 modality="OT", source="photo.png")
    with pytest.raises(InputError, match="photo.png: RGB images cannot be exported"):
        export_nnunet_dataset([(rgb, np.ones(rgb.shape, np.uint8))], tmp_path, dataset_id=3, name="E")
    assert not any(tmp_path.iterdir())


def test_cli_subcommand(tmp_path, capsys):
    from napari_sam_mis.cli.export import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["export-dataset", "--case", str(SPLEEN / "spleen2_ct.nii.gz"),
                              str(SPLEEN / "spleen2_label.nii.gz"), "--out", str(tmp_path), "--id", "7",
                              "--name", "Spleen", "--label", "1=spleen"])
    assert args.func(args) == 0
    out = Path(capsys.readouterr().out.strip())
    assert json.loads((out / "dataset.json").read_text())["labels"] == {"background": 0, "spleen": 1}


def test_an_unnamed_label_that_another_case_names_is_refused(tmp_path):
    """One case with a names file, one without: the organ must not become two classes."""
    vol = read_volume(SPLEEN / "spleen2_ct.nii.gz")
    mask = np.zeros(vol.shape, np.uint8)
    mask[5, 10:20, 10:20] = 1
    write_labels(mask, vol, tmp_path / "named.nii.gz", segments={1: "spleen"})
    unnamed = tmp_path / "unnamed.nii.gz"
    write_labels(mask, vol, unnamed)
    (tmp_path / "unnamed.json").unlink()
    with pytest.raises(InputError, match=r"unnamed.nii.gz: .*value 1 is spleen elsewhere"):
        export_nnunet_dataset([(vol, tmp_path / "named.nii.gz"), (vol, unnamed)], tmp_path / "raw", dataset_id=4, name="S")
    out = export_nnunet_dataset([(vol, tmp_path / "named.nii.gz"), (vol, unnamed)], tmp_path / "raw", dataset_id=4,
                                name="S", segments={1: "spleen"})  # named for all cases: one class
    assert json.loads((out / "dataset.json").read_text())["labels"] == {"background": 0, "spleen": 1}


def test_extra_channels_are_written_on_the_image_grid_and_pass_nnunet_verification(tmp_path):
    """The extra-channel contract without a model: any callable's maps become _0001, _0002 ..."""
    verify = pytest.importorskip("nnunetv2.experiment_planning.verify_dataset_integrity").verify_dataset_integrity
    from napari_sam_mis.io.dataset import ExtraChannel

    def channels(volume):
        bright = (volume.array > 100).astype(np.float32)
        return [ExtraChannel("bright", bright), ("dark", 1.0 - bright, "rescale_to_0_1")]

    cases = [(SPLEEN / "spleen2_ct.nii.gz", SPLEEN / "spleen2_label.nii.gz"),
             (TOTALSEG / "example_ct_sm.nii.gz", TOTALSEG / "example_seg.nii.gz")]
    out = export_nnunet_dataset(cases, tmp_path, dataset_id=8, name="Extra", segments={1: "spleen"}, extra_channels=channels)
    info = json.loads((out / "dataset.json").read_text())
    assert info["channel_names"] == {"0": "CT", "1": "noNorm", "2": "rescale_to_0_1"}
    assert info["channel_descriptions"] == {"0": "CT", "1": "bright", "2": "dark"}
    src = nib.load(SPLEEN / "spleen2_ct.nii.gz")
    extra = nib.load(out / "imagesTr" / "Extra_001_0001.nii.gz")
    assert np.array_equal(extra.affine, src.affine) and extra.shape == src.shape
    assert np.array_equal(np.asanyarray(extra.dataobj), (np.asanyarray(src.dataobj) > 100).astype(np.float32))
    assert sorted(p.name for p in (out / "imagesTr").iterdir())[-1] == "Extra_002_0002.nii.gz"
    verify(str(out), 1)


@pytest.mark.parametrize("fault", ["wrong shape", "NaN", "names differ"])
def test_bad_extra_channels_are_refused_and_nothing_is_written(fault, tmp_path):
    from napari_sam_mis.io.dataset import ExtraChannel

    def channels(volume):
        arr = np.zeros(volume.shape, np.float32)
        if fault == "wrong shape":
            arr = arr[1:]
        elif fault == "NaN":
            arr[0, 0, 0] = np.nan
        return [ExtraChannel("a" if fault != "names differ" or volume.shape[0] == 26 else "b", arr)]

    cases = [(SPLEEN / "spleen2_ct.nii.gz", SPLEEN / "spleen2_label.nii.gz"),
             (TOTALSEG / "example_ct_sm.nii.gz", TOTALSEG / "example_seg.nii.gz")]
    with pytest.raises(InputError, match="differ from the first case's" if fault == "names differ" else "extra channel 'a'"):
        export_nnunet_dataset(cases, tmp_path, dataset_id=8, name="Bad", extra_channels=channels)
    assert not any(tmp_path.iterdir())

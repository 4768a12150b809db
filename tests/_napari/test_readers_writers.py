"""napari reader/writer contributions, called directly (no viewer, no Qt)."""

import numpy as np
import pytest

from napari_sam_mis._napari.readers import napari_get_reader
from napari_sam_mis._napari.writers import write_labels_dicom_seg, write_labels_nifti
from napari_sam_mis.annotate.window import default_ct_contrast
from napari_sam_mis.errors import InputError
from napari_sam_mis.io import read_labels, read_volume

from ..helpers import DATA

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared test data not found")


def test_reader_declines_what_it_cannot_read(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None
    assert napari_get_reader(str(tmp_path)) is None
    assert napari_get_reader([str(tmp_path), str(tmp_path)]) is None


def test_nifti_reader_sets_scale_window_and_volume():
    path = str(DATA / "msd_spleen_crop" / "spleen2_ct.nii.gz")
    ((data, kwargs, kind),) = napari_get_reader(path)(path)
    assert kind == "image" and data.shape == (26, 166, 164)
    assert np.allclose(kwargs["scale"], (5.0, 0.794922, 0.794922), atol=1e-5)
    assert kwargs["contrast_limits"] == default_ct_contrast() == (-160.0, 240.0)
    assert kwargs["metadata"]["volume"].source == path
    assert np.array_equal(np.diag(kwargs["affine"])[:3], [-1, -1, -1])  # RAS file shown radiologically, head up


def test_dicom_folder_reader_and_layers_build():
    layers = pytest.importorskip("napari.layers")
    path = str(DATA / "totalseg_example" / "example_ct_dicom")
    ((data, kwargs, kind),) = napari_get_reader(path)(path)
    assert kwargs["name"] == "CT Body 3.0" and data.shape == (20, 512, 512)
    layer = layers.Image(data, **kwargs)
    assert np.allclose(layer.scale, (2.0, 0.9765625, 0.9765625))
    # world coordinates of voxel 0 are (I, P, L) mm of the first slice's corner
    assert np.allclose(layer.data_to_world((0, 0, 0)), (804.5, -437.51171875, -249.51171875))


def test_coronal_and_sagittal_views_are_head_up():
    """On the MSD spleen's affine: napari draws world axis 0 downwards, so the most superior slice
    must have the smallest world coordinate; patient right must lie at smaller world axis 2 (the
    left of the screen) and anterior at smaller world axis 1."""
    layers = pytest.importorskip("napari.layers")
    path = str(DATA / "msd_spleen_crop" / "spleen2_ct.nii.gz")
    ((data, kwargs, _),) = napari_get_reader(path)(path)
    layer = layers.Image(data, **kwargs)
    vol = kwargs["metadata"]["volume"]
    n = data.shape[0]
    superior = 0 if vol.affine[2, 0] < 0 else n - 1  # the slice with the largest RAS z
    inferior = n - 1 - superior
    assert layer.data_to_world((superior, 0, 0))[0] < layer.data_to_world((inferior, 0, 0))[0]
    right = int(np.argmax([vol.affine[0] @ [0, 0, c, 1] for c in (0, data.shape[2] - 1)])) * (data.shape[2] - 1)  # RAS: +x right
    left = data.shape[2] - 1 - right
    assert layer.data_to_world((0, 0, right))[2] < layer.data_to_world((0, 0, left))[2]
    anterior = int(np.argmax([vol.affine[1] @ [0, r, 0, 1] for r in (0, data.shape[1] - 1)])) * (data.shape[1] - 1)
    posterior = data.shape[1] - 1 - anterior
    assert layer.data_to_world((0, anterior, 0))[1] < layer.data_to_world((0, posterior, 0))[1]


def test_seg_reader_gives_named_labels():
    layers = pytest.importorskip("napari.layers")
    path = str(DATA / "dcmqi_ct3slice_liver_seg" / "liver_seg.dcm")
    ((data, kwargs, kind),) = napari_get_reader(path)(path)
    assert kind == "labels" and int(data.sum()) == 107098
    assert kwargs["metadata"]["segments"] == {"1": {"name": "Liver", "color": [221, 130, 101]}}
    layer = layers.Labels(data, **kwargs)
    assert list(layer.features["name"]) == ["background", "Liver"]


def test_single_slice_file_opens_its_series():
    path = str(DATA / "dcmqi_ct3slice_liver_seg" / "ct" / "02.dcm")
    ((data, _, kind),) = napari_get_reader(path)(path)
    assert kind == "image" and data.shape == (3, 512, 512)


def test_writers_use_the_layer_volume(tmp_path):
    path = str(DATA / "dcmqi_ct3slice_liver_seg" / "ct")
    ((_, image_kwargs, _),) = napari_get_reader(path)(path)
    volume = image_kwargs["metadata"]["volume"]
    labels = np.zeros(volume.shape, np.uint8)
    labels[1, 200:260, 200:260] = 1
    attributes = {"metadata": {"volume": volume, "segments": {"1": {"name": "lesion", "color": [255, 0, 0]}}},
                  "scale": image_kwargs["scale"]}
    written = write_labels_nifti(str(tmp_path / "l.nii.gz"), labels, attributes)
    assert written == [str(tmp_path / "l.nii.gz"), str(tmp_path / "l.json")]
    (seg_path,) = write_labels_dicom_seg(str(tmp_path / "l.dcm"), labels, attributes)
    for p in (written[0], seg_path):
        back = read_labels(p, volume)
        assert np.array_equal(back.array, labels) and back.segments[1].name == "lesion"

    with pytest.raises(InputError, match="does not carry its DICOM source image"):
        write_labels_dicom_seg(str(tmp_path / "x.dcm"), labels, {"metadata": {}})
    (plain,) = write_labels_nifti(str(tmp_path / "plain.nii.gz"), labels, {"metadata": {}, "scale": (2, 1, 1)})[:1]
    assert read_volume(plain).spacing == (2.0, 1.0, 1.0)


def test_label_names_and_colours_round_trip_through_layer_metadata():
    from napari_sam_mis._napari.layers import label_list_from_segments, segments_metadata
    from napari_sam_mis.annotate.labels import LabelList

    labels = LabelList.builtin()
    labels.add("tumour", "#102030")
    again = label_list_from_segments(segments_metadata(labels))
    assert again.names() == labels.names() and again.colors() == labels.colors()

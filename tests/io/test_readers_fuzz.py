"""Property-based tests of the readers: a real file truncated, with flipped bytes or a random
header opens, or fails with the project's own InputError naming it; never another exception.
FUZZ_EXAMPLES sets the examples per reader (25 by default; 2000 passed on 2026-12-01)."""
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_sam_mis.errors import InputError
from napari_sam_mis.io import read_labels, read_volume

from ..helpers import DATA, SAMMED2D, need

SOURCES = {
    "nii": DATA / "totalseg_example" / "example_ct_sm.nii.gz",
    "dcm": DATA / "dcmqi_ct3slice_liver_seg" / "ct" / "01.dcm",
    "png": SAMMED2D / "images" / "amos_0004_75.png",
    "npz": DATA / "deeplesion_medsam2" / "CT_Lesion_000009_03_01_036-048.npz",
}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 25))  # per reader; set it higher for a long run
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _mutate(data: bytes, how, draw) -> bytes:
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "header":
        size = min(len(data), 512)
        return draw(st.binary(min_size=size, max_size=size)) + data[size:]
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] ^= draw(st.integers(1, 255))
    return bytes(out)


@pytest.mark.parametrize("kind", sorted(SOURCES))
@SETTINGS
@given(data=st.data())
def test_a_damaged_image_opens_or_is_refused_clearly(kind, data, tmp_path):
    source = need(SOURCES[kind])
    how = data.draw(st.sampled_from(["truncate", "flip", "header"]))
    path = tmp_path / ("damaged" + "".join(source.suffixes))
    path.write_bytes(_mutate(source.read_bytes(), how, data.draw))
    try:
        read_volume(path)
    except InputError as exc:
        assert "damaged" in str(exc)


LABELS = {  # labels file -> the image it belongs to
    "seg": (DATA / "dcmqi_ct3slice_liver_seg" / "liver_seg.dcm", DATA / "dcmqi_ct3slice_liver_seg" / "ct"),
    "nii": (DATA / "totalseg_example" / "example_seg.nii.gz", DATA / "totalseg_example" / "example_ct_sm.nii.gz"),
}


@pytest.fixture(scope="module")
def label_images():
    return {kind: read_volume(need(image)) for kind, (_, image) in LABELS.items()}


@pytest.mark.parametrize("kind", sorted(LABELS))
@SETTINGS
@given(data=st.data())
def test_damaged_labels_load_or_are_refused_clearly(kind, label_images, data, tmp_path):
    source = need(LABELS[kind][0])
    how = data.draw(st.sampled_from(["truncate", "flip", "header"]))
    path = tmp_path / ("damaged_labels" + "".join(source.suffixes))
    path.write_bytes(_mutate(source.read_bytes(), how, data.draw))
    try:
        read_labels(path, label_images[kind])
    except InputError as exc:
        assert "damaged_labels" in str(exc)


@SETTINGS
@given(data=st.data())
def test_a_series_with_one_damaged_slice_opens_or_names_the_slice(data, tmp_path_factory):
    import shutil

    folder = tmp_path_factory.mktemp("series")
    files = sorted(need(DATA / "dcmqi_ct3slice_liver_seg" / "ct").iterdir())
    for f in files:
        shutil.copy(f, folder / f.name)
    victim = folder / files[data.draw(st.integers(0, len(files) - 1))].name
    victim.write_bytes(_mutate(victim.read_bytes(), data.draw(st.sampled_from(["truncate", "flip", "header"])), data.draw))
    try:
        read_volume(folder)
    except InputError as exc:
        assert folder.name in str(exc)

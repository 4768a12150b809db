"""The batch manifest: rows grouped into cases, and a bad row named by file and line."""
import pytest

from napari_sam_mis.batch.manifest import read_manifest
from napari_sam_mis.errors import InputError

HEADER = "case,image,z,r0,c0,r1,c1,label,name,clicks\n"


def _write(tmp_path, text):
    path = tmp_path / "manifest.csv"
    path.write_text(text)
    return path


def test_rows_group_into_cases_with_boxes_and_clicks(tmp_path):
    path = _write(tmp_path, HEADER + "a,ct.nii.gz,12,80,60,140,130,1,spleen,\n"
                                     "a,ct.nii.gz,10,,,,,2,liver,50 40 1; 52 44 0\n"
                                     "b,/data/b.nii.gz,3,1,2,3,4,1,spleen,\n")
    a, b = read_manifest(path)
    assert a.name == "a" and a.image == str(tmp_path / "ct.nii.gz") and b.image == "/data/b.nii.gz"
    assert a.prompts[0].prompt.box == (80, 60, 140, 130) and a.prompts[0].name == "spleen"
    click = a.prompts[1]
    assert click.prompt.box is None and click.prompt.points == [(50, 40), (52, 44)] and click.prompt.labels == [1, 0]
    assert click.label == 2 and click.line == 3


def test_embed_needs_only_case_and_image(tmp_path):
    cases = read_manifest(_write(tmp_path, "case,image\nx,x.nii.gz\ny,y.nii.gz\n"), need_prompts=False)
    assert [c.name for c in cases] == ["x", "y"] and not cases[0].prompts


@pytest.mark.parametrize("text, message", [
    ("case,image\nx,x.nii.gz\n", "missing: z, r0"),
    (HEADER, "no rows"),
    (HEADER + "a,ct.nii.gz,twelve,1,2,3,4,1,s,\n", "line 2: z must be a number"),
    (HEADER + "a,ct.nii.gz,1,1,2,,4,1,s,\n", "line 2: give all four box corners"),
    (HEADER + "a,ct.nii.gz,1,1,2,3,4,1,s,5 6 2\n", "line 2: a click is 'row col sign'"),
    (HEADER + "a,ct.nii.gz,1,1,2,3,4,300,s,\n", "line 2: label must lie in 1..255"),
    (HEADER + "a,ct.nii.gz,1,1,2,3,4,1,s,\na,other.nii.gz,1,1,2,3,4,1,s,\n", "line 3: case 'a' has two images"),
    (HEADER + "../a,ct.nii.gz,1,1,2,3,4,1,s,\n", "line 2: needs a case name"),
])
def test_a_bad_row_is_named(tmp_path, text, message):
    with pytest.raises(InputError, match="manifest.csv") as info:
        read_manifest(_write(tmp_path, text))
    assert message in str(info.value)


def test_a_missing_manifest_is_named(tmp_path):
    with pytest.raises(InputError, match="nothere.csv"):
        read_manifest(tmp_path / "nothere.csv")

"""Fixtures of the command-line tests."""
import shutil

import pytest

from ..helpers import SPLEEN_CT, SPLEEN_LABEL, need


@pytest.fixture
def spleen_copy(tmp_path):
    """The spleen CT and label in a folder of the test's own."""
    folder = tmp_path / "case"
    folder.mkdir()
    ct, label = folder / "ct.nii.gz", folder / "label.nii.gz"
    shutil.copy(need(SPLEEN_CT), ct)
    shutil.copy(need(SPLEEN_LABEL), label)
    return ct, label

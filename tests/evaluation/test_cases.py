"""The written split: by patient, every case readable with labels, slicing axis as written."""
import numpy as np
import pytest

from napari_sam_mis.evaluation.cases import SPLITS, cases_of, load_split, read_case, superior_axis

from ..helpers import DATA, need


def test_no_patient_is_in_two_splits():
    seen = {}
    for case in load_split():
        assert case.split in SPLITS
        for patient in case.patient.split(", "):
            assert seen.setdefault(patient, case.split) == case.split, f"{patient} is in two splits"
    assert cases_of("validation") and cases_of("test") and cases_of("train")
    names = [c.name for c in load_split()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", [c for c in load_split() if c.split != "train"], ids=lambda c: c.name)
def test_every_evaluated_case_reads_with_its_labels(case):
    need(DATA / case.image)
    volume, labels = read_case(case, DATA)
    assert labels.shape == volume.shape and labels.any()
    assert volume.modality == case.modality
    values = set(np.unique(labels)) - {0}
    if case.label_values:
        assert values == set(case.label_values)
    if case.axial:
        assert superior_axis(volume) == 0, "moved so that slices are axial"


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="unknown split"):
        cases_of("holdout")

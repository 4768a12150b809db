"""Fixtures shared by the whole suite: the real model, an empty embedding cache per test, and the
MSD spleen crop (real CT with a manual label) as a volume and as its largest slice."""
import numpy as np
import pytest

from .helpers import SPLEEN_CT, SPLEEN_LABEL, need


@pytest.fixture(scope="session")
def lite_engine():
    """The real LiteMedSAM with its bundled weights, on the CPU (loaded once per test run)."""
    from napari_sam_mis.model.engine import SamEngine

    return SamEngine.load("litemedsam", device="cpu")


@pytest.fixture(autouse=True)
def _embedding_cache_in_tmp(tmp_path_factory, monkeypatch):
    """Each test gets an empty disk cache of embeddings, no saved sessions and no tuned models,
    never the user's own."""
    monkeypatch.setenv("NAPARI_SAM_MIS_CACHE", str(tmp_path_factory.mktemp("embedding_cache")))
    monkeypatch.setenv("NAPARI_SAM_MIS_SESSIONS", str(tmp_path_factory.mktemp("sessions")))
    monkeypatch.setenv("NAPARI_SAM_MIS_MODELS", str(tmp_path_factory.mktemp("tuned_models")))


@pytest.fixture(scope="session")
def spleen():
    """(CT Volume, bool spleen mask) of the MSD spleen crop."""
    from napari_sam_mis.io.nifti import read_nifti

    return read_nifti(need(SPLEEN_CT)), read_nifti(need(SPLEEN_LABEL)).array > 0


@pytest.fixture(scope="session")
def spleen_slice(spleen):
    """The spleen's largest slice, soft-tissue window, as 0..255 display values, and its mask."""
    from napari_sam_mis.annotate.window import Window, apply_window

    ct, gt = spleen
    z = int(np.argmax(gt.sum(axis=(1, 2))))
    return apply_window(ct.array[z], Window.preset("soft tissue").bounds(ct.array)), gt[z]

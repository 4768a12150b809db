import pytest


@pytest.fixture(scope="session")
def lite_engine():
    """The real LiteMedSAM with its bundled weights, on the CPU (loaded once per test run)."""
    from napari_sam_mis.core.engine import SamEngine

    return SamEngine.load("litemedsam", device="cpu")


@pytest.fixture(autouse=True)
def _embedding_cache_in_tmp(tmp_path_factory, monkeypatch):
    """Each test gets an empty disk cache of embeddings, never the user's cache directory."""
    monkeypatch.setenv("NAPARI_SAM_MIS_CACHE", str(tmp_path_factory.mktemp("embedding_cache")))

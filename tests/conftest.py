import pytest


@pytest.fixture(scope="session")
def lite_engine():
    """The real LiteMedSAM with its bundled weights, on the CPU (loaded once per test run)."""
    from napari_sam_mis.core.engine import SamEngine

    return SamEngine.load("litemedsam", device="cpu")

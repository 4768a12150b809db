"""Shared test helpers: where the real data lies, and one engine per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLEEN_CT = DATA / "msd_spleen_crop" / "spleen2_ct.nii.gz"
SPLEEN_LABEL = DATA / "msd_spleen_crop" / "spleen2_label.nii.gz"
LESION_9 = DATA / "deeplesion_medsam2" / "CT_Lesion_000009_03_01_036-048.npz"
LESION_10 = DATA / "deeplesion_medsam2" / "CT_Lesion_000010_01_01_078-090.npz"
SAMMED2D = DATA / "sammed2d_demo"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test data missing: {path.name}")
    return path

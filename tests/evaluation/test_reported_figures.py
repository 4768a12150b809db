"""The README's accuracy table says what the stored benchmark results say."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("box", "point", "clicks3", "box+point")


def _means(split: str) -> list[float]:
    results = json.loads((ROOT / "benchmarks" / f"results_click_paths_{split}.json").read_text())["results"]
    rows = [per_model["litemedsam"] for per_model in results.values()]
    means = [np.mean([r[k] for r in rows]) for k in COLUMNS]
    protocol = [r["interactive box"] for r in rows]
    means += [np.mean([p["dice_per_step"][0] for p in protocol]), np.mean([p["final_dice"] for p in protocol])]
    return [round(float(m), 3) for m in means]


@pytest.mark.parametrize("split", ["validation", "test"])
def test_readme_accuracy_table_matches_the_stored_results(split):
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| {split} ("))
    reported = [float(x) for x in re.findall(r"\d\.\d{3}", row)]
    assert reported == _means(split), f"README's {split} row is stale: rerun benchmarks/click_paths.py and update it"

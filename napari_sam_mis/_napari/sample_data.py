"""napari sample data: the synthetic abdominal CT phantom (no files needed)."""
from __future__ import annotations

from ..core.phantom import ORGANS, abdomen_phantom


def abdomen_phantom_layers():
    vol, _ = abdomen_phantom()
    return [
        (
            vol.array,
            {
                "name": "abdomen phantom (HU)",
                "scale": vol.spacing,
                "contrast_limits": (-160, 240),
                "colormap": "gray",
                "metadata": {"volume": vol, "organs": {v: n for v, (n, _) in ORGANS.items()}},
            },
            "image",
        )
    ]

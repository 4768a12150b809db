"""napari sample data: the synthetic abdominal CT phantom (no files needed)."""
from __future__ import annotations

from napari_sam_mis._napari.keys import VOLUME_KEY
from napari_sam_mis.annotate.window import default_ct_contrast
from napari_sam_mis.io.phantom import ORGANS, abdomen_phantom


def abdomen_phantom_layers():
    vol, _ = abdomen_phantom()
    return [
        (
            vol.array,
            {
                "name": "abdomen phantom (HU)",
                "scale": vol.spacing,
                "contrast_limits": default_ct_contrast(),
                "colormap": "gray",
                "metadata": {VOLUME_KEY: vol, "organs": {v: n for v, (n, _) in ORGANS.items()}},
            },
            "image",
        )
    ]

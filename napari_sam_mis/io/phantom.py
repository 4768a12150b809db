"""A synthetic abdominal CT in Hounsfield units, built by code, so the demo needs no files.

Organ-like ellipsoids (liver, spleen, kidneys, aorta, vertebra) inside a body outline with
fat, muscle wall, air outside and mild noise. Returns the image and its organ labels.
"""
from __future__ import annotations

import numpy as np

from napari_sam_mis.volume import Volume

# label value -> (name, HU)
ORGANS = {
    1: ("liver", 60.0),
    2: ("spleen", 45.0),
    3: ("kidney_right", 150.0),
    4: ("kidney_left", 150.0),
    5: ("aorta", 220.0),
    6: ("vertebra", 700.0),
}
SPACING = (2.5, 0.8, 0.8)  # mm, (z, y, x)


def _ellipsoid(zz, yy, xx, center, radii):
    cz, cy, cx = center
    rz, ry, rx = radii
    return ((zz - cz) / rz) ** 2 + ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def abdomen_phantom(shape=(32, 256, 256), seed: int = 0) -> tuple[Volume, np.ndarray]:
    """(Volume in HU, uint8 labels) with the organs of ``ORGANS``; x increases to patient left."""
    nz, ny, nx = shape
    zz, yy, xx = np.meshgrid(
        np.arange(nz, dtype=np.float32), np.arange(ny, dtype=np.float32), np.arange(nx, dtype=np.float32), indexing="ij"
    )
    sy, sx = ny / 256.0, nx / 256.0
    zc = nz / 2.0
    image = np.full(shape, -1000.0, np.float32)
    labels = np.zeros(shape, np.uint8)
    body = ((yy - 128 * sy) / (95 * sy)) ** 2 + ((xx - 128 * sx) / (118 * sx)) ** 2 <= 1.0
    inner = ((yy - 128 * sy) / (85 * sy)) ** 2 + ((xx - 128 * sx) / (108 * sx)) ** 2 <= 1.0
    image[body] = -100.0  # subcutaneous fat
    image[body & ~inner] = 50.0  # muscle wall
    image[inner] = 20.0  # bowel / soft tissue background
    gas = _ellipsoid(zz, yy, xx, (zc, 95 * sy, 150 * sx), (nz * 0.3, 12 * sy, 16 * sx))
    image[gas & inner] = -600.0
    organs = {
        1: _ellipsoid(zz, yy, xx, (zc + nz * 0.1, 112 * sy, 78 * sx), (nz * 0.45, 48 * sy, 42 * sx)),
        2: _ellipsoid(zz, yy, xx, (zc + nz * 0.15, 118 * sy, 192 * sx), (nz * 0.3, 26 * sy, 17 * sx)),
        3: _ellipsoid(zz, yy, xx, (zc - nz * 0.1, 160 * sy, 88 * sx), (nz * 0.28, 20 * sy, 13 * sx)),
        4: _ellipsoid(zz, yy, xx, (zc - nz * 0.1, 160 * sy, 168 * sx), (nz * 0.28, 20 * sy, 13 * sx)),
        5: _ellipsoid(zz, yy, xx, (zc, 145 * sy, 140 * sx), (nz * 2.0, 9 * sy, 9 * sx)),
        6: _ellipsoid(zz, yy, xx, (zc, 178 * sy, 128 * sx), (nz * 2.0, 16 * sy, 17 * sx)),
    }
    for value, mask in organs.items():
        mask &= inner
        image[mask] = ORGANS[value][1]
        labels[mask] = value
    rng = np.random.default_rng(seed)
    image += rng.normal(0.0, 12.0, shape).astype(np.float32)
    image[~body] = -1000.0
    vol = Volume(np.round(image).astype(np.int16), spacing=SPACING, modality="CT", source="")
    return vol, labels

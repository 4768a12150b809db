"""Computing slice embeddings in batches, current slice first, with progress and cancel hooks."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.model.slices import SliceEmbedding


def center_out_order(center: int, n: int) -> list[int]:
    """0..n-1 ordered by distance from ``center``: c, c+1, c-1, c+2, c-2, ..."""
    center = min(max(int(center), 0), max(n - 1, 0))
    order = [center]
    for d in range(1, n):
        for z in (center + d, center - d):
            if 0 <= z < n:
                order.append(z)
    return order[:n]


def iter_embeddings(
    engine: SamEngine,
    display_slice: Callable[[int], object],
    indices: Iterable[int],
    batch_size: int = 4,
) -> Iterator[tuple[int, SliceEmbedding]]:
    """Yield (z, embedding) for each index, encoding ``batch_size`` slices per model call.

    ``display_slice(z)`` returns the 0..255 display values of slice z. Stopping the iteration
    (cancel) wastes at most one batch.
    """
    batch: list[int] = []
    for z in indices:
        batch.append(int(z))
        if len(batch) == batch_size:
            yield from zip(batch, engine.embed_slices([display_slice(b) for b in batch]))
            batch = []
    if batch:
        yield from zip(batch, engine.embed_slices([display_slice(b) for b in batch]))


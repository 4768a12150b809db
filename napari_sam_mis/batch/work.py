"""One case of a batch, as it runs on a Dask worker: embed every slice into the cache, or segment
each prompt through the volume and write the labels. A case that is done already (its record
matches its inputs) is skipped; a case that fails says why and the batch goes on.

Outputs of a case (``<out>/<case>/``): ``labels.nii.gz`` + ``labels.json`` (segment), and last
``record.json``: the inputs it was made from (image, its files' sizes and times, prompts, model,
window), so a rerun can tell it is done. Every file is written through a temporary file and a
rename: a worker killed mid-case leaves nothing under a final name, and the case runs again.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_sam_mis.errors import SamMisError

RECORD = "record.json"
_ENGINES: dict[tuple, object] = {}  # one model per worker process and (name, checkpoint, device)
_ENGINES_LOCK = threading.Lock()


@dataclass
class Settings:
    """What every case of a batch shares."""

    task: str  # "embed" or "segment"
    out_dir: str
    model: str = "litemedsam"
    checkpoint: str | None = None
    device: str = "auto"
    cache_dir: str | None = None  # embed: the (shared) embedding cache folder; None: the default
    torch_threads: int | None = None  # intra-op threads per worker (None: torch's default)
    dicom_seg: bool = False  # segment: also write labels.dcm for DICOM sources


def image_signature(image) -> dict:
    """The image's files with their sizes and modification times: a changed input is a new case."""
    p = Path(image)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    stats = [f.stat() for f in files]
    return {"image": str(p.resolve()), "files": len(files), "bytes": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}


def case_inputs(case, settings: Settings) -> dict:
    inputs = {"task": settings.task, **image_signature(case.image), "model": settings.model,
              "checkpoint": settings.checkpoint or ""}
    if settings.task == "segment":
        inputs["prompts"] = [p.record() for p in case.prompts]
        inputs["dicom_seg"] = settings.dicom_seg
    return inputs


def is_done(case, settings: Settings) -> bool:
    """Whether the case's record says it was made from these very inputs (and, for embed, its
    cache folder is still there)."""
    record = Path(settings.out_dir) / case.name / RECORD
    try:
        saved = json.loads(record.read_text())
        same = saved.get("inputs") == case_inputs(case, settings)
        return same and (settings.task != "embed" or Path(saved["result"]["cache"]).is_dir())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def run_case(case, settings: Settings) -> dict:
    """Run one case; returns {"case", "status": "done" | "failed", "slices", "seconds", "worker", ...}."""
    t0 = time.perf_counter()
    out = {"case": case.name, "worker": _worker_address(), "slices": 0}
    try:
        inputs = case_inputs(case, settings)
        out.update(_embed(case, settings) if settings.task == "embed" else _segment(case, settings))
        _write_record(Path(settings.out_dir) / case.name, inputs, out)
        out["status"] = "done"
    except (SamMisError, OSError, ValueError) as exc:
        out.update(status="failed", reason=str(exc))
    except Exception as exc:  # a bug must not stop the other cases: report it with its type
        out.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _engine(settings: Settings):
    from napari_sam_mis.model.engine import SamEngine

    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    key = (settings.model, settings.checkpoint or "", settings.device)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = SamEngine.load(settings.model, settings.checkpoint, settings.device)
        return _ENGINES[key]


def _embed(case, settings: Settings) -> dict:
    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.embeddings.store import default_cache_dir
    from napari_sam_mis.io import read_volume

    volume = read_volume(case.image)
    session = AnnotationSession(volume, _engine(settings), batch_size=4, cache_dir=settings.cache_dir or default_cache_dir(),
                                memory_slices=4)
    session.verify_cache()
    todo = sorted(session.missing())
    for _ in session.iter_embed(todo):
        pass
    if session.n_embedded != session.n_slices:
        raise SamMisError(f"{case.image}: {session.n_slices - session.n_embedded} slices could not be cached")
    return {"slices": len(todo), "cached_before": session.n_slices - len(todo), "cache": str(session.cache_path)}


def _segment(case, settings: Settings) -> dict:
    from napari_sam_mis.annotate.session import AnnotationSession
    from napari_sam_mis.annotate.volume_segment import check_prompt, segment_volume
    from napari_sam_mis.io import read_volume, write_labels

    if not case.prompts:
        raise SamMisError(f"case {case.name}: no prompts in the manifest")
    volume = read_volume(case.image)
    for p in case.prompts:
        if p.axis != 0:
            raise SamMisError(f"case {case.name}, manifest line {p.line}: batch segmentation runs on axial slices (axis 0)")
        check_prompt(volume, p.z, p.prompt, f"case {case.name}, manifest line {p.line}")
    session = AnnotationSession(volume, _engine(settings))  # as `segment` does: the same masks
    labels = np.zeros(volume.shape, np.uint8)
    names, stops, slices = {}, {}, 0
    for p in case.prompts:
        result = segment_volume(session, p.z, p.prompt)
        result.paint(labels, p.label)
        names[p.label] = p.name
        stops[f"line {p.line}"] = {word: stop.message for word, stop in result.stops.items()}
        slices += len(result.masks)
    folder = Path(settings.out_dir) / case.name
    written = write_labels(labels, volume, folder / "labels.nii.gz", segments=names)
    if settings.dicom_seg and volume.meta.get("dicom_datasets"):
        written += write_labels(labels, volume, folder / "labels.dcm", segments=names)
    return {"slices": slices, "voxels": int((labels > 0).sum()), "written": [str(w) for w in written], "stops": stops}


def _write_record(folder: Path, inputs: dict, result: dict) -> None:
    from napari_sam_mis.io.atomic import write_bytes_atomic

    made = {k: v for k, v in result.items() if k not in ("worker",)}
    write_bytes_atomic(folder / RECORD, json.dumps({"inputs": inputs, "result": made}, indent=1).encode())


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"local pid {os.getpid()}"

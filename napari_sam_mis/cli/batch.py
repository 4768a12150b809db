"""`napari-sam-mis batch`: a manifest of cases -> embeddings in the cache, or labels, on Dask distributed."""
from __future__ import annotations

import argparse
import json
import sys

from napari_sam_mis.embeddings.store import CACHE_ENV
from napari_sam_mis.model.registry import DEFAULT_MODEL, model_names


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "batch", help="embed or segment the cases of a manifest on Dask distributed (resumable)",
        description="MANIFEST is a CSV with one prompt per row: case,image,z,r0,c0,r1,c1,label,name (a box on "
                    "slice z, rows and columns in pixels as napari's data coordinates; optional columns: clicks "
                    "'row col sign; ...', axis). --task embed fills the embedding cache (only case and image are "
                    "needed); --task segment writes OUT/<case>/labels.nii.gz propagated through the volume. Cases "
                    "done before with the same inputs are skipped. Progress goes to stderr; the last stdout line "
                    "is a JSON summary.")
    p.add_argument("manifest")
    p.add_argument("--out", required=True, help="output folder: <case>/labels.nii.gz and <case>/record.json")
    p.add_argument("--task", choices=("embed", "segment"), default="segment")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://HOST:PORT)")
    where.add_argument("--workers", type=int, help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--cache-dir", help=f"embedding cache folder shared by the workers (default: ${CACHE_ENV} "
                                       "or the user cache directory)")
    p.add_argument("--dicom-seg", action="store_true", help="segment: also write labels.dcm for DICOM sources")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=model_names(), help="model name (default: %(default)s)")
    p.add_argument("--checkpoint", help="checkpoint file for sam_vit_* / medsam_vit_b, on every worker's path")
    p.add_argument("--device", default="auto", help="auto (each worker's CUDA when it has one, else CPU), cpu, cuda")
    p.set_defaults(func=run_batch_command)
    return p


def run_batch_command(args) -> int:
    from pathlib import Path

    from napari_sam_mis.batch.manifest import read_manifest
    from napari_sam_mis.batch.runner import run_batch
    from napari_sam_mis.batch.work import Settings
    from napari_sam_mis.errors import SamMisError

    if args.workers is not None and args.workers < 1:
        raise SamMisError(f"--workers must be at least 1, got {args.workers}")
    cases = read_manifest(args.manifest, need_prompts=args.task == "segment")
    cache = str(Path(args.cache_dir).expanduser().resolve()) if args.cache_dir else None
    settings = Settings(task=args.task, out_dir=str(Path(args.out).expanduser().resolve()), model=args.model,
                        checkpoint=args.checkpoint, device=args.device, cache_dir=cache, dicom_seg=args.dicom_seg)
    result = run_batch(cases, settings, scheduler=args.scheduler, workers=args.workers,
                       say=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(result))
    return 1 if result["failed"] else 0

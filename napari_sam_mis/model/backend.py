"""Where and how the model runs: the device, and the backend of the engine.

Backends (``SamEngine.load(..., backend=...)``, or the NAPARI_SAM_MIS_BACKEND variable):
- ``eager``: the model modules as built, fp32 (the reference).
- ``fast``: fp32, LiteMedSAM's encoder rewritten for the CPU (kernels/tinyvit.py) and the prompt
  decoder with per-slice caching (kernels/mask_decoder.py); numerically the same up to float
  rounding. On the CPU it also keeps freed memory in the process between calls (kernels/allocator.py).
- ``bf16`` / ``fp16``: ``fast`` with the image encoder under autocast (the decoder stays fp32);
  on CUDA the encoder runs in batches of CUDA_BATCH slices.
- ``auto`` (default): ``fast``. Reduced precision is opt-in (see docs/performance.md).
A backend that does not apply falls back: ``fp16`` on a CPU to ``fast``, and a model whose
encoder is not LiteMedSAM's TinyViT keeps its own encoder (the fast decoder still applies).
"""
from __future__ import annotations

import os

from napari_sam_mis.errors import ModelError

BACKENDS = ("auto", "eager", "fast", "bf16", "fp16")
BACKEND_ENV = "NAPARI_SAM_MIS_BACKEND"


def resolve_device(device: str = "auto"):
    """'auto' picks CUDA, then Apple MPS, then CPU; an explicit device must be available."""
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available (use --device cpu or auto)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError(f"device {device!r} requested but Apple MPS is not available")
    return dev


def resolve_backend(backend: str | None, device) -> str:
    """The backend to use on ``device``: the request (argument, else $NAPARI_SAM_MIS_BACKEND,
    else auto) made concrete; a request that cannot run here falls back to ``fast``."""
    import torch

    requested = backend or os.environ.get(BACKEND_ENV) or "auto"
    if requested not in BACKENDS:
        source = "backend" if backend else BACKEND_ENV
        raise ModelError(f"{source}={requested!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    if requested == "auto":
        return "fast"
    if requested == "fp16" and device.type != "cuda":
        return "fast"  # no half-precision matrix units on the CPU path
    if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp16"
    return requested

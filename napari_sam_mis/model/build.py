"""Building a registered model on the CPU from its weights (bundled, shipped or the user's file)."""
from __future__ import annotations

from pathlib import Path

from napari_sam_mis.errors import ModelError
from napari_sam_mis.model.decoder_weights import apply_decoder_weights, resolve_weights_path
from napari_sam_mis.model.registry import DEFAULT_MODEL, ModelSpec, get_spec
from napari_sam_mis.model.weights import SHIPPED_DIR, bundled_litemedsam_path, load_state_dict, load_weights


def build_model(name: str = DEFAULT_MODEL, checkpoint=None):
    """Build the named model on the CPU in eval mode; returns (module, weights_path)."""
    spec = get_spec(name)
    if spec.decoder_overlay:
        return _build_with_decoder_overlay(spec, checkpoint)
    if spec.needs_checkpoint and not checkpoint:
        raise ModelError(
            f"model {name!r} ({spec.description}) needs a checkpoint file (usually {spec.checkpoint_file}); "
            "pass it with --checkpoint or the widget's checkpoint field. Nothing is downloaded."
        )
    path = Path(checkpoint) if checkpoint else bundled_litemedsam_path()
    state = load_state_dict(path, name)
    module = spec.family.build_module(spec)
    load_weights(module, state, path, spec)
    return module.eval(), path


def _build_with_decoder_overlay(spec: ModelSpec, checkpoint=None):
    """Bundled LiteMedSAM + the fine-tuned decoder weights (shipped, or ``checkpoint``: a weights
    file or output folder of `napari-sam-mis finetune`); returns (module, decoder weights path)."""
    base = bundled_litemedsam_path()
    module = spec.family.build_module(spec)
    load_weights(module, load_state_dict(base, spec.name), base, spec)
    overlay = resolve_weights_path(checkpoint) if checkpoint else overlay_path(spec)
    apply_decoder_weights(module, overlay, spec.name)
    return module.eval(), overlay


def overlay_path(spec: ModelSpec) -> Path:
    """Where a model's own decoder weights are: shipped with the package, or a tuned model's file."""
    return SHIPPED_DIR / spec.decoder_overlay  # an absolute path (a tuned model) stays itself

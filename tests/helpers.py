"""Where the real test data lies (../shared/data beside the checkout), skipping when it is missing,
and a small SAM built from segment_anything's real modules."""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLEEN_CT = DATA / "msd_spleen_crop" / "spleen2_ct.nii.gz"
SPLEEN_LABEL = DATA / "msd_spleen_crop" / "spleen2_label.nii.gz"
LESION_9 = DATA / "deeplesion_medsam2" / "CT_Lesion_000009_03_01_036-048.npz"
LESION_10 = DATA / "deeplesion_medsam2" / "CT_Lesion_000010_01_01_078-090.npz"
SAMMED2D = DATA / "sammed2d_demo"
ABDOMEN_MR = DATA / "totalseg_mr_example" / "example_mr_sm.nii.gz"
ABDOMEN_MR_LABEL = DATA / "totalseg_mr_example" / "example_seg_mr.nii.gz"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test data missing: {path.name}")
    return path


def tiny_sam(decoder_depth: int = 1):
    """A small randomly initialised SAM (real segment_anything modules) for the 1024-input path."""
    from functools import partial

    import torch
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    torch.manual_seed(0)
    enc = ImageEncoderViT(img_size=1024, patch_size=16, embed_dim=32, depth=1, num_heads=1, out_chans=256,
                          norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), window_size=14, global_attn_indexes=())
    prompt_encoder = PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024), mask_in_chans=16)
    transformer = TwoWayTransformer(depth=decoder_depth, embedding_dim=256, mlp_dim=64, num_heads=2)
    dec = MaskDecoder(num_multimask_outputs=3, transformer=transformer, transformer_dim=256, iou_head_depth=1,
                      iou_head_hidden_dim=32)
    return Sam(enc, prompt_encoder, dec).eval()


class _RunsCode:
    """Unpickling it creates ``marker``: what a malicious checkpoint would do (run code on load)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def malicious_checkpoint(path: Path, marker: Path, wrap=lambda payload: {"model": payload}) -> Path:
    """A torch file whose unpickling would create ``marker``; ``wrap`` shapes it like a real one."""
    import torch

    torch.save(wrap({"weight": _RunsCode(marker)}), str(path))
    return path

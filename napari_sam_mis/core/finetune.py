"""Click training for LiteMedSAM by self-distillation: the image encoder stays frozen, the prompt
encoder and mask decoder learn to turn clicks into the masks the model draws from boxes.

1. ``read_sources``: labelled images (NIfTI/DICOM + labels, CVPR24 npz, PNG + masks) -> objects.
2. ``build_train_set``: every labelled slice is windowed as the annotation session shows it
   (``AnnotationSession.display_slice``), optionally mirrored, encoded once by the frozen encoder;
   every connected piece of every label becomes one object with a target = blend of its ground
   truth and the frozen model's own mask for the object's box (when the two agree).
3. ``train``: interactive-style steps: each batch gets one prompt scenario (one click, a few
   positive/negative clicks, or a box), then 0-2 corrective clicks placed in the biggest error of
   the current prediction, optionally with the previous logits as mask prompt. Loss = BCE + Dice
   on the 256x256 low-res logits (minimum over the three masks for a lone click) + MSE of the
   predicted IoU. Checkpoints hold optimizer and RNG state, so ``resume`` continues exactly.

Output folder: ``litemedsam_clicks.pt`` (fp16 prompt encoder + mask decoder, see
``decoder_weights``), ``recipe.json``, ``checkpoint.pt`` and ``train_set_cache.npz``.
"""
from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import InputError, SamMisError
from .decoder_weights import WEIGHTS_NAME, save_decoder_weights

BASE_MODEL = "litemedsam"
CHECKPOINT_NAME = "checkpoint.pt"
RECIPE_NAME = "recipe.json"
CACHE_NAME = "train_set_cache.npz"
_RASTER = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_LABEL_WORDS = ("seg", "label", "mask", "gt")


@dataclass
class Recipe:
    """Everything that decides the trained weights (stored with them)."""

    steps: int = 600
    batch: int = 8
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: int = 20  # linear warm-up steps, then constant learning rate
    seed: int = 0
    gt_weight: float = 0.5  # target = gt_weight * GT + (1 - gt_weight) * frozen model's box mask ...
    teacher_min_dice: float = 0.8  # ... where that box mask has at least this Dice with GT, else GT alone
    min_area: int = 16  # objects smaller than this (pixels of the 256x256 model frame) are skipped
    flip: bool = False  # also train on left-right mirrored slices (doubles the encoding time)
    slice_stride: int = 1  # use every k-th labelled slice of a volume
    scenario_weights: tuple = (0.4, 0.35, 0.25)  # one click / several clicks / box
    max_corrections: int = 2  # corrective clicks per sample: 0..max_corrections
    iou_weight: float = 1.0
    checkpoint_every: int = 50

    def check(self) -> None:
        for name in ("steps", "batch", "checkpoint_every", "slice_stride"):
            if int(getattr(self, name)) < 1:
                raise SamMisError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise SamMisError(f"--lr must be positive, got {self.lr}")
        if not 0.0 <= self.gt_weight <= 1.0:
            raise SamMisError(f"gt_weight must lie in 0..1, got {self.gt_weight}")


@dataclass
class Progress:
    stage: str  # "read", "embed", "teacher", "train", "done", "stopped"
    done: int
    total: int
    message: str = ""
    loss: float | None = None
    dice: float | None = None


ProgressCallback = Callable[[Progress], "bool | None"]  # returning False stops training (after a checkpoint)


# -- sources --------------------------------------------------------------------------------------
@dataclass
class LabelledImage:
    """One image with its objects: a label array (z, y, x) and/or extra per-slice binary masks."""

    name: str
    volume: object  # core.volume.Volume
    labels: np.ndarray | None = None
    masks: list = field(default_factory=list)  # (z, (y, x) bool) pairs
    files: list = field(default_factory=list)  # files it was read from (for the cache signature)

    def slice_masks(self) -> dict[int, list[np.ndarray]]:
        out: dict[int, list[np.ndarray]] = {}
        if self.labels is not None:
            for z in np.flatnonzero(self.labels.reshape(self.labels.shape[0], -1).any(axis=1)):
                plane = self.labels[z]
                out[int(z)] = [plane == v for v in np.unique(plane) if v != 0]
        for z, mask in self.masks:
            out.setdefault(int(z), []).append(np.asarray(mask, bool))
        return out


def _labels_for(image_path: Path, label_path: Path, volume) -> np.ndarray:
    from ..io import read_labels
    from ..io.raster import read_mask_raster, read_npz_labels

    name = label_path.name.lower()
    if name.endswith(".npz"):
        return read_npz_labels(label_path, volume.shape)
    if name.endswith(_RASTER):
        return read_mask_raster(label_path, volume.shape[1:])
    return read_labels(label_path, volume).array


def read_pair(image, labels) -> LabelledImage:
    from ..io import read_volume

    image, labels = Path(image), Path(labels)
    volume = read_volume(image)
    return LabelledImage(f"{image.name}:{labels.name}", volume, _labels_for(image, labels, volume), files=[image, labels])


def _read_sammed2d_folder(folder: Path) -> list[LabelledImage]:
    """SAM-Med2D layout: images/<stem>.png with masks/<stem>_<organ>_<n>.png, one object per mask."""
    from ..io import read_volume
    from ..io.raster import read_mask_raster

    out = []
    for image in sorted((folder / "images").iterdir()):
        if not image.name.lower().endswith(_RASTER):
            continue
        volume = read_volume(image)
        mask_files = sorted((folder / "masks").glob(image.stem + "_*"))
        masks = [(0, read_mask_raster(m, volume.shape[1:])[0] > 0) for m in mask_files]
        if masks:
            out.append(LabelledImage(image.name, volume, None, masks, files=[image, *mask_files]))
    if not out:
        raise InputError(folder, "images/ and masks/ hold no image with masks named <image>_<organ>_<n>.png")
    return out


def _read_paired_folder(folder: Path) -> list[LabelledImage]:
    """A folder of images (NIfTI files, DICOM sub-folders) and label NIfTI files (names with
    seg/label/mask/gt): each label file is paired with the one image whose grid it fits."""
    from ..io import read_volume

    entries = sorted(folder.iterdir())
    label_files = [p for p in entries if p.is_file() and p.name.lower().endswith((".nii", ".nii.gz"))
                   and any(w in p.name.lower() for w in _LABEL_WORDS)]
    images = [p for p in entries if p not in label_files and (p.is_dir() or p.name.lower().endswith((".nii", ".nii.gz")))]
    if not label_files:
        raise InputError(folder, "no label NIfTI files found (names containing seg/label/mask/gt); "
                                 "pass IMAGE:LABELS pairs instead")
    volumes = {p: read_volume(p) for p in images}
    out = []
    for lab in label_files:
        fits = []
        for img, vol in volumes.items():
            try:
                fits.append((img, vol, _labels_for(img, lab, vol)))
            except InputError:
                continue
        if len(fits) != 1:
            raise InputError(lab, f"fits the grid of {len(fits)} images in {folder} (need exactly one); "
                                  "pass IMAGE:LABELS pairs instead")
        img, vol, arr = fits[0]
        out.append(LabelledImage(f"{img.name}:{lab.name}", vol, arr, files=[img, lab]))
    return out


def _split_pair(item: str):
    """'IMAGE:LABELS' -> (IMAGE, LABELS) when both exist (tries every ':' so drive letters survive)."""
    for i, ch in enumerate(item):
        if ch == ":" and Path(item[:i]).exists() and Path(item[i + 1:]).exists():
            return Path(item[:i]), Path(item[i + 1:])
    return None


def read_sources(items) -> list[LabelledImage]:
    """``--data`` items: IMAGE:LABELS pairs, CVPR24 .npz files (imgs + gts), SAM-Med2D style folders
    (images/ + masks/) or folders of images with matching label NIfTI files."""
    out: list[LabelledImage] = []
    for item in items:
        item = str(item)
        pair = _split_pair(item)
        if pair:
            out.append(read_pair(*pair))
            continue
        p = Path(item)
        if not p.exists():
            raise InputError(p, "no such file or folder (a --data item is a path or IMAGE:LABELS)")
        if p.is_file() and p.name.lower().endswith(".npz"):
            out.append(read_pair(p, p))
        elif p.is_dir() and (p / "images").is_dir() and (p / "masks").is_dir():
            out.extend(_read_sammed2d_folder(p))
        elif p.is_dir():
            out.extend(_read_paired_folder(p))
        else:
            raise InputError(p, "needs its labels: pass IMAGE:LABELS (NIfTI, DICOM folder + SEG, PNG + mask)")
    if not out:
        raise SamMisError("no training data given")
    return out


# -- training set ----------------------------------------------------------------------------------
@dataclass
class TrainSet:
    """Objects in the 256x256 model frame over slices encoded once by the frozen image encoder."""

    features: np.ndarray  # (S, 256, 64, 64) float16 image embeddings
    slice_of: np.ndarray  # (N,) index into features for each object
    masks: np.ndarray  # (N, 256, 256) bool ground truth
    targets: np.ndarray  # (N, 256, 256) uint8 soft target * 255 (GT blended with the box mask)
    boxes: np.ndarray  # (N, 4) float32 x0 y0 x1 y1 tight box in the model frame
    slice_names: list  # "source z [mirrored]" per slice

    def __len__(self) -> int:
        return len(self.slice_of)


def _to_model_frame(mask: np.ndarray, geom, size: int) -> np.ndarray:
    import cv2

    h, w = geom.resized
    small = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5
    out = np.zeros((size, size), bool)
    out[:h, :w] = small
    return out


def _pieces(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    lab, n = ndimage.label(mask)
    if n == 0:
        return []
    areas = np.bincount(lab.ravel())[1:]
    return [lab == i + 1 for i in np.flatnonzero(areas >= min_area)]


def _tight_box(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], np.float32)


def _signature(sources: list[LabelledImage], engine, recipe: Recipe) -> dict:
    files = []
    for src in sources:
        for f in src.files:
            f = Path(f)
            stats = [p.stat() for p in ([f] if f.is_file() else sorted(f.rglob("*")))]
            files.append([str(f.resolve()), sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)])
    return {"files": files, "weights_sha256": engine.weights_sha256, "flip": recipe.flip, "slice_stride": recipe.slice_stride,
            "min_area": recipe.min_area, "gt_weight": recipe.gt_weight, "teacher_min_dice": recipe.teacher_min_dice}


def _report(progress, stage, done, total, message="", **kw):
    return progress(Progress(stage, done, total, message, **kw)) if progress else None


def build_train_set(sources: list[LabelledImage], engine, recipe: Recipe, cache: Path | None = None,
                    progress: ProgressCallback | None = None, encode_batch: int = 4) -> TrainSet:
    """Window, encode (frozen encoder, once) and cut every source into model-frame objects."""
    import torch

    from .session import AnnotationSession

    if engine.spec.family != "litemedsam":
        raise SamMisError(f"click training works on LiteMedSAM; got model {engine.name!r}")
    sig = _signature(sources, engine, recipe)
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            if json.loads(str(data["signature"])) == sig:
                _report(progress, "read", 1, 1, f"reusing encoded training slices from {cache}")
                return TrainSet(data["features"], data["slice_of"], np.unpackbits(data["masks"], axis=-1).astype(bool),
                                data["targets"], data["boxes"], list(data["slice_names"]))
    size = engine.input_size
    inputs, geoms, names, obj_slice, obj_masks = [], [], [], [], []
    for src in sources:
        session = AnnotationSession(src.volume, engine)
        for z, masks in sorted(src.slice_masks().items())[::recipe.slice_stride]:
            display = session.display_slice(z)
            for mirrored in (False, True) if recipe.flip else (False,):
                img = display[:, ::-1] if mirrored else display
                x, geom = engine.preprocess(np.ascontiguousarray(img))
                pieces = []
                for m in masks:
                    m = m[:, ::-1] if mirrored else m
                    pieces += _pieces(_to_model_frame(m, geom, size), recipe.min_area)
                if not pieces:
                    continue
                obj_slice += [len(inputs)] * len(pieces)
                obj_masks += pieces
                inputs.append(x)
                names.append(f"{src.name} z={z}{' mirrored' if mirrored else ''}")
    if not obj_masks:
        raise SamMisError(f"the training data hold no object of at least {recipe.min_area} model-frame pixels")
    features = np.zeros((len(inputs), 256, 64, 64), np.float16)
    for i in range(0, len(inputs), encode_batch):
        feats = engine.encode(np.stack(inputs[i:i + encode_batch]))
        features[i:i + len(feats)] = feats.float().cpu().numpy()
        _report(progress, "embed", min(i + encode_batch, len(inputs)), len(inputs), "encoding training slices")
    slice_of = np.asarray(obj_slice, np.int32)
    masks = np.stack(obj_masks)
    boxes = np.stack([_tight_box(m) for m in masks])
    targets = np.zeros(masks.shape, np.uint8)
    for s in range(len(inputs)):
        idx = np.flatnonzero(slice_of == s)
        feats = torch.from_numpy(features[s:s + 1].astype(np.float32)).to(engine.device)
        low, _ = engine.decode_raw(feats, boxes=torch.from_numpy(boxes[idx]).to(engine.device))
        prob = torch.sigmoid(low[:, 0].float()).cpu().numpy()
        for j, k in enumerate(idx):
            gt = masks[k]
            teacher = prob[j] > 0.5
            agree = 2.0 * (teacher & gt).sum() / max(1, teacher.sum() + gt.sum())
            w = recipe.gt_weight if agree >= recipe.teacher_min_dice else 1.0
            targets[k] = np.round((w * gt + (1.0 - w) * prob[j]) * 255.0).astype(np.uint8)
        _report(progress, "teacher", s + 1, len(inputs), "box masks of the frozen model")
    train_set = TrainSet(features, slice_of, masks, targets, boxes, names)
    if cache is not None:
        from ..io.atomic import atomic_path

        with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, signature=json.dumps(sig), features=features, slice_of=slice_of,
                     masks=np.packbits(masks, axis=-1), targets=targets, boxes=boxes, slice_names=np.array(names))
    return train_set


# -- simulated prompts ---------------------------------------------------------------------------------
def _inner_distance(mask: np.ndarray) -> np.ndarray:
    return ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]


def _sample_in(region: np.ndarray, rng, weights: np.ndarray | None = None) -> tuple[float, float]:
    """A random (x, y) inside ``region`` (model frame), optionally weighted, with sub-pixel jitter."""
    w = (weights if weights is not None else region.astype(np.float64)).ravel()
    flat = int(rng.choice(w.size, p=w / w.sum()))
    r, c = divmod(flat, region.shape[1])
    jitter = rng.uniform(-0.5, 0.5, 2)
    return float(c + jitter[0]), float(r + jitter[1])


def positive_click(mask: np.ndarray, rng) -> tuple[float, float]:
    """Half the time near the middle of the object (weight = squared distance to its edge), else anywhere in it."""
    if rng.random() < 0.5:
        return _sample_in(mask, rng, _inner_distance(mask) ** 2)
    return _sample_in(mask, rng)


def negative_click(mask: np.ndarray, rng) -> tuple[float, float]:
    """Outside the object, 3 to 5..20 px from it (anywhere outside if that band is empty)."""
    width = int(rng.integers(5, 21))
    band = ndimage.binary_dilation(mask, iterations=width) & ~ndimage.binary_dilation(mask, iterations=2)
    if not band.any():
        band = ~mask
    return _sample_in(band, rng)


def corrective_click(pred: np.ndarray, gt: np.ndarray, rng) -> tuple[tuple[float, float], int]:
    """The click a user would add: in the middle of the larger error (missed -> positive, extra -> negative)."""
    missed, extra = gt & ~pred, pred & ~gt
    if not missed.any() and not extra.any():
        return positive_click(gt, rng), 1
    region, label = (missed, 1) if missed.sum() >= extra.sum() else (extra, 0)
    dist = _inner_distance(region)
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return (float(c), float(r)), label


def jittered_box(box: np.ndarray, rng, size: int) -> np.ndarray:
    w, h = box[2] - box[0] + 1, box[3] - box[1] + 1
    shift = rng.uniform(-1, 1, 4) * (np.array([w, h, w, h]) * 0.05 + 1.0)
    out = np.clip(box + shift, 0, size - 1).astype(np.float32)
    return np.array([min(out[0], out[2]), min(out[1], out[3]), max(out[0], out[2]), max(out[1], out[3])], np.float32)


# -- training ------------------------------------------------------------------------------------
def _decoder_pass(pe, md, feats, coords, labels, boxes, mask_in, multimask: bool):
    sparse, dense = pe(points=(coords, labels) if coords is not None else None, boxes=boxes, masks=mask_in)
    return md(image_embeddings=feats, image_pe=pe.get_dense_pe(), sparse_prompt_embeddings=sparse,
              dense_prompt_embeddings=dense, multimask_output=multimask)


def _losses(logits, iou_pred, target, iou_weight: float):
    """BCE + Dice per (sample, mask); the best mask per sample counts; IoU head learns the real IoU."""
    import torch
    import torch.nn.functional as F

    t = target.expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, t, reduction="none").mean(dim=(-2, -1))
    p = torch.sigmoid(logits)
    dice = 1.0 - (2.0 * (p * t).sum(dim=(-2, -1)) + 1.0) / (p.sum(dim=(-2, -1)) + t.sum(dim=(-2, -1)) + 1.0)
    per_mask = bce + dice
    with torch.no_grad():
        pred, tb = logits > 0, t > 0.5
        inter = (pred & tb).sum(dim=(-2, -1)).float()
        union = (pred | tb).sum(dim=(-2, -1)).float()
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        hard_dice = 2 * inter / ((pred.sum(dim=(-2, -1)) + tb.sum(dim=(-2, -1))).float().clamp(min=1))
    best = per_mask.min(dim=1)
    loss = best.values.mean() + iou_weight * F.mse_loss(iou_pred, iou)
    chosen_dice = hard_dice.gather(1, best.indices[:, None]).mean()
    return loss, float(chosen_dice)


def _lr_at(step: int, recipe: Recipe) -> float:
    return recipe.lr * min(1.0, (step + 1) / max(1, recipe.warmup))


def _rng_state(rng) -> str:
    return json.dumps(rng.bit_generator.state)


def train_step(pe, md, optimizer, train_set: TrainSet, recipe: Recipe, rng, size: int = 256):
    """One batch: sample objects and a prompt scenario, add corrective clicks, one optimizer step."""
    import torch

    idx = rng.integers(0, len(train_set), recipe.batch)
    kind = ("point", "points", "box")[int(rng.choice(3, p=np.asarray(recipe.scenario_weights) / np.sum(recipe.scenario_weights)))]
    n_corr = int(rng.integers(0, recipe.max_corrections + 1)) if rng.random() < 0.5 else 0
    use_mask_prompt = bool(rng.random() < 0.5)
    dev = next(md.parameters()).device
    gts = train_set.masks[idx]
    feats = torch.from_numpy(train_set.features[train_set.slice_of[idx]].astype(np.float32)).to(dev)
    target = torch.from_numpy(train_set.targets[idx].astype(np.float32) / 255.0)[:, None].to(dev)

    coords = [[] for _ in idx]
    labels = [[] for _ in idx]
    boxes = None
    if kind == "point":
        for i, gt in enumerate(gts):
            coords[i].append(positive_click(gt, rng))
            labels[i].append(1)
    elif kind == "points":
        n_pos, n_neg = int(rng.integers(2, 6)), int(rng.integers(0, 3))
        for i, gt in enumerate(gts):
            coords[i] += [positive_click(gt, rng) for _ in range(n_pos)] + [negative_click(gt, rng) for _ in range(n_neg)]
            labels[i] += [1] * n_pos + [0] * n_neg
    else:
        boxes = torch.from_numpy(np.stack([jittered_box(train_set.boxes[k], rng, size) for k in idx])).to(dev)

    def tensors():
        if not coords[0]:
            return None, None
        return torch.tensor(coords, dtype=torch.float32, device=dev), torch.tensor(labels, dtype=torch.float32, device=dev)

    mask_in = None
    for c in range(n_corr):
        multimask = kind == "point" and c == 0
        with torch.no_grad():
            low, iou = _decoder_pass(pe, md, feats, *tensors(), boxes, mask_in, multimask)
        low = low[torch.arange(len(idx), device=dev), iou.argmax(dim=1)][:, None]
        pred = (low[:, 0] > 0).cpu().numpy()
        for i, gt in enumerate(gts):
            xy, lab = corrective_click(pred[i], gt, rng)
            coords[i].append(xy)
            labels[i].append(lab)
        mask_in = low if use_mask_prompt else None
    multimask = kind == "point" and n_corr == 0
    low, iou = _decoder_pass(pe, md, feats, *tensors(), boxes, mask_in, multimask)
    loss, dice = _losses(low, iou, target, recipe.iou_weight)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
    optimizer.step()
    return loss.item(), dice


def _save_checkpoint(path: Path, step: int, pe, md, optimizer, rng, recipe: Recipe, data_sig: str, history) -> None:
    import torch

    from ..io.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"step": step, "prompt_encoder": pe.state_dict(), "mask_decoder": md.state_dict(),
                    "optimizer": optimizer.state_dict(), "numpy_rng": _rng_state(rng), "torch_rng": torch.get_rng_state(),
                    "recipe": json.dumps(_recipe_key(recipe)), "data": data_sig, "history": history}, str(tmp))


def _recipe_key(recipe: Recipe) -> dict:
    """The recipe fields a resumed run must share with the checkpoint (steps may grow)."""
    d = asdict(recipe)
    d.pop("steps")
    d.pop("checkpoint_every")
    d["scenario_weights"] = list(d["scenario_weights"])
    return d


def train(train_set: TrainSet, engine, recipe: Recipe, out_dir, resume: bool = False,
          progress: ProgressCallback | None = None) -> dict:
    """Fine-tune a copy of ``engine``'s prompt encoder + mask decoder; returns the run summary.

    Writes ``checkpoint.pt`` every ``recipe.checkpoint_every`` steps and, when all steps are done,
    the weights file and ``recipe.json``. ``progress`` returning False stops after a checkpoint.
    """
    import torch

    recipe.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_NAME
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    module = copy.deepcopy(engine.module)
    pe, md = module.prompt_encoder, module.mask_decoder
    for p in module.image_encoder.parameters():
        p.requires_grad_(False)
    params = list(pe.parameters()) + list(md.parameters())
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    data_sig = f"{len(train_set)} objects on {len(train_set.features)} slices: " + ";".join(train_set.slice_names)
    start = 0
    if resume:
        if not ckpt_path.is_file():
            raise SamMisError(f"--resume: no checkpoint {ckpt_path} to continue from")
        ckpt = torch.load(str(ckpt_path), map_location="cpu", weights_only=True)
        if json.loads(ckpt["recipe"]) != _recipe_key(recipe):
            raise SamMisError(f"--resume: {ckpt_path} was made with another recipe {ckpt['recipe']}; "
                              "use the same options (only --steps may change) or a new --out")
        if ckpt["data"] != data_sig:
            raise SamMisError(f"--resume: {ckpt_path} was made on other training data; use the same --data or a new --out")
        pe.load_state_dict(ckpt["prompt_encoder"])
        md.load_state_dict(ckpt["mask_decoder"])
        optimizer.load_state_dict(ckpt["optimizer"])
        rng.bit_generator.state = json.loads(ckpt["numpy_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        start = int(ckpt["step"])
    pe.train()
    md.train()
    t0 = time.perf_counter()
    history = list(ckpt.get("history", [])) if resume else []  # (loss, train Dice) per step
    for step in range(start, recipe.steps):
        for g in optimizer.param_groups:
            g["lr"] = _lr_at(step, recipe)
        loss, dice = train_step(pe, md, optimizer, train_set, recipe, rng, engine.input_size)
        history.append((loss, dice))
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            _save_checkpoint(ckpt_path, done, pe, md, optimizer, rng, recipe, data_sig, history)
        if _report(progress, "train", done, recipe.steps, f"lr {_lr_at(step, recipe):.2e}", loss=loss, dice=dice) is False:
            if done % recipe.checkpoint_every and done != recipe.steps:
                _save_checkpoint(ckpt_path, done, pe, md, optimizer, rng, recipe, data_sig, history)
            _report(progress, "stopped", done, recipe.steps, f"checkpoint {ckpt_path}")
            return {"stopped_at": done, "checkpoint": str(ckpt_path)}
    summary = {
        "base_model": BASE_MODEL, "base_weights_sha256": engine.weights_sha256, "recipe": asdict(recipe),
        "steps_done": recipe.steps, "resumed_from": start, "train_seconds_this_run": round(time.perf_counter() - t0, 1),
        "objects": len(train_set), "slices": len(train_set.features),
        "sources": sorted({n.split(" z=")[0] for n in train_set.slice_names}),
        "loss_per_25_steps": [round(float(np.mean([h[0] for h in history[i:i + 25]])), 4) for i in range(0, len(history), 25)],
        "train_dice_per_25_steps": [round(float(np.mean([h[1] for h in history[i:i + 25]])), 4) for i in range(0, len(history), 25)],
        "torch": str(torch.__version__), "threads": torch.get_num_threads(),
    }
    module.eval()
    weights = save_decoder_weights(module, out / WEIGHTS_NAME, BASE_MODEL, summary)
    (out / RECIPE_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    summary["weights"] = str(weights)
    _report(progress, "done", recipe.steps, recipe.steps, f"wrote {weights}")
    return summary


def finetune(data, out_dir, recipe: Recipe | None = None, resume: bool = False, device: str = "cpu",
             progress: ProgressCallback | None = None) -> dict:
    """Read ``data`` items, build (or reuse) the encoded training set in ``out_dir``, train."""
    from .engine import SamEngine

    recipe = recipe or Recipe()
    recipe.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources = read_sources(data)
    _report(progress, "read", len(sources), len(sources), f"{len(sources)} labelled images")
    engine = SamEngine.load(BASE_MODEL, device=device)
    train_set = build_train_set(sources, engine, recipe, out / CACHE_NAME, progress)
    _report(progress, "read", len(train_set), len(train_set),
            f"{len(train_set)} objects on {len(train_set.features)} slices")
    return train(train_set, engine, recipe, out, resume, progress)

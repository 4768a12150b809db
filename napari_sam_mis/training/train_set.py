"""The training set of click training: every labelled slice windowed as the annotation session
shows it, optionally mirrored, encoded once by the frozen encoder; every connected piece of every
label one object, with a target blending its ground truth and the frozen model's own mask for the
object's box (when the two agree). Cached in the output folder, keyed by its inputs."""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_sam_mis.annotate.geometry import mask_box
from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.embeddings.store import volume_hash
from napari_sam_mis.errors import SamMisError
from napari_sam_mis.io.atomic import atomic_path
from napari_sam_mis.training.recipe import ProgressCallback, Recipe, report
from napari_sam_mis.training.sources import LabelledImage

ZOOM_OUT = 0.5  # the "zoom_out" variant's scale


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


def _zoomed_out(image: np.ndarray, masks: list[np.ndarray], factor: float = ZOOM_OUT):
    """The slice shrunk by ``factor`` in the middle of a canvas of its size filled with its
    border's median (objects become small, as small tumours and vessels are), and its masks."""
    import cv2

    h, w = image.shape[:2]
    sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
    r0, c0 = (h - sh) // 2, (w - sw) // 2
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    canvas = np.empty_like(image)
    canvas[...] = np.median(border, axis=0)
    canvas[r0:r0 + sh, c0:c0 + sw] = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    return canvas, [_resized_mask(m, (sh, sw), (h, w), (r0, c0)) for m in masks]


VIEWS = {  # one per recipe.VARIANTS
    "zoom_out": _zoomed_out,
    "invert": lambda image, masks: (255 - image, masks),  # display values 0..255: another contrast
}


def _variants(display: np.ndarray, masks: list[np.ndarray], recipe: Recipe):
    """(name, image, masks) of the slice as shown, mirrored if asked, and each asked-for variant of those."""
    views = [("", display, masks)]
    if recipe.flip:
        views.append((" mirrored", display[:, ::-1], [m[:, ::-1] for m in masks]))
    base = list(views)
    for name in recipe.variants:
        views += [(f"{tag} {name}", *VIEWS[name](np.ascontiguousarray(img), ms)) for tag, img, ms in base]
    return views


def _resized_mask(mask: np.ndarray, size_hw, canvas_hw, at=(0, 0)) -> np.ndarray:
    """``mask`` resized to ``size_hw`` (area-averaged, >= half kept) on an empty canvas at ``at``."""
    import cv2

    (h, w), (r0, c0) = size_hw, at
    out = np.zeros(canvas_hw, bool)
    out[r0:r0 + h, c0:c0 + w] = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5
    return out


def _to_model_frame(mask: np.ndarray, geom, size: int) -> np.ndarray:
    return _resized_mask(mask, geom.resized, (size, size))


def _pieces(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    lab, n = ndimage.label(mask)
    if n == 0:
        return []
    areas = np.bincount(lab.ravel())[1:]
    return [lab == i + 1 for i in np.flatnonzero(areas >= min_area)]


def _tight_box(mask: np.ndarray) -> np.ndarray:
    """x0 y0 x1 y1 (the model frame's order) of a non-empty mask."""
    r0, c0, r1, c1 = mask_box(mask)
    return np.array([c0, r0, c1, r1], np.float32)


def _signature(sources: list[LabelledImage], engine, recipe: Recipe) -> dict:
    files = []
    for src in sources:
        for f in src.files:
            f = Path(f)
            stats = [p.stat() for p in ([f] if f.is_file() else sorted(f.rglob("*")))]
            files.append([str(f.resolve()), sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)])
    # the objects as given (labels may be edited in memory, e.g. held-out slices cleared), and the
    # image itself when it was not read from a file
    content = [[volume_hash(src.labels) if src.labels is not None else "",
                *(f"{z}:{volume_hash(np.asarray(m))}" for z, m in src.masks),
                "" if src.files else volume_hash(src.volume.array)] for src in sources]
    return {"files": files, "content": content, "weights_sha256": engine.weights_sha256, "flip": recipe.flip,
            "variants": list(recipe.variants), "slice_stride": recipe.slice_stride, "min_area": recipe.min_area,
            "gt_weight": recipe.gt_weight, "teacher_min_dice": recipe.teacher_min_dice}


def _read_cache(cache: Path, signature: dict) -> TrainSet | None:
    """The cached training set when it was built from the same inputs; a damaged cache is rebuilt."""
    try:
        with np.load(cache, allow_pickle=False) as data:
            if json.loads(str(data["signature"])) != signature:
                return None
            return TrainSet(data["features"], data["slice_of"], np.unpackbits(data["masks"], axis=-1).astype(bool),
                            data["targets"], data["boxes"], list(data["slice_names"]))
    except Exception as exc:  # numpy raises many kinds for a damaged npz
        warnings.warn(f"training cache {cache} is damaged ({exc}); encoding the training slices again", stacklevel=3)
        return None


def build_train_set(sources: list[LabelledImage], engine, recipe: Recipe, cache: Path | None = None,
                    progress: ProgressCallback | None = None, encode_batch: int = 4) -> TrainSet:
    """Window, encode (frozen encoder, once) and cut every source into model-frame objects."""
    import torch


    if not engine.spec.family.click_trainable:
        raise SamMisError(f"click training works on LiteMedSAM; got model {engine.name!r}")
    sig = _signature(sources, engine, recipe)
    if cache is not None and cache.is_file():
        cached = _read_cache(cache, sig)
        if cached is not None:
            report(progress, "read", 1, 1, f"reusing encoded training slices from {cache}")
            return cached
    size = engine.input_size
    inputs, names, obj_slice, obj_masks = [], [], [], []
    for src in sources:
        session = AnnotationSession(src.volume, engine)
        for z, masks in sorted(src.slice_masks().items())[::recipe.slice_stride]:
            for tag, img, view_masks in _variants(session.display_slice(z), masks, recipe):
                x, geom = engine.preprocess(np.ascontiguousarray(img))
                pieces = []
                for m in view_masks:
                    pieces += _pieces(_to_model_frame(m, geom, size), recipe.min_area)
                if not pieces:
                    continue
                obj_slice += [len(inputs)] * len(pieces)
                obj_masks += pieces
                inputs.append(x)
                names.append(f"{src.name} z={z}{tag}")
    if not obj_masks:
        raise SamMisError(f"the training data hold no object of at least {recipe.min_area} model-frame pixels")
    features = np.zeros((len(inputs), 256, 64, 64), np.float16)
    for i in range(0, len(inputs), encode_batch):
        feats = engine.encode(np.stack(inputs[i:i + encode_batch]))
        features[i:i + len(feats)] = feats.float().cpu().numpy()
        report(progress, "embed", min(i + encode_batch, len(inputs)), len(inputs), "encoding training slices")
    slice_of = np.asarray(obj_slice, np.int32)
    masks = np.stack(obj_masks)
    boxes = np.stack([_tight_box(m) for m in masks])
    targets = np.zeros(masks.shape, np.uint8)
    for s in range(len(inputs)):
        idx = np.flatnonzero(slice_of == s)
        feats = torch.from_numpy(features[s:s + 1].astype(np.float32)).to(engine.device)
        low, _ = engine.decode(feats, boxes=torch.from_numpy(boxes[idx]).to(engine.device))
        prob = torch.sigmoid(low[:, 0].float()).cpu().numpy()
        for j, k in enumerate(idx):
            gt = masks[k]
            teacher = prob[j] > 0.5
            agree = 2.0 * (teacher & gt).sum() / max(1, teacher.sum() + gt.sum())
            w = recipe.gt_weight if agree >= recipe.teacher_min_dice else 1.0
            targets[k] = np.round((w * gt + (1.0 - w) * prob[j]) * 255.0).astype(np.uint8)
        report(progress, "teacher", s + 1, len(inputs), "box masks of the frozen model")
    train_set = TrainSet(features, slice_of, masks, targets, boxes, names)
    if cache is not None:

        with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, signature=json.dumps(sig), features=features, slice_of=slice_of,
                     masks=np.packbits(masks, axis=-1), targets=targets, boxes=boxes, slice_names=np.array(names))
    return train_set

"""The training loop of click training: interactive-style steps on the prompt encoder and mask
decoder (image encoder frozen), with checkpoints that hold optimizer and RNG state, so that a
resumed run continues exactly."""
from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from napari_sam_mis.errors import SamMisError
from napari_sam_mis.io.atomic import atomic_path
from napari_sam_mis.model.build import overlay_path
from napari_sam_mis.model.decoder_weights import WEIGHTS_NAME, apply_decoder_weights, save_decoder_weights
from napari_sam_mis.model.registry import get_spec
from napari_sam_mis.model.weights import load_failure
from napari_sam_mis.training.clicks import corrective_click_xy, jittered_box, negative_click, positive_click
from napari_sam_mis.training.recipe import BASE_MODEL, ProgressCallback, Recipe, report
from napari_sam_mis.training.train_set import TrainSet

CHECKPOINT_NAME = "checkpoint.pt"
RECIPE_NAME = "recipe.json"


def _decoder_pass(prompt_encoder, mask_decoder, feats, coords, labels, boxes, mask_in, multimask: bool):
    sparse, dense = prompt_encoder(points=(coords, labels) if coords is not None else None, boxes=boxes, masks=mask_in)
    return mask_decoder(image_embeddings=feats, image_pe=prompt_encoder.get_dense_pe(), sparse_prompt_embeddings=sparse,
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


def _start_from(module, name: str) -> None:
    """Lay the start model's tuned prompt encoder + decoder over the base model's copy."""
    spec = get_spec(name)
    if spec.decoder_overlay:
        apply_decoder_weights(module, overlay_path(spec), name)


def _lr_at(step: int, recipe: Recipe) -> float:
    return recipe.lr * min(1.0, (step + 1) / max(1, recipe.warmup))


def _rng_state(rng) -> str:
    return json.dumps(rng.bit_generator.state)


def train_step(prompt_encoder, mask_decoder, optimizer, train_set: TrainSet, recipe: Recipe, rng, size: int = 256):
    """One batch: sample objects and a prompt scenario, add corrective clicks, one optimizer step."""
    import torch

    idx = rng.integers(0, len(train_set), recipe.batch)
    kind = ("point", "points", "box")[int(rng.choice(3, p=np.asarray(recipe.scenario_weights) / np.sum(recipe.scenario_weights)))]
    n_corr = int(rng.integers(0, recipe.max_corrections + 1)) if rng.random() < 0.5 else 0
    use_mask_prompt = bool(rng.random() < 0.5)
    dev = next(mask_decoder.parameters()).device
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
            low, iou = _decoder_pass(prompt_encoder, mask_decoder, feats, *tensors(), boxes, mask_in, multimask)
        low = low[torch.arange(len(idx), device=dev), iou.argmax(dim=1)][:, None]
        pred = (low[:, 0] > 0).cpu().numpy()
        for i, gt in enumerate(gts):
            xy, lab = corrective_click_xy(pred[i], gt, rng)
            coords[i].append(xy)
            labels[i].append(lab)
        mask_in = low if use_mask_prompt else None
    multimask = kind == "point" and n_corr == 0
    low, iou = _decoder_pass(prompt_encoder, mask_decoder, feats, *tensors(), boxes, mask_in, multimask)
    loss, dice = _losses(low, iou, target, recipe.iou_weight)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
    optimizer.step()
    return loss.item(), dice


def _save_checkpoint(path: Path, step: int, prompt_encoder, mask_decoder, optimizer, rng, recipe: Recipe, data_sig: str, history) -> None:
    import torch


    with atomic_path(path) as tmp:
        torch.save({"step": step, "prompt_encoder": prompt_encoder.state_dict(), "mask_decoder": mask_decoder.state_dict(),
                    "optimizer": optimizer.state_dict(), "numpy_rng": _rng_state(rng), "torch_rng": torch.get_rng_state(),
                    "recipe": json.dumps(_recipe_key(recipe)), "data": data_sig, "history": history}, str(tmp))


CHECKPOINT_KEYS = ("step", "prompt_encoder", "mask_decoder", "optimizer", "numpy_rng", "torch_rng", "recipe", "data")


def _read_checkpoint(path: Path) -> dict:
    """A training checkpoint of ``_save_checkpoint`` (tensors only), or an error naming the file."""
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise SamMisError(f"--resume: {path} is not a readable training checkpoint ({load_failure(exc)})") from exc
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise SamMisError(f"--resume: {path} is not a napari-sam-mis training checkpoint (no {', '.join(missing)})")
    return ckpt


def _recipe_key(recipe: Recipe) -> dict:
    """The recipe fields a resumed run must share with the checkpoint (steps may grow)."""
    d = asdict(recipe)
    d.pop("steps")
    d.pop("checkpoint_every")
    d["scenario_weights"] = list(d["scenario_weights"])
    d["variants"] = list(d["variants"])
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
    _start_from(module, recipe.start_from)
    prompt_encoder, mask_decoder = module.prompt_encoder, module.mask_decoder
    for p in module.image_encoder.parameters():
        p.requires_grad_(False)
    params = list(prompt_encoder.parameters()) + list(mask_decoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    data_sig = f"{len(train_set)} objects on {len(train_set.features)} slices: " + ";".join(train_set.slice_names)
    start = 0
    if resume:
        if not ckpt_path.is_file():
            raise SamMisError(f"--resume: no checkpoint {ckpt_path} to continue from")
        ckpt = _read_checkpoint(ckpt_path)
        if json.loads(ckpt["recipe"]) != _recipe_key(recipe):
            raise SamMisError(f"--resume: {ckpt_path} was made with another recipe {ckpt['recipe']}; "
                              "use the same options (only --steps may change) or a new --out")
        if ckpt["data"] != data_sig:
            raise SamMisError(f"--resume: {ckpt_path} was made on other training data; use the same --data or a new --out")
        try:
            prompt_encoder.load_state_dict(ckpt["prompt_encoder"])
            mask_decoder.load_state_dict(ckpt["mask_decoder"])
            optimizer.load_state_dict(ckpt["optimizer"])
            rng.bit_generator.state = json.loads(ckpt["numpy_rng"])
            torch.set_rng_state(ckpt["torch_rng"])
        except (RuntimeError, ValueError, TypeError, KeyError) as exc:
            raise SamMisError(f"--resume: {ckpt_path} does not fit this model ({str(exc).splitlines()[0]})") from exc
        start = int(ckpt["step"])
    prompt_encoder.train()
    mask_decoder.train()
    t0 = time.perf_counter()
    history = list(ckpt.get("history", [])) if resume else []  # (loss, train Dice) per step
    for step in range(start, recipe.steps):
        for g in optimizer.param_groups:
            g["lr"] = _lr_at(step, recipe)
        loss, dice = train_step(prompt_encoder, mask_decoder, optimizer, train_set, recipe, rng, engine.input_size)
        history.append((loss, dice))
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            _save_checkpoint(ckpt_path, done, prompt_encoder, mask_decoder, optimizer, rng, recipe, data_sig, history)
        if report(progress, "train", done, recipe.steps, f"lr {_lr_at(step, recipe):.2e}", loss=loss, dice=dice) is False:
            if done % recipe.checkpoint_every and done != recipe.steps:
                _save_checkpoint(ckpt_path, done, prompt_encoder, mask_decoder, optimizer, rng, recipe, data_sig, history)
            report(progress, "stopped", done, recipe.steps, f"checkpoint {ckpt_path}")
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
    report(progress, "done", recipe.steps, recipe.steps, f"wrote {weights}")
    return summary

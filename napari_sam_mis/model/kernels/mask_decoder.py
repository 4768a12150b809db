"""SAM's mask decoder (as used by LiteMedSAM) rewritten for prompt-to-mask latency, same weights.

The original runs four 4096-token projections per attention layer for every prompt. Here:
- the dense positional encoding, its projections by every attention's key and query weights, and
  the no-mask embedding are computed once per decoder;
- the first layer's image-side projections (token-to-image keys/values, image-to-token queries)
  do not depend on the prompt: they are computed once per slice and cached;
- every other image-side projection is re-associated around the few prompt tokens:
  ``softmax(q Wk (x + pe)^T)`` is computed as ``(q Wk) x^T + q (pe Wk^T)^T`` and ``A (x Wv^T)``
  as ``(A x) Wv^T`` (rows of A sum to 1), so a 4096 x 256 x 128 product becomes 4096 x 256 x 8n
  with n ~ 7 prompt tokens; biases that only shift a softmax row are dropped;
- residual additions ride in the products (addmm), and the positional encoding is never added
  to the image tokens: on a CPU such 4096 x 256 passes cost as much as the products;
- the final attention runs for the returned tokens only (IoU and the chosen mask tokens);
- the transposed convolutions are matrix products on token-major data, only the mask tokens that
  are returned are multiplied out to 256 x 256 logits, and for a box prompt only around the box.
Equal to the original up to float rounding (re-association) in the logits it computes, see
tests/test_performance.py. The one approximation is opt-in, for click candidates: ``window``
leaves out the image tokens far from the boxes.
"""
from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict

import torch
import torch.nn.functional as F

_gelu_ = torch.ops.aten.gelu_
# A box prompt's logits are computed over its box plus this many grid cells (and a quarter of the
# box side) on every side, and set to OUTSIDE_LOGIT beyond: the upscaling is per pixel, so inside
# they are the full decode's, and a box-prompted mask does not reach that far past its box. How
# the margin was chosen (logits fed back as a mask prompt see where the -20s begin) is in
# docs/performance.md.
MARGIN_CELLS = 2.0
OUTSIDE_LOGIT = -20.0
# Click candidates are decoded over the image tokens of their boxes' extent plus this many cells
# and this share of the extent's side on every side (``box_candidates``; docs/clicks.md).
WINDOW_MARGIN_CELLS = 6.0
WINDOW_SIDE_SHARE = 0.25


class _Heads:
    """An Attention module's weights split per head, for re-associated products."""

    def __init__(self, attn):
        self.h = attn.num_heads
        self.dh = attn.internal_dim // attn.num_heads
        self.q_w, self.q_b = attn.q_proj.weight.detach(), attn.q_proj.bias.detach()
        self.k_w, self.k_b = attn.k_proj.weight.detach(), attn.k_proj.bias.detach()
        self.v_w, self.v_b = attn.v_proj.weight.detach(), attn.v_proj.bias.detach()
        self.o_w, self.o_b = attn.out_proj.weight.detach(), attn.out_proj.bias.detach()
        self.scale = 1.0 / math.sqrt(self.dh)
        self.pe_k = self.pe_q = None  # the positional encoding's projections (h, dh, 4096): set_pe

    def set_pe(self, pe_tokens):
        """Project the dense positional encoding (4096, C) once: the image tokens' keys (and
        image-to-token queries) are projections of (x + pe), and pe's share is the same for
        every prompt and slice."""
        self.pe_k = self.heads_kt(F.linear(pe_tokens, self.k_w))
        self.pe_q = self.heads_kt(F.linear(pe_tokens, self.q_w))

    def split(self, x):  # (B, n, h*dh) -> (B, h, n, dh)
        b, n, _ = x.shape
        return x.view(b, n, self.h, self.dh).transpose(1, 2)

    def heads_kt(self, x):  # (4096, h*dh) -> (h, dh, 4096), contiguous for the products
        return x.view(-1, self.h, self.dh).permute(1, 2, 0).contiguous()

    def heads_v(self, x):  # (4096, h*dh) -> (h, 4096, dh), contiguous
        return x.view(-1, self.h, self.dh).transpose(0, 1).contiguous()

    def tokens(self, q, k, v):
        """The original attention among the few prompt tokens (self-attention)."""
        q = self.split(F.linear(q, self.q_w, self.q_b))
        k = self.split(F.linear(k, self.k_w, self.k_b))
        v = self.split(F.linear(v, self.v_w, self.v_b))
        a = torch.softmax((q @ k.transpose(-1, -2)) * self.scale, dim=-1)
        out = (a @ v).transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)
        return F.linear(out, self.o_w, self.o_b)

    def token_to_image(self, q_in, keys, k_proj=None, v_proj=None, pe_k=None):
        """Prompt tokens (B, n, C) attend to image tokens (B|1, 4096, C), whose keys are taken
        from the image tokens plus the positional encoding.

        With cached projections (k_proj: (h, dh, 4096), v_proj: (h, 4096, dh), ``heads_kt`` and
        ``heads_v``) it is the original computation; without, it is re-associated so the image
        tokens are never projected.
        """
        b, n, _ = q_in.shape
        q = self.split(F.linear(q_in, self.q_w, self.q_b))  # (B, h, n, dh)
        if k_proj is not None:
            a = torch.softmax((q @ k_proj) * self.scale, dim=-1)  # (B, h, n, 4096)
            out = (a @ v_proj).transpose(1, 2).reshape(b, n, -1)
            return F.linear(out, self.o_w, self.o_b)
        q = q * self.scale
        wk = self.k_w.view(self.h, self.dh, -1)  # (h, dh, C)
        qk = (q @ wk).reshape(b, self.h * n, -1)  # (B, h*n, C); q . k_bias is constant along the softmax row
        # (q Wk)(x + pe)^T = (q Wk) x^T + q (pe Wk^T)^T, the latter from the projected pe
        scores = (q @ (self.pe_k if pe_k is None else pe_k)).view(b, self.h * n, -1)  # (B, h*n, 4096)
        scores.baddbmm_(qk, keys.expand(b, -1, -1).transpose(-1, -2))
        a = torch.softmax(scores, dim=-1)
        ax = (a @ keys).view(b, self.h, n, -1)  # (B, h, n, C)
        wv = self.v_w.view(self.h, self.dh, -1)
        out = ax @ wv.transpose(-1, -2) + self.v_b.view(self.h, 1, self.dh)  # rows of a sum to 1
        return F.linear(out.transpose(1, 2).reshape(b, n, -1), self.o_w, self.o_b)

    def image_to_token(self, keys, q_tok, v_tok, q_proj=None, residual=None, in_place=False, pe_q=None):
        """Image tokens (B|1, 4096, C), plus the positional encoding as queries, attend to prompt
        tokens (B, n, C); returns (B, 4096, C), plus ``residual`` (B|1, 4096, C) if given,
        accumulated into it if ``in_place`` (no copy)."""
        b, n, _ = q_tok.shape
        k = self.split(F.linear(q_tok, self.k_w, self.k_b))  # (B, h, n, dh)
        v = self.split(F.linear(v_tok, self.v_w, self.v_b))
        # Scores are laid out (B, h, n, 4096) so the softmax over the n prompt tokens runs along
        # a long contiguous axis.
        if q_proj is not None:  # cached (h, dh, 4096), ``heads_kt``
            scores = (k @ q_proj) * self.scale  # (B, h, n, 4096)
        else:
            # k ((x + pe) Wq^T + bq)^T = (k Wq) x^T + k (pe Wq^T)^T + k bq, per head
            k = k * self.scale
            wq = self.q_w.view(self.h, self.dh, -1)  # (h, dh, C)
            m = (k @ wq).reshape(b, self.h * n, -1)  # (B, h*n, C)
            scores = k @ (self.pe_q if pe_q is None else pe_q) + k @ self.q_b.view(self.h, self.dh, 1)  # (B, h, n, 4096)
            scores.view(b, self.h * n, -1).baddbmm_(m, keys.expand(b, -1, -1).transpose(-1, -2))
        a = torch.softmax(scores, dim=2).view(b, self.h * n, -1)  # (B, h*n, 4096)
        # out_proj(concat_h a_h v_h) = sum_h a_h (v_h Wo_h^T): one (4096 x h*n) @ (h*n x C) product
        wo = self.o_w.view(-1, self.h, self.dh).permute(1, 2, 0)  # (h, dh, C)
        # each head's weights over the n tokens sum to 1, so the h heads' sum to h: adding bo / h
        # to every row of u adds bo to every output row
        u = (v @ wo).reshape(b, self.h * n, -1) + self.o_b / self.h  # (B, h*n, C)
        if residual is None:
            return torch.bmm(a.transpose(1, 2), u)
        if b == 1:  # 2-D products: torch's baddbmm copies its (4096, C) input, even in place
            if in_place:
                return residual[0].addmm_(a[0].t(), u[0])[None]
            return torch.addmm(residual[0], a[0].t(), u[0])[None]
        if in_place:
            return residual.baddbmm_(a.transpose(1, 2), u)
        return torch.baddbmm(residual.expand(b, -1, -1), a.transpose(1, 2), u)


class FastMaskDecoder:
    """Prompt encoder + mask decoder of one SAM-family model, with per-slice caching."""

    def __init__(self, prompt_encoder, mask_decoder, cache_slices: int = 8):
        self.prompt_encoder = prompt_encoder
        self.md = mask_decoder
        tr = mask_decoder.transformer
        self.layers = list(tr.layers)
        self.heads = [
            (_Heads(l.self_attn), _Heads(l.cross_attn_token_to_image), _Heads(l.cross_attn_image_to_token))
            for l in self.layers
        ]
        self.final = _Heads(tr.final_attn_token_to_image)
        self.norm_final = tr.norm_final_attn
        with torch.inference_mode():
            dense_pe = prompt_encoder.get_dense_pe()  # (1, C, 64, 64), the same for every slice
        self.grid = tuple(dense_pe.shape[-2:])
        self.pe_tokens = dense_pe.flatten(2).transpose(1, 2)[0].contiguous()  # (4096, C)
        for heads in (*(h for layer in self.heads for h in layer[1:]), self.final):
            heads.set_pe(self.pe_tokens)
        self.no_mask = prompt_encoder.no_mask_embed.weight.detach().reshape(-1)  # (C,)
        up = mask_decoder.output_upscaling  # ConvT(C, C/4, 2, 2), LayerNorm2d, GELU, ConvT(C/4, C/8, 2, 2), GELU
        self.up1_w, self.up1_b = self._convt_as_matrix(up[0])
        self.up_norm = up[1]
        self.up2_w, self.up2_b = self._convt_as_matrix(up[3])
        self._cache: OrderedDict[int, tuple] = OrderedDict()
        self._cache_slices = cache_slices
        self._lock = threading.Lock()

    @staticmethod
    def _convt_as_matrix(convt):
        """ConvTranspose2d(k=2, s=2) weight (Cin, Cout, 2, 2) -> (4*Cout, Cin) with rows (a, b, o)."""
        w = convt.weight.detach()
        cin, cout = w.shape[:2]
        return w.permute(2, 3, 1, 0).reshape(4 * cout, cin).contiguous(), convt.bias.detach().repeat(4)

    # -- per-slice, prompt-independent part ---------------------------------------------------
    def _image_side(self, keys0):
        """Layer-0 projections of the image tokens that no prompt changes."""
        _, t2i, i2t = self.heads[0]
        keys_pe = keys0 + self.pe_tokens
        return (
            t2i.heads_kt(F.linear(keys_pe, t2i.k_w, t2i.k_b)),
            t2i.heads_v(F.linear(keys0, t2i.v_w, t2i.v_b)),
            i2t.heads_kt(F.linear(keys_pe, i2t.q_w, i2t.q_b)),
        )

    def slice_cache(self, features):
        """(keys0, layer-0 projections) of one slice's features (1, C, 64, 64), cached per slice."""
        key = id(features)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0]() is features:
                self._cache.move_to_end(key)
                return hit[1]
        # (4096, C) row-major: the sum would keep the transposed view's column-major layout, and
        # every later pass over it would stride through memory (4-10x slower)
        keys0 = (features[0].flatten(1).transpose(0, 1) + self.no_mask).contiguous()
        value = (keys0, *self._image_side(keys0))
        with self._lock:
            self._cache[key] = (weakref.ref(features), value)
            while len(self._cache) > self._cache_slices:
                self._cache.popitem(last=False)
        return value

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- prompt-dependent part ----------------------------------------------------------------
    def __call__(self, features, coords=None, labels=None, boxes=None, mask_logits=None, multimask=False,
                 window=None):
        """Same contract as ``SamEngine.decode``: -> (low-res logits (B, C, 256, 256), iou (B, C)).

        ``window`` (row0, row1, col0, col1) in grid cells, for prompts without a mask prompt on one
        slice: the image tokens outside it are left out altogether (an approximation, see
        ``box_candidates``), and logits beyond it are ``OUTSIDE_LOGIT``."""
        with torch.inference_mode():
            points = (coords, labels) if coords is not None else None
            sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=mask_logits)
            b = sparse.shape[0]
            crop = None
            if mask_logits is None and features.shape[0] == 1:
                keys0, k0, v0, q0 = self.slice_cache(features)
                if window is not None:
                    crop = self._cropper(window)
                    keys0, k0, v0, q0 = crop(keys0, 0), crop(k0, 2), crop(v0, 1), crop(q0, 2)
                keys0 = keys0[None]
            else:
                feats = features.expand(b, -1, -1, -1) if features.shape[0] == 1 else features
                keys0 = (feats + dense).flatten(2).transpose(1, 2).contiguous()  # (B, 4096, C), row-major
                k0 = v0 = q0 = None  # per-prompt image tokens: the re-associated path below
            picks = list(range(1, self.md.num_mask_tokens)) if multimask else [0]
            queries, keys = self._transformer(self._tokens(sparse), keys0, (k0, v0, q0), [0, *(1 + i for i in picks)],
                                              crop)
            if crop is not None:
                return self._masks(queries, keys, picks, window)
            # a mask prompt can carry the mask past its box: then every logit is computed
            if boxes is None or mask_logits is not None or b != 1:
                return self._masks(queries, keys, picks)
            region = self.region(boxes, coords)
            return self._masks(queries, self._cropper(region)(keys, 1), picks, region)

    def _cropper(self, window):
        """-> crop(x, dim): the window's image tokens of x, whose axis ``dim`` runs over the grid."""
        top, bottom, left, right = window
        gh, gw = self.grid

        def crop(x, dim):
            grid = x.view(*x.shape[:dim], gh, gw, *x.shape[dim + 1 :])[(slice(None),) * dim + (slice(top, bottom), slice(left, right))]
            return grid.reshape(*x.shape[:dim], -1, *x.shape[dim + 1 :])

        return crop

    def box_candidates(self, features, boxes):
        """Candidate boxes (K, 4) on one slice (1, C, 64, 64), decoded in one call over a window of
        image tokens around them (``window``): the original decoder run on those tokens alone.
        An approximation (the tokens left out draw little attention from a box's tokens), close
        enough to choose among candidates, at a fraction of the cost: the K prompts' image tensors
        stay small. -> (K, 1, 256, 256), (K, 1)."""
        return self(features, boxes=boxes, window=self.window(boxes))

    def window(self, boxes):
        """Grid cells (row0, row1, col0, col1) around all boxes (K, 4): their extent plus
        ``WINDOW_MARGIN_CELLS`` and ``WINDOW_SIDE_SHARE`` of each side."""
        return self._cells_around(boxes.reshape(-1, 2), WINDOW_MARGIN_CELLS, WINDOW_SIDE_SHARE)

    def region(self, box, coords=None):
        """Grid cells (row0, row1, col0, col1) whose logits are computed for a box prompt (1, 4)
        (and its points (1, N, 2)): their extent plus ``MARGIN_CELLS`` and a quarter of each side."""
        xy = box.reshape(-1, 2) if coords is None else torch.cat([box.reshape(-1, 2), coords.reshape(-1, 2)])
        return self._cells_around(xy, MARGIN_CELLS, 0.25)

    def _cells_around(self, xy, margin: float, side_share: float):
        """Grid cells (row0, row1, col0, col1) of the extent of model-frame points xy (N, 2), plus
        ``margin`` cells and ``side_share`` of each side on every side, within the grid."""
        gh, gw = self.grid
        cell = self.prompt_encoder.input_image_size[0] / gh
        (x0, y0), (x1, y1) = (xy.amin(0) / cell).tolist(), (xy.amax(0) / cell).tolist()
        mr, mc = margin + (y1 - y0) * side_share, margin + (x1 - x0) * side_share
        return (max(0, math.floor(y0 - mr)), min(gh, math.ceil(y1 + mr)),
                max(0, math.floor(x0 - mc)), min(gw, math.ceil(x1 + mc)))

    def _tokens(self, sparse):
        """Output tokens (IoU, masks) followed by the prompt tokens: (B, n, C)."""
        md = self.md
        out_tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight], dim=0)
        return torch.cat([out_tokens.expand(sparse.shape[0], -1, -1), sparse], dim=1)

    def _transformer(self, tokens, keys, first_layer, returned, crop=None):
        """-> the queries at the ``returned`` token positions, and the image tokens. The final
        attention updates each token on its own, so it runs for those tokens only."""
        def pe(projected):  # the positional encoding's projection (h, dh, 4096) at the image tokens used
            return None if crop is None else crop(projected, 2)

        queries = tokens
        for i, (layer, (self_h, t2i, i2t)) in enumerate(zip(self.layers, self.heads)):
            if i == 0:  # skip_first_layer_pe
                queries = self_h.tokens(queries, queries, queries)
            else:
                q = queries + tokens
                queries = queries + self_h.tokens(q, q, queries)
            queries = layer.norm1(queries)
            q = queries + tokens
            cached = i == 0 and first_layer[0] is not None
            if cached:
                attn = t2i.token_to_image(q, None, first_layer[0], first_layer[1])
            else:
                attn = t2i.token_to_image(q, keys, pe_k=pe(t2i.pe_k))
            queries = layer.norm2(queries + attn)
            queries = layer.norm3(queries + layer.mlp(queries))
            q = queries + tokens
            # keys + attention in one product (the residual rides in it), then norm4
            # (after the first layer, keys are this call's own: accumulate into them)
            keys = layer.norm4(i2t.image_to_token(keys, q, queries, q_proj=first_layer[2] if cached else None,
                                                  residual=keys, in_place=i > 0,
                                                  pe_q=None if cached else pe(i2t.pe_q)))  # (B, 4096, C)
        queries, tokens = queries[:, returned], tokens[:, returned]
        attn = self.final.token_to_image(queries + tokens, keys, pe_k=pe(self.final.pe_k))
        queries = self.norm_final(queries + attn)
        return queries, keys

    def _masks(self, queries, keys, picks, region=None):
        """Low-res logits and predicted IoU of the mask tokens ``picks``, from the queries of the IoU
        token and those mask tokens; with ``region`` (row0, row1, col0, col1) in grid cells, ``keys``
        are the region's image tokens, and logits beyond it are ``OUTSIDE_LOGIT``."""
        md = self.md
        b = queries.shape[0]
        gh, gw = self.grid
        if region is not None:
            top, bottom, left, right = region
            gh, gw = bottom - top, right - left
        iou = md.iou_prediction_head(queries[:, 0])[:, picks]
        hyper = torch.stack([md.output_hypernetworks_mlps[i](queries[:, 1 + j]) for j, i in enumerate(picks)], dim=1)  # (B, k, C/8)
        # Both transposed convolutions (kernel 2, stride 2) are per-pixel matrix products, and
        # LayerNorm / GELU act per pixel: everything stays in (pixel, sub-pixel, channel) order ...
        c1 = self.up1_w.shape[0] // 4
        y = F.linear(keys, self.up1_w, self.up1_b).view(b, -1, c1)  # (B, 4096*4, C/4)
        y = _gelu_(F.layer_norm(y, (c1,), self.up_norm.weight, self.up_norm.bias, self.up_norm.eps))
        c2 = self.up2_w.shape[0] // 4
        z = _gelu_(F.linear(y, self.up2_w, self.up2_b)).view(b, -1, c2)  # (B, 4096*16, C/8)
        # ... and only the returned masks are multiplied out, then put in image order:
        # row = 4 i + 2 a1 + a2, column = 4 j + 2 b1 + b2.
        k = len(picks)
        m = (z @ hyper.transpose(1, 2)).view(b, gh, gw, 2, 2, 2, 2, k)
        m = m.permute(0, 7, 1, 3, 5, 2, 4, 6).reshape(b, k, 4 * gh, 4 * gw)
        if region is not None:
            full = m.new_full((b, k, 4 * self.grid[0], 4 * self.grid[1]), OUTSIDE_LOGIT)
            full[:, :, 4 * top : 4 * bottom, 4 * left : 4 * right] = m
            m = full
        return m, iou

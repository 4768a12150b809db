"""LiteMedSAM's TinyViT image encoder rewritten for inference speed, with the same weights.

Same arithmetic as the original module, laid out for the CPU:
- every Conv2d + BatchNorm pair folded into one convolution with a bias;
- activations kept channels-last (B, H, W, C) from start to end, so 1x1 convolutions are plain
  matrix products and the depthwise 3x3 convolutions run on a channels-last view (no copies);
- window attention with the learned position bias added in place, GELU in place;
- the qkv and output projections skip the zero padding that window partition adds: a padded
  token is LayerNorm(0) = beta, so its qkv is one constant vector, and padded outputs are cut
  before the output projection;
- the full-resolution first stage runs in bands of rows, so its activations stay in cache, and
  every block yields (``between``) after each band, so a waiting decoder never waits long.
Built from a loaded ``TinyViT``; the original module is left untouched.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_gelu_ = torch.ops.aten.gelu_  # in place: no new buffer for the largest activations


def _fold_conv_bn(conv_bn) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of the convolution equivalent to conv followed by eval-mode BatchNorm."""
    conv, bn = conv_bn.c, conv_bn.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.weight * scale[:, None, None, None]
    bias = bn.bias - bn.running_mean * scale
    return weight.detach().clone(), bias.detach().clone()


class _Pointwise(nn.Module):
    """A folded 1x1 Conv2d_BN applied to channels-last activations as a matrix product."""

    def __init__(self, conv_bn):
        super().__init__()
        w, b = _fold_conv_bn(conv_bn)
        self.weight = nn.Parameter(w[:, :, 0, 0].contiguous(), requires_grad=False)
        self.bias = nn.Parameter(b, requires_grad=False)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class _Depthwise(nn.Module):
    """A folded depthwise Conv2d_BN on (B, H, W, C) activations, returning (B, H', W', C)."""

    def __init__(self, conv_bn):
        super().__init__()
        w, b = _fold_conv_bn(conv_bn)
        self.weight = nn.Parameter(w, requires_grad=False)
        self.bias = nn.Parameter(b, requires_grad=False)
        self.stride = conv_bn.c.stride
        self.padding = conv_bn.c.padding
        self.groups = conv_bn.c.groups

    def forward(self, x):
        y = F.conv2d(x.permute(0, 3, 1, 2), self.weight, self.bias, self.stride, self.padding, 1, self.groups)
        return y.permute(0, 2, 3, 1)


# Rows per band in the full-resolution stage: its activations (256 x 256 x 256 floats) would
# not fit any cache and are allocated afresh by the OS on every call; bands of 32 rows do fit.
BAND_ROWS = 32


def _bands(n: int, step: int):
    return [(r, min(n, r + step)) for r in range(0, n, step)]


class _MBConv(nn.Module):
    """Inverted residual (1x1 expand, depthwise 3x3, 1x1 project), computed in row bands.

    A band of output rows needs one extra input row above and below for the depthwise conv;
    at the image border the conv's own zero padding applies, exactly as in the original.
    """

    def __init__(self, block):
        super().__init__()
        self.conv1 = _Pointwise(block.conv1)
        self.conv2 = _Depthwise(block.conv2)
        self.conv3 = _Pointwise(block.conv3)

    def _rows(self, x, r0: int, r1: int):
        a, b = max(r0 - 1, 0), min(r1 + 1, x.shape[1])
        h = _gelu_(self.conv1(x[:, a:b]))
        h = _gelu_(self.conv2(h)[:, r0 - a : r1 - a])
        return _gelu_(self.conv3(h).add_(x[:, r0:r1]))

    def forward(self, x, between=None):
        n = x.shape[1]
        if n <= BAND_ROWS:
            return self._rows(x, 0, n)
        out = torch.empty_like(x)
        for r0, r1 in _bands(n, BAND_ROWS):
            out[:, r0:r1] = self._rows(x, r0, r1)
            if between is not None:
                between()
        return out


class _PatchMerging(nn.Module):
    """1x1 conv, depthwise 3x3 (stride 2 except before the last stage), 1x1 conv; in row bands."""

    def __init__(self, merging):
        super().__init__()
        self.conv1 = _Pointwise(merging.conv1)
        self.conv2 = _Depthwise(merging.conv2)
        self.conv3 = _Pointwise(merging.conv3)

    def _whole(self, x):
        x = _gelu_(self.conv1(x))
        x = _gelu_(self.conv2(x))
        return self.conv3(x)

    def _rows(self, x, o0: int, o1: int):
        # Output row o reads input rows 2o-1 .. 2o+1: take rows 2*o0-1 .. 2*o1-1 and convolve
        # without row padding; only the first band needs the zero row above the image.
        a = max(2 * o0 - 1, 0)
        h = _gelu_(self.conv1(x[:, a : 2 * o1]))
        if o0 == 0:
            h = torch.cat([h.new_zeros(h.shape[0], 1, *h.shape[2:]), h], dim=1)
        c = self.conv2
        h = F.conv2d(h.permute(0, 3, 1, 2), c.weight, c.bias, c.stride, (0, c.padding[1]), 1, c.groups)
        return self.conv3(_gelu_(h.permute(0, 2, 3, 1)))

    def forward(self, x, between=None):
        n = x.shape[1]
        if n <= BAND_ROWS or self.conv2.stride != (2, 2) or n % 2:
            return self._whole(x)
        parts = []
        for o0, o1 in _bands(n // 2, BAND_ROWS // 2):
            parts.append(self._rows(x, o0, o1))
            if between is not None:
                between()
        return torch.cat(parts, dim=1)


class _WindowAttention(nn.Module):
    """TinyViT's Attention (LayerNorm, qkv, biased softmax attention, proj) over local windows."""

    def __init__(self, attn, window: int):
        super().__init__()
        self.norm = attn.norm
        self.qkv = attn.qkv
        self.proj = attn.proj
        self.heads = attn.num_heads
        self.key_dim = attn.key_dim
        self.d = attn.d
        self.window = window
        self.scale = attn.scale
        bias = attn.attention_biases[:, attn.attention_bias_idxs].detach().clone()
        self.register_buffer("bias", bias, persistent=False)  # (heads, N, N)

    def forward(self, x):
        """x (B, H, W, C) -> attention output (B, H, W, C) (before the residual add)."""
        b, h, w, _ = x.shape
        ws = self.window
        pad_b, pad_r = (-h) % ws, (-w) % ws
        qkv = self.qkv(self.norm(x))
        if pad_b or pad_r:
            # A zero-padded token normalises to beta, so its qkv is one constant vector.
            pad_value = self.qkv(self.norm.bias)
            full = pad_value.expand(b, h + pad_b, w + pad_r, -1).clone()
            full[:, :h, :w] = qkv
            qkv = full
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // ws, pw // ws
        qkv = qkv.view(b, nh, ws, nw, ws, self.heads, -1).permute(0, 1, 3, 5, 2, 4, 6)
        qkv = qkv.reshape(b * nh * nw, self.heads, ws * ws, -1)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.d], dim=-1)
        attn = torch.matmul(q, k.transpose(-1, -2)).mul_(self.scale).add_(self.bias)
        out = torch.matmul(attn.softmax(dim=-1), v)  # (b*nW, heads, N, d)
        out = out.view(b, nh, nw, self.heads, ws, ws, self.d).permute(0, 1, 4, 2, 5, 3, 6)
        out = out.reshape(b, ph, pw, self.heads * self.d)
        if pad_b or pad_r:
            out = out[:, :h, :w]
        return self.proj(out)


class _TinyViTBlock(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.attn = _WindowAttention(block.attn, block.window_size)
        self.local_conv = _Depthwise(block.local_conv)
        self.mlp_norm = block.mlp.norm
        self.fc1 = block.mlp.fc1
        self.fc2 = block.mlp.fc2

    def _mlp(self, x):
        return self.fc2(_gelu_(self.fc1(self.mlp_norm(x)))).add_(x)

    def forward(self, x, between=None):
        """In row bands (windows never straddle one) with ``between()`` after each, so that no step
        takes long; the MLP's bands also keep its 4x wider hidden layer in cache."""
        step = between or (lambda: None)
        n, ws = x.shape[1], self.attn.window
        rows = ws * max(1, BAND_ROWS // ws)
        attn = torch.empty_like(x)
        for r0, r1 in _bands(n, rows):
            attn[:, r0:r1] = self.attn(x[:, r0:r1])
            step()
        x = self.local_conv(attn.add_(x))
        step()
        out = torch.empty_like(x)
        for r0, r1 in _bands(n, BAND_ROWS):
            out[:, r0:r1] = self._mlp(x[:, r0:r1])
            step()
        return out


class FastTinyViT(nn.Module):
    """Drop-in for LiteMedSAM's ``image_encoder``: (B, 3, 256, 256) -> (B, 256, 64, 64)."""

    def __init__(self, encoder):
        super().__init__()
        seq = encoder.patch_embed.seq
        self.embed1 = _Pointwise(seq[0])
        self.embed2 = _Pointwise(seq[2])
        stages = []
        for layer in encoder.layers:
            blocks = [_MBConv(b) if hasattr(b, "conv1") else _TinyViTBlock(b) for b in layer.blocks]
            if layer.downsample is not None:
                blocks.append(_PatchMerging(layer.downsample))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        neck = encoder.neck
        self.neck_conv1 = neck[0]
        self.neck_norm1 = neck[1]
        self.neck_conv2 = neck[2]
        self.neck_norm2 = neck[3]

    @staticmethod
    def _layer_norm_channels(x, norm):
        return F.layer_norm(x, norm.weight.shape, norm.weight, norm.bias, norm.eps)

    def _embed(self, x):
        return self.embed2(_gelu_(self.embed1(x.permute(0, 2, 3, 1))))

    def _neck(self, x):
        x = F.linear(x, self.neck_conv1.weight[:, :, 0, 0])
        x = self._layer_norm_channels(x, self.neck_norm1)
        x = F.conv2d(x.permute(0, 3, 1, 2), self.neck_conv2.weight, None, 1, 1).permute(0, 2, 3, 1)
        x = self._layer_norm_channels(x, self.neck_norm2)
        return x.permute(0, 3, 1, 2).contiguous()

    def forward(self, x, between=None):
        """``between()``, if given, is called between steps of at most a few tens of ms (on two
        CPU cores): the place where a waiting decoder can go first."""
        x = self._embed(x)
        for stage in self.stages:
            for block in stage:
                x = block(x, between)
                if between is not None:
                    between()
        return self._neck(x)

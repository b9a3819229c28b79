"""How the model runs on the CPU: at inference each encoder convolution fused with
its LeakyReLU and the batch in cache-sized chunks; the dense layers' matrix products in
oneDNN where torch's own (MKL) takes a slower path. The same numbers to float rounding,
the same parameters (measured in docs/performance.md, benchmarks/bench_cpu_layers.py).
A GPU, autocast, ``torch.compile``, tracing and export see the plain layers."""

from __future__ import annotations

import math
import weakref
from typing import Any

import torch
from torch import nn

from zspace.core.device import onednn_matmul_faster

# oneDNN's convolution and matrix product with a pointwise post-op (inductor's; None
# where torch lacks them)
FUSED: Any = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)
MATMUL: Any = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
ONEDNN_LINEAR = MATMUL is not None and onednn_matmul_faster()
# The most bytes one activation of a chunk of images may take in ``flat_features``: small
# enough that a layer's input and output stay in the CPU's caches between layers
# (the best of 1-16 MiB for the 96x96 and 28x28 reference nets on a Zen 5 with 32 MiB
# of L3: 1.13-1.15x and 1.28-1.32x over one pass over batches of 512, 1.2x and 1.37x
# with the packed weights; docs/performance.md).
CHUNK_BYTES = 6 << 20
# oneDNN's weight reorder (the inductor's freezing pass uses it), and what it packed:
# convolution -> (input shape, the weight it was packed from, the packed weight)
REORDER = getattr(torch._C._nn, "mkldnn_reorder_conv2d_weight", None)
_PACKED: weakref.WeakKeyDictionary[nn.Conv2d, tuple] = weakref.WeakKeyDictionary()


def on_cpu(x: torch.Tensor) -> bool:
    """The fused op applies: on the CPU, eager, not under autocast (it takes the
    float32 weights as they are)."""
    cast = torch.is_autocast_enabled("cpu")
    traced = torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()
    return x.device.type == "cpu" and not cast and not traced


def conv_inputs(blocks: nn.Sequential, shape: tuple[int, ...]) -> list[tuple[nn.Conv2d, tuple]]:
    """Each of ``blocks``' convolutions with the shape of its input, for input of
    ``shape`` ((N,) C, H, W)."""
    *lead, height, width = shape
    out: list[tuple] = []
    for conv in (m for m in blocks.modules() if isinstance(m, nn.Conv2d)):
        out.append((conv, (*lead[:-1], conv.in_channels, height, width)))
        if conv.padding != "same":  # "same" (stride 1 only) keeps height and width
            p = (0, 0) if isinstance(conv.padding, str) else conv.padding  # "valid": 0
            k, s, d = conv.kernel_size, conv.stride, conv.dilation
            height = (height + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
            width = (width + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
        lead = [*lead[:-1], conv.out_channels]
    return [*out, (None, (*lead, height, width))]


def widest(blocks: nn.Sequential, shape: tuple[int, ...]) -> int:
    """Elements of the largest activation of one image of ``shape`` (C, H, W), input
    included, through ``blocks``' convolutions."""
    return max(math.prod(size) for _conv, size in conv_inputs(blocks, shape))


def flat_features(blocks: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``flatten(blocks(x), 1)`` for inference, in chunks of images whose activations
    fit in ``CHUNK_BYTES`` (each chunk through all layers while it is in cache), the
    weights packed once for all chunks: the same numbers as one pass over the batch."""
    per_image = widest(blocks, tuple(x.shape[1:])) * x.element_size()
    chunk = max(1, CHUNK_BYTES // per_image)
    shape = (min(chunk, len(x)), *x.shape[1:])
    weights = {conv: packed_weight(conv, size) for conv, size in conv_inputs(blocks, shape) if conv}
    first = fused_convs(blocks, x[:chunk], weights)
    if len(x) <= chunk:
        return torch.flatten(first, 1)
    flat = first.new_empty(len(x), first[0].numel())
    flat[:chunk].view_as(first).copy_(first)
    for start in range(chunk, len(x), chunk):
        h = fused_convs(blocks, x[start : start + chunk], weights)
        flat[start : start + len(h)].view_as(h).copy_(h)
    return flat


def packed_weight(conv: nn.Conv2d, shape: tuple[int, ...]) -> torch.Tensor:
    """``conv``'s weight reordered into oneDNN's blocked layout for inputs of ``shape``,
    which oneDNN otherwise redoes at every call (1.10x on the chunked encoder's
    convolutions), kept while the weight equals the copy it was packed from (a check
    that sees changes made through ``.data`` too)."""
    weight = conv.weight.detach()
    hit = _PACKED.get(conv)
    if hit is not None and hit[0] == shape and torch.equal(hit[1], weight):
        return hit[2]
    if REORDER is None or weight.dtype != torch.float32:
        return conv.weight
    geometry = conv.padding, conv.stride, conv.dilation, conv.groups
    packed = REORDER(weight.to_mkldnn(), *geometry, list(shape))
    _PACKED[conv] = (shape, weight.clone(), packed)
    return packed


def fused_convs(
    blocks: nn.Sequential, h: torch.Tensor, weights: dict[nn.Conv2d, torch.Tensor] | None = None
) -> torch.Tensor:
    """``blocks(h)`` for inference, each convolution + LeakyReLU as one oneDNN call (the
    activation a post-op, as TF fuses it): one pass less over each activation, the same
    numbers; those two layers' hooks do not fire. ``weights``: packed ones to use."""
    for block in blocks:
        conv, *rest = list(block.children())
        act = rest[0] if len(rest) == 1 else None
        if FUSED is None or not isinstance(act, nn.LeakyReLU) or not isinstance(conv, nn.Conv2d):
            h = block(h)
            continue
        weight = (weights or {}).get(conv, conv.weight)
        geometry = conv.padding, conv.stride, conv.dilation, conv.groups
        h = FUSED(h, weight, conv.bias, *geometry, "leaky_relu", [act.negative_slope], "")
    return h


def _product(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b.T (+ bias)`` in oneDNN (strided operands are read in place)."""
    return MATMUL(a, b, bias, "none", [], "")


class _OneDnnLinear(torch.autograd.Function):
    """``x @ weight.T + bias`` with all three products (forward, both gradients) in
    oneDNN, differentiated as ``F.linear`` is."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # type: ignore[no-untyped-def, override]
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _product(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def, override]
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()  # autograd may hand over broadcast (stride-0) gradients
        want_x, want_w, want_b = ctx.needs_input_grad
        grad_x = _product(grad, weight.t()) if want_x else None
        grad_w = _product(grad.t(), x.t()) if want_w else None
        grad_b = grad.sum(0) if want_b and ctx.has_bias else None
        return grad_x, grad_w, grad_b


def _rows(x: torch.Tensor) -> bool:
    """2-D with rows: oneDNN refuses an empty product (a DDP rank's share of a last batch)."""
    return x.dim() == 2 and x.shape[0] > 0 and x.shape[1] > 0


class Linear(nn.Linear):
    """``nn.Linear`` (the same parameters, state-dict keys and initialisation) whose
    products run in oneDNN on CPUs where that is faster (``ONEDNN_LINEAR``), for
    float32 2-D input with rows; elsewhere, and under autocast, compilation or
    tracing, the plain layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # on_cpu first: it says no to tracing, before the shape is read
        if ONEDNN_LINEAR and on_cpu(x) and x.dtype == torch.float32 and _rows(x):
            return _OneDnnLinear.apply(x, self.weight, self.bias)
        return super().forward(x)

"""How the model runs on the CPU: at inference each encoder convolution fused with
its LeakyReLU and the batch in cache-sized chunks; the dense layers' matrix products in
oneDNN where torch's own (MKL) takes a slower path. The same numbers to float rounding,
the same parameters (measured in docs/performance.md, benchmarks/bench_cpu_layers.py).
A GPU, autocast, ``torch.compile``, tracing and export see the plain layers."""

from __future__ import annotations

import math
import weakref
from typing import Any, NamedTuple

import torch
import torch.fx._symbolic_trace
from torch import nn
from torch.autograd import forward_ad

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
# oneDNN's weight reorder (the inductor's freezing pass uses it)
REORDER = getattr(torch._C._nn, "mkldnn_reorder_conv2d_weight", None)


class Packed(NamedTuple):
    """A convolution's weight in oneDNN's layout, for inputs of ``shape``, and the
    weight it was packed from (to see whether it is still that weight)."""

    shape: tuple[int, ...]
    source: torch.Tensor
    packed: torch.Tensor


# convolution -> its Packed weight; an entry goes with its module
_PACKED: weakref.WeakKeyDictionary[nn.Conv2d, Packed] = weakref.WeakKeyDictionary()


def on_cpu(x: torch.Tensor) -> bool:
    """zspace's oneDNN calls apply: on the CPU with oneDNN enabled, eager (not compiled,
    traced, scripted or under torch.func's transforms), not under autocast (they take
    the float32 weights as they are)."""
    cast = torch.is_autocast_enabled("cpu")
    traced = torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()
    transformed = torch._C._are_functorch_transforms_active() or fx_tracing()
    eager = not (cast or traced or transformed or forward_ad._current_level >= 0)
    return eager and bool(torch.backends.mkldnn.enabled) and x.device.type == "cpu"


def fx_tracing() -> bool:
    """Inside ``torch.fx.symbolic_trace``, where a tensor's device is a proxy."""
    symbolic = getattr(torch.fx._symbolic_trace, "is_fx_symbolic_tracing", None)
    return bool(symbolic and symbolic())


def conv_inputs(
    blocks: nn.Sequential, shape: tuple[int, ...]
) -> list[tuple[nn.Conv2d | None, tuple[int, ...]]]:
    """Each of ``blocks``' convolutions with the shape of its input, for input of
    ``shape`` ((N,) C, H, W), then (None, the output's shape)."""
    *lead, height, width = shape
    out: list[tuple[nn.Conv2d | None, tuple[int, ...]]] = []
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
    weights packed once for all chunks: the same numbers as one pass over the batch.
    In training mode one pass (BatchNorm's statistics are the whole batch's)."""
    per_image = widest(blocks, tuple(x.shape[1:])) * x.element_size()
    chunk = len(x) if blocks.training else max(1, CHUNK_BYTES // per_image)
    shape = (min(chunk, len(x)), *x.shape[1:])
    fusable = {conv for conv, _act in map(fusable_pair, blocks) if conv is not None}
    weights = {
        conv: packed_weight(conv, size)
        for conv, size in conv_inputs(blocks, shape)
        if conv in fusable
    }
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
    if (
        hit is not None
        and hit.shape == shape
        and hit.source.dtype == weight.dtype
        and torch.equal(hit.source, weight)
    ):
        return hit.packed
    if REORDER is None or weight.dtype != torch.float32:
        return conv.weight
    geometry = conv.padding, conv.stride, conv.dilation, conv.groups
    packed = REORDER(weight.to_mkldnn(), *geometry, list(shape))
    _PACKED[conv] = Packed(shape, weight.clone(), packed)
    return packed


def fusable_pair(block: nn.Module) -> tuple[nn.Conv2d | None, nn.LeakyReLU | None]:
    """(convolution, LeakyReLU) of a block that is exactly those two with numeric
    padding (oneDNN's fused call), else (None, None)."""
    children = list(block.children())
    if FUSED is None or len(children) != 2:
        return None, None
    conv, act = children
    if isinstance(conv, nn.Conv2d) and isinstance(act, nn.LeakyReLU):
        if not isinstance(conv.padding, str):
            return conv, act
    return None, None


def fused_convs(
    blocks: nn.Sequential, h: torch.Tensor, weights: dict[nn.Conv2d, torch.Tensor] | None = None
) -> torch.Tensor:
    """``blocks(h)`` for inference, each convolution + LeakyReLU as one oneDNN call (the
    activation a post-op, as TF fuses it): one pass less over each activation, the same
    numbers; those two layers' hooks do not fire. ``weights``: packed ones to use."""
    for block in blocks:
        conv, act = fusable_pair(block)
        if conv is None or act is None:
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
    oneDNN, differentiated as ``F.linear`` is. A backward that builds a graph
    (``create_graph``: a gradient penalty) takes torch's products, which have a
    derivative of their own; oneDNN's op has none."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # type: ignore[no-untyped-def, override]
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _product(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def, override]
        x, weight = ctx.saved_tensors
        want_x, want_w, want_b = ctx.needs_input_grad
        product = _product if not torch.is_grad_enabled() else (lambda a, b: a @ b.t())
        grad_x = product(grad, weight.t()) if want_x else None
        grad_w = product(grad.t(), x.t()) if want_w else None
        grad_b = grad.sum(0) if want_b and ctx.has_bias else None
        return grad_x, grad_w, grad_b


def _rows(x: torch.Tensor) -> bool:
    """2-D with rows: oneDNN refuses an empty product (a DDP rank's share of a last batch)."""
    return x.dim() == 2 and x.shape[0] > 0 and x.shape[1] > 0


class Linear(nn.Linear):
    """``nn.Linear`` (the same parameters, state-dict keys and initialisation) whose
    products run in oneDNN on CPUs where that is faster (``ONEDNN_LINEAR``), for
    float32 2-D input with rows under eager autograd (first and second order);
    elsewhere, under autocast, compilation, tracing, scripting, forward-mode AD or
    torch.func's transforms, the plain layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():  # TorchScript compiles only this branch
            return nn.functional.linear(x, self.weight, self.bias)
        return self._eager(x)

    @torch.jit.unused
    def _eager(self, x: torch.Tensor) -> torch.Tensor:
        # on_cpu first: it says no to tracing, before the shape is read
        if ONEDNN_LINEAR and on_cpu(x) and x.dtype == torch.float32 and _rows(x):
            return _OneDnnLinear.apply(x, self.weight, self.bias)
        return nn.functional.linear(x, self.weight, self.bias)

"""How the autoencoder's layers run on the CPU: other formulations of the same numbers
(same parameters and checkpoints), each measured in docs/performance.md
(benchmarks/bench_cpu_layers.py). A GPU,
``torch.compile`` and export see the plain layers."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# oneDNN's convolution with a pointwise post-op (inductor's; None where torch lacks it)
FUSED = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)


def on_cpu(x: torch.Tensor) -> bool:
    """These formulations apply: on the CPU, eager, in float32 (autocast casts only
    inside aten's own ops, not in a custom backward)."""
    cast = torch.is_autocast_enabled("cpu")
    return x.device.type == "cpu" and not cast and not torch.compiler.is_compiling()


def transposed(x, weight, bias, stride, padding, output_padding) -> torch.Tensor:
    """conv_transpose2d; a thin one (<= 4 output channels, stride 2+: the image layer)
    as a sub-pixel convolution, a stride-1 one to s*s times the channels and a pixel
    shuffle, which oneDNN runs 1.6x faster."""
    (s, s2), (cin, cout, k, k2), (p, p2), (op, op2) = stride, weight.shape, padding, output_padding
    if cout > 4 or s == 1 or (s, k, p, op) != (s2, k2, p2, op2):
        return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding)
    lead = (-p) % s  # zero taps so that the kernel splits into s x s phases of kb x kb
    w = F.pad(weight, (lead, (-(k + lead)) % s) * 2)
    kb = w.shape[-1] // s
    w = w.reshape(cin, cout, kb, s, kb, s).permute(0, 3, 5, 1, 2, 4)
    w = w.reshape(cin, s * s * cout, kb, kb).contiguous(memory_format=torch.channels_last)
    y = F.conv_transpose2d(x, w, None if bias is None else bias.repeat(s * s))
    n, _, hb, wb = y.shape
    ho, wo = ((d - 1) * s - 2 * p + k + op for d in x.shape[-2:])
    first = (p + lead) // s
    y = y.permute(0, 2, 3, 1).reshape(n, hb, wb, s, s, cout)
    y = y[:, first : first - (-ho // s), first : first - (-wo // s)].permute(0, 1, 3, 2, 4, 5)
    return y.reshape(n, y.shape[1] * s, y.shape[3] * s, cout)[:, :ho, :wo].permute(0, 3, 1, 2)


class _TransposedConv(torch.autograd.Function):
    """``transposed`` with the backward of the convolution it is the adjoint of (as TF's
    Conv2DTranspose): input gradient conv2d(grad, w), weight gradient that convolution's
    with input and output swapped; oneDNN runs them 1.1-1.6x faster."""

    @staticmethod
    def forward(ctx: Any, x, weight, bias, stride, padding, output_padding):  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.geometry = stride, padding, bias is not None
        y = transposed(x, weight, bias, stride, padding, output_padding)
        # a view (the sub-pixel shuffle) could not be modified in place by the activation
        return y.clone(memory_format=torch.channels_last) if y._is_view() else y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        stride, padding, has_bias = ctx.geometry
        dx = F.conv2d(grad, weight, None, stride, padding) if ctx.needs_input_grad[0] else None
        dw = torch.ops.aten.convolution_backward(
            x, grad, weight, None, stride, padding, (1, 1), False, (0, 0), 1, (False, True, False)
        )[1]
        return dx, dw, grad.sum((0, 2, 3)) if has_bias else None, None, None, None


class ConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if not on_cpu(x) or output_size is not None:
            return super().forward(x, output_size)
        args = x, self.weight, self.bias, self.stride, self.padding, self.output_padding
        return _TransposedConv.apply(*args) if torch.is_grad_enabled() else transposed(*args)


def fused_convs(blocks: nn.Sequential, h: torch.Tensor) -> torch.Tensor:
    """``blocks(h)`` for inference, each convolution + LeakyReLU as one oneDNN call (the
    activation a post-op, as TF fuses it): one pass less over each activation, the same
    numbers; those two layers' hooks do not fire."""
    for block in blocks:
        conv, *rest = list(block.children())
        act = rest[0] if len(rest) == 1 else None
        if FUSED is None or not isinstance(act, nn.LeakyReLU) or not isinstance(conv, nn.Conv2d):
            h = block(h)
            continue
        geometry = conv.padding, conv.stride, conv.dilation, conv.groups
        h = FUSED(h, conv.weight, conv.bias, *geometry, "leaky_relu", [act.negative_slope], "")
    return h

"""How the encoder runs on the CPU at inference: each convolution fused with its
LeakyReLU, the same numbers and parameters (measured in docs/performance.md,
benchmarks/bench_cpu_layers.py). A GPU, autocast, ``torch.compile`` and export see the
plain layers."""

from __future__ import annotations

import torch
from torch import nn

# oneDNN's convolution with a pointwise post-op (inductor's; None where torch lacks it)
FUSED = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)


def on_cpu(x: torch.Tensor) -> bool:
    """The fused op applies: on the CPU, eager, not under autocast (it takes the
    float32 weights as they are)."""
    cast = torch.is_autocast_enabled("cpu")
    return x.device.type == "cpu" and not cast and not torch.compiler.is_compiling()


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

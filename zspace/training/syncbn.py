"""Batch norm over the global batch when one batch is split across processes.

On CUDA this is PyTorch's own ``nn.SyncBatchNorm``. PyTorch refuses CPU tensors
there, so CPU (gloo) runs use ``GlooSyncBatchNorm``: the per-channel sum, sum of
squares and count of every process's part are summed with a differentiable
all-reduce (its backward all-reduces the gradients, as SyncBatchNorm's does), so
the statistics, the output and the gradients are those of one batch norm over the
whole global batch. Statistics are accumulated in float64, so they agree with a
one-process BatchNorm2d to float32 rounding. In eval mode both use the running
statistics and exchange nothing.
"""

from __future__ import annotations

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from zspace.training.distributed import Dist


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; the gradient of a sum is summed the same way."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone()
        torch_dist.all_reduce(out)
        return out

    backward = forward  # type: ignore[assignment]


class GlooSyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics cover every process's part of the batch."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and Dist.current().world_size > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        channels = x.shape[1]
        count = x.new_full((1,), x.numel() // max(channels, 1), dtype=torch.float64)
        local = torch.cat(
            (x.sum(dims, dtype=torch.float64), x.square().sum(dims, dtype=torch.float64), count)
        )
        total = _AllReduceSum.apply(local)
        n = total[-1].detach()
        mean = total[:channels] / n
        var = (total[channels : 2 * channels] / n - mean.square()).clamp_min(0.0)
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach(), float(n))
        shape = (1, channels) + (1,) * (x.dim() - 2)
        scale = torch.rsqrt(var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        y = (x - mean.to(x.dtype).view(shape)) * scale.to(x.dtype).view(shape)
        return y if self.bias is None else y + self.bias.to(x.dtype).view(shape)

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        # momentum None: a cumulative moving average, as in _BatchNorm
        factor = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)
        unbiased = var * (n / max(n - 1.0, 1.0))
        self.running_mean.mul_(1.0 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1.0 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``model`` made to normalise over the global batch, in place
    (the parameters and buffers are the same tensors, so an optimiser built on the
    model keeps working and ``state_dict`` keys do not change)."""
    if device.type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert(model)


def _convert(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, GlooSyncBatchNorm):
        out = GlooSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert(child))
    return out

"""Training tasks: what the model sees (input) and what it must produce (target).

Works on float NCHW batches in [0, 1] on whatever device they live, with a torch
generator so the corruption is seeded and drawn fresh for every epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from zspace.config import DataConfig

LUMA = (0.299, 0.587, 0.114)


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """Luma of an RGB batch, repeated over the channels so the model's input shape holds."""
    if x.shape[1] != 3:
        return x
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True).expand_as(x).contiguous(
        memory_format=torch.channels_last if x.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )


def make_input(
    target: torch.Tensor, cfg: DataConfig, generator: torch.Generator | None
) -> torch.Tensor:
    """The corrupted input for a clean target batch, according to ``cfg.task``."""
    if cfg.task == "reconstruct":
        return target
    if cfg.task == "recolor":
        return to_grey(target)
    x = target
    if cfg.noise_sigma > 0:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = (x + cfg.noise_sigma * noise).clamp_(0.0, 1.0)
    if cfg.drop_fraction > 0:
        keep = torch.rand(
            (x.shape[0], 1, *x.shape[2:]), generator=generator, device=x.device
        ) >= cfg.drop_fraction
        x = x * keep
    return x

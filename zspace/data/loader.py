"""Batches for training and encoding, read from a uint8 NHWC array.

The split is gathered once into a contiguous uint8 tensor (on the training device,
so on a GPU the whole set lives there); every batch is then one gather, one
uint8->float conversion and the task's corruption, with no per-epoch decoding.
The NHWC storage permuted to NCHW is already channels_last, the layout the conv
kernels prefer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from zspace.data.tasks import make_input

if TYPE_CHECKING:
    from zspace.config import DataConfig


def to_float_nchw(batch_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [0, 1], channels_last memory."""
    return batch_u8.permute(0, 3, 1, 2).float().mul_(1.0 / 255.0)


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """Independent, reproducible seeds per (seed, epoch, stream) without state to carry."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0])


class BatchLoader:
    """Iterate (input, target) float batches of one split, reshuffled per epoch."""

    def __init__(
        self,
        images: np.ndarray,
        index: np.ndarray,
        batch_size: int,
        data_cfg: DataConfig,
        *,
        device: torch.device | str = "cpu",
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        self.device = torch.device(device)
        subset = np.ascontiguousarray(images[np.asarray(index)])
        self.storage = torch.from_numpy(subset).to(self.device)
        self.batch_size = int(batch_size)
        self.data_cfg = data_cfg
        self.shuffle = shuffle
        self.seed = seed

    def __len__(self) -> int:
        n = self.storage.shape[0]
        return (n + self.batch_size - 1) // self.batch_size

    @property
    def count(self) -> int:
        return int(self.storage.shape[0])

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.storage.shape[0]
        if self.shuffle:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch, 0))
            order = torch.randperm(n, generator=g).to(self.device)
        else:
            order = None
        noise_gen = None
        if self.data_cfg.task == "denoise":
            noise_gen = torch.Generator(device=self.device)
            noise_gen.manual_seed(epoch_seed(self.seed, epoch, 1))
        for start in range(0, n, self.batch_size):
            if order is None:
                batch = self.storage[start : start + self.batch_size]
            else:
                batch = self.storage[order[start : start + self.batch_size]]
            target = to_float_nchw(batch)
            yield make_input(target, self.data_cfg, noise_gen), target

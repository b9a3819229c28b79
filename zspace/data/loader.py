"""Batches for training and encoding, read from a uint8 NHWC array (usually the cache).

Where the split lives:
- in memory on the training device when it fits (half the free RAM, or half the
  free GPU memory on CUDA): gathered once into a contiguous uint8 tensor, so on a
  GPU the whole set sits there and a batch is one gather, one uint8 -> float and
  the task's corruption drawn on the GPU;
- otherwise it stays memory-mapped and every batch is read from the file (indices
  sorted within the batch for locality), one batch ahead in a background thread.

No image is decoded per epoch. The NHWC storage permuted to NCHW is already
channels_last, the layout the conv kernels prefer.

Under DDP (``rank``/``world_size``) every process walks the same seeded
permutation in the same global batches and keeps only its part of each
(``part_bounds``); the denoising noise is drawn for the global batch and sliced
the same way, so the processes together see exactly the batches one process would.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import torch

from zspace.core.resources import device_memory
from zspace.data.tasks import NoiseBank, make_input

if TYPE_CHECKING:
    from zspace.config import DataConfig

UPLOAD_CHUNK = 1 << 28  # bytes copied at a time when filling the resident tensor


def to_float_nchw(batch_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [0, 1], channels_last memory."""
    return batch_u8.permute(0, 3, 1, 2).float().mul_(1.0 / 255.0)


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """Independent, reproducible seeds per (seed, epoch, stream) without state to carry."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0])


def part_bounds(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of a global batch of ``total`` that process ``rank`` of
    ``world_size`` takes: consecutive and as even as possible (the first
    ``total % world_size`` processes take one row more; a process may get none)."""
    base, extra = divmod(int(total), int(world_size))
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def memory_budget(device: torch.device) -> int:
    """Bytes a resident split may take: half of what is free on ``device``."""
    return device_memory(device)[0] // 2


class BatchLoader:
    """Iterate (input, target) float batches of one split, reshuffled per epoch.

    ``shuffle=False`` (validation, encoding) keeps the order and draws the same
    corruption every epoch, so validation losses compare across epochs.
    ``max_bytes`` overrides the memory budget (0 forces streaming from the array).
    ``rank``/``world_size``: yield only this process's part of every global batch
    of ``batch_size`` (``len()``, ``count`` and ``batch_size`` stay global).
    """

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
        max_bytes: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        self.device = torch.device(device)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.index = np.asarray(index, dtype=np.int64)
        h, w, c = (int(s) for s in images.shape[1:])
        self.shape = (h, w, c)
        self.batch_size = int(batch_size)
        self.data_cfg = data_cfg
        self.shuffle = shuffle
        self.seed = seed
        need = len(self.index) * int(np.prod(self.shape))
        budget = memory_budget(self.device) if max_bytes is None else max_bytes
        self.resident = need <= budget
        # the images on the device when resident, else the (memory-mapped) source, read per batch
        self.storage = self._gather_all(images) if self.resident else None
        self.images = None if self.resident else images

    def _gather_all(self, images: np.ndarray) -> torch.Tensor:
        n = len(self.index)
        out = torch.empty((n, *self.shape), dtype=torch.uint8, device=self.device)
        whole = n == len(images) and np.array_equal(self.index, np.arange(n))
        step = max(1, UPLOAD_CHUNK // max(1, int(np.prod(self.shape))))
        for s in range(0, n, step):
            # the whole file is read contiguously, as a read-only view of it
            chunk = images[s : s + step] if whole else images[self.index[s : s + step]]
            if out.device.type == "cpu":
                out[s : s + step].numpy()[...] = chunk  # straight into the tensor
            else:  # torch warns about read-only arrays (valid_fraction = 0): copy them
                host = chunk if chunk.flags.writeable else np.array(chunk)
                out[s : s + step].copy_(torch.from_numpy(np.ascontiguousarray(host)))
        return out

    def __len__(self) -> int:
        return (len(self.index) + self.batch_size - 1) // self.batch_size

    @property
    def count(self) -> int:
        return len(self.index)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.index)
        order = None
        if self.shuffle:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch, 0))
            order = torch.randperm(n, generator=g)
        corrupt = self._corrupter(epoch if self.shuffle else 0, n)
        batches = self._batches(order) if self.resident else self._streamed(order)
        for batch, (start, total) in batches:
            target = to_float_nchw(batch)
            yield corrupt(target, start, total), target

    def parts(self) -> Iterator[tuple[int, int, int, int]]:
        """Per global batch: (its first row in the epoch's order, this process's rows
        ``start, stop`` within it, its size)."""
        n = len(self.index)
        for first in range(0, n, self.batch_size):
            total = min(self.batch_size, n - first)
            start, stop = part_bounds(total, self.rank, self.world_size)
            yield first, start, stop, total

    def _corrupter(self, epoch: int, n: int):
        """corrupt(target, start, total): the task applied to rows ``start:`` of a global
        batch of ``total``, with the noise the whole global batch would get."""
        cfg = self.data_cfg
        if cfg.task != "denoise":
            return lambda t, start, total: make_input(t, cfg, None)
        seed = epoch_seed(self.seed, epoch, 1)
        if self.device.type == "cpu":
            gen = torch.Generator().manual_seed(seed)
            return NoiseBank(cfg, self.shape, n, self.batch_size, gen).corrupt
        gen = torch.Generator(device=self.device).manual_seed(seed)
        return lambda t, start, total: make_input(t, cfg, gen, start=start, total=total)

    def _batches(self, order: torch.Tensor | None) -> Iterator[tuple[torch.Tensor, tuple]]:
        storage = self.storage
        assert storage is not None  # only resident loaders read batches from storage
        if order is not None:
            order = order.to(self.device)
        for first, start, stop, total in self.parts():
            rows = slice(first + start, first + stop)
            batch = storage[rows] if order is None else storage.index_select(0, order[rows])
            yield batch, (start, total)

    def _streamed(self, order: torch.Tensor | None) -> Iterator[tuple[torch.Tensor, tuple]]:
        parts = list(self.parts())
        pin = self.device.type == "cuda"
        images = self.images
        assert images is not None  # only non-resident loaders stream

        def read(part: tuple[int, int, int, int]) -> torch.Tensor:
            first, start, stop, total = part
            batch = slice(first, first + total)
            # the global batch's rows sorted for locality, then this process's part of them
            rows = (
                self.index[batch] if order is None else np.sort(self.index[order[batch].numpy()])
            )[start:stop]
            batch_u8 = torch.from_numpy(np.ascontiguousarray(images[rows]))
            return batch_u8.pin_memory() if pin else batch_u8

        with ThreadPoolExecutor(1) as pool:
            ahead = pool.submit(read, parts[0]) if parts else None
            for i, part in enumerate(parts):
                assert ahead is not None  # submitted before every part
                batch = ahead.result()
                if i + 1 < len(parts):
                    ahead = pool.submit(read, parts[i + 1])
                yield batch.to(self.device, non_blocking=pin), (part[1], part[3])

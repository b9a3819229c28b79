"""Training tasks: what the model sees (input) and what it must produce (target).

- reconstruct: input = target.
- denoise: Gaussian noise of ``noise_sigma`` (in [0, 1] pixel units, clipped back
  to [0, 1]) and/or a ``drop_fraction`` of pixels set to black (all channels),
  drawn fresh every epoch from the seed.
- recolor: the luma of the colour target, repeated over the channels so the
  model's input shape holds.

Works on float NCHW batches in [0, 1] on whatever device they live. ``make_input``
draws exact noise with a torch generator (used on GPUs and for single batches);
``NoiseBank`` serves the CPU training loop, where drawing 3.5 million normals per
batch of 128 CelebA images would cap the loader near 2,500 images/s: it draws the
epoch's noise in bulk and hands out contiguous slices (see its docstring).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from zspace.data.dataset import LUMA

if TYPE_CHECKING:
    from zspace.config import DataConfig

BANK_MAX = 1 << 23  # values per bank (32 MB of float32)


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """Luma of an RGB batch, repeated over the channels so the model's input shape holds."""
    if x.shape[1] != 3:
        return x
    grey = x[:, 0] * LUMA[0]
    grey.add_(x[:, 1], alpha=LUMA[1]).add_(x[:, 2], alpha=LUMA[2])
    layout = (
        torch.channels_last
        if x.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )
    return grey.unsqueeze(1).expand_as(x).contiguous(memory_format=layout)


def corrupt(
    target: torch.Tensor, cfg: DataConfig, noise: torch.Tensor | None, keep: torch.Tensor | None
) -> torch.Tensor:
    """Apply the task to a clean batch, given N(0, 1) ``noise`` shaped like it and a
    0/1 ``keep`` mask shaped (N, 1, H, W) or like the batch (each None when off)."""
    if cfg.task == "reconstruct":
        return target
    if cfg.task == "recolor":
        return to_grey(target)
    x = target
    if cfg.noise_sigma > 0 and noise is not None:
        x = torch.add(x, noise, alpha=cfg.noise_sigma).clamp_(0.0, 1.0)
    if cfg.drop_fraction > 0 and keep is not None:
        x = x.mul_(keep) if x is not target else x * keep
    return x


def make_input(
    target: torch.Tensor,
    cfg: DataConfig,
    generator: torch.Generator | None,
    *,
    start: int = 0,
    total: int | None = None,
) -> torch.Tensor:
    """The corrupted input for a clean target batch, according to ``cfg.task``.

    ``target`` may be rows ``start:`` of a global batch of ``total`` (one DDP
    process's part): the noise is drawn for the global batch and sliced, so the
    parts get exactly what one process drawing for the whole batch would."""
    if cfg.task != "denoise":
        return corrupt(target, cfg, None, None)
    n, c, h, w = target.shape
    total = n if total is None else total
    rows = slice(start, start + n)
    noise = keep = None
    if cfg.noise_sigma > 0:
        # Drawn in NHWC order and viewed as NCHW so it matches a channels_last target.
        noise = torch.randn(
            (total, h, w, c), generator=generator, device=target.device, dtype=target.dtype
        )[rows].permute(0, 3, 1, 2)
    if cfg.drop_fraction > 0:
        draw = torch.rand((total, 1, h, w), generator=generator, device=target.device)[rows]
        keep = (draw >= cfg.drop_fraction).to(target.dtype)
    return corrupt(target, cfg, noise, keep)


class NoiseBank:
    """One epoch's denoising noise on the CPU, drawn in bulk and sliced per batch.

    When the epoch needs at most ``BANK_MAX`` values (small data sets) the bank
    holds exactly the epoch's noise and batches take consecutive slices: every
    value is fresh. Larger epochs draw a fresh bank of ``BANK_MAX`` values per
    epoch and each batch takes a contiguous slice at a seeded random offset:
    within a batch all values are independent N(0, 1); across batches of one
    epoch slices may overlap, shifted by a random amount, which a model cannot
    exploit. Drawing the bank costs about 0.1 s per epoch; slicing costs nothing.
    """

    def __init__(
        self,
        cfg: DataConfig,
        shape: tuple[int, int, int],
        images: int,
        batch_size: int,
        generator: torch.Generator,
    ) -> None:
        self.cfg = cfg
        self.h, self.w, self.c = shape
        self.generator = generator
        per_image = self.h * self.w * self.c
        length = min(per_image * images, max(BANK_MAX, 2 * per_image * batch_size))
        self.noise = torch.randn(length, generator=generator) if cfg.noise_sigma > 0 else None
        self.keep = None
        if cfg.drop_fraction > 0:
            # One draw per pixel, repeated over the channels: a same-shape multiply is
            # several times faster than broadcasting a (N, 1, H, W) mask on the CPU.
            pixels = torch.rand(length // self.c, generator=generator) >= cfg.drop_fraction
            self.keep = pixels.float().repeat_interleave(self.c)
        self._pos = [0, 0]

    def _slice(self, bank: torch.Tensor, which: int, count: int) -> torch.Tensor:
        if bank.numel() - self._pos[which] >= count:
            start = self._pos[which]
            self._pos[which] += count
        else:
            # Offsets are whole pixels so the mask's per-pixel repeats stay aligned.
            pixels = (bank.numel() - count) // self.c + 1
            start = int(torch.randint(0, pixels, (1,), generator=self.generator)) * self.c
        return bank[start : start + count]

    def corrupt(
        self, target: torch.Tensor, start: int = 0, total: int | None = None
    ) -> torch.Tensor:
        """The next batch's corruption; ``target`` may be rows ``start:`` of a global
        batch of ``total`` (one DDP process's part), which gets that part of the
        global batch's slice."""
        n = target.shape[0]
        total = n if total is None else total
        pixels = self.h * self.w * self.c
        part = slice(start * pixels, (start + n) * pixels)
        noise, keep = (
            None
            if bank is None
            else self._slice(bank, which, total * pixels)[part]
            .view(n, self.h, self.w, self.c)
            .permute(0, 3, 1, 2)
            for which, bank in enumerate((self.noise, self.keep))
        )
        return corrupt(target, self.cfg, noise, keep)

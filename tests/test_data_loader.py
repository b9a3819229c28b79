"""Batches from the uint8 array: layout, seeding, tasks, streaming and the noise bank."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from zspace.config import DataConfig
from zspace.data import BatchLoader
from zspace.data.tasks import NoiseBank, make_input, to_grey


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (50, 12, 10, 3), dtype=np.uint8)


def collect(loader, epoch):
    xs, ys = zip(*loader.epoch(epoch), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_reconstruct_batches(images):
    index = np.arange(5, 45)
    loader = BatchLoader(images, index, 16, DataConfig(), shuffle=False)
    assert len(loader) == 3 and loader.count == 40
    batches = list(loader.epoch(0))
    assert [b[0].shape for b in batches] == [(16, 3, 12, 10)] * 2 + [(8, 3, 12, 10)]
    x, y = batches[0]
    assert x is y and y.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last)
    expected = torch.from_numpy(images[5:21]).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(y, expected)


def test_shuffle_is_seeded_and_changes_per_epoch(images):
    loader = BatchLoader(images, np.arange(50), 8, DataConfig(), seed=3)
    _, a0 = collect(loader, 0)
    _, a1 = collect(loader, 1)
    _, b0 = collect(BatchLoader(images, np.arange(50), 8, DataConfig(), seed=3), 0)
    assert torch.equal(a0, b0) and not torch.equal(a0, a1)
    full = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    assert torch.allclose(a0.sum(0), full.sum(0), atol=1e-3)  # every image once


def test_streaming_gives_the_same_images(images):
    index = np.arange(50)[::-1].copy()
    resident = BatchLoader(images, index, 8, DataConfig(), seed=1)
    streamed = BatchLoader(images, index, 8, DataConfig(), seed=1, max_bytes=0)
    assert resident.resident and not streamed.resident
    _, a = collect(resident, 2)
    _, b = collect(streamed, 2)
    key = lambda t: sorted(t.flatten(1).sum(1).tolist())  # noqa: E731 - order within batches differs
    assert key(a) == key(b) and len(a) == 50


def test_denoise_is_seeded_fresh_per_epoch_and_fixed_for_validation(images):
    cfg = DataConfig(task="denoise", noise_sigma=0.2, drop_fraction=0.25)
    train = BatchLoader(images, np.arange(50), 50, cfg, seed=5, shuffle=True)
    x0, y0 = collect(train, 0)
    x0b, _ = collect(BatchLoader(images, np.arange(50), 50, cfg, seed=5), 0)
    x1, _ = collect(train, 1)
    assert torch.equal(x0, x0b) and not torch.equal(x0, x1)
    valid = BatchLoader(images, np.arange(50), 16, cfg, seed=5, shuffle=False)
    assert torch.equal(collect(valid, 0)[0], collect(valid, 7)[0])
    assert x0.min() >= 0 and x0.max() <= 1
    dropped = (x0 == 0).all(dim=1)  # pixels black in all channels
    assert 0.2 < dropped.float().mean().item() < 0.3


def test_noise_bank_statistics_and_alignment(monkeypatch):
    monkeypatch.setattr("zspace.data.tasks.BANK_MAX", 20_000)
    cfg = DataConfig(task="denoise", noise_sigma=0.1, drop_fraction=0.3)
    gen = torch.Generator().manual_seed(0)
    bank = NoiseBank(cfg, (8, 8, 3), images=10_000, batch_size=64, generator=gen)
    assert bank.noise.numel() < 8 * 8 * 3 * 10_000  # large epoch: a bank, sliced
    target = torch.full((64, 3, 8, 8), 0.5)
    for _ in range(30):  # past the end of the bank: random, pixel-aligned offsets
        x = bank.corrupt(target)
    kept = x != 0
    assert torch.equal(kept.all(1), kept.any(1))  # a pixel is dropped in all channels or none
    noise = (x[kept] - 0.5) / 0.1
    assert abs(noise.mean().item()) < 0.05 and abs(noise.std().item() - 1) < 0.05
    assert abs((~kept).float().mean().item() - 0.3) < 0.03


def test_make_input_tasks():
    target = torch.rand(4, 3, 5, 5)
    assert make_input(target, DataConfig(), None) is target
    grey = make_input(target, DataConfig(task="recolor"), None)
    expected = 0.299 * target[:, 0] + 0.587 * target[:, 1] + 0.114 * target[:, 2]
    torch.testing.assert_close(grey[:, 1], expected)
    assert torch.equal(grey[:, 0], grey[:, 2])
    one = torch.rand(2, 1, 5, 5)
    assert to_grey(one) is one
    cfg = DataConfig(task="denoise", noise_sigma=0.5)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(make_input(target, cfg, g1), make_input(target, cfg, g2))
    only_drop = replace(cfg, noise_sigma=0.0, drop_fraction=0.5)
    out = make_input(target, only_drop, g1)
    assert torch.equal(out[out != 0], target[out != 0])


def test_empty_split(images):
    loader = BatchLoader(images, np.arange(0), 8, DataConfig())
    assert len(loader) == 0 and list(loader.epoch(0)) == []

"""Encoding a split of a run's data once into ``RUN/latents/<split>.npz``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from zspace.core.checks import check_hooks, check_type, finite_float32, positive
from zspace.core.errors import ZspaceError
from zspace.core.progress import bar
from zspace.core.progress import progress as progress_switch
from zspace.data.loader import BatchLoader
from zspace.data.tasks import make_input
from zspace.latents.store import LatentsWriter, latents_path
from zspace.runs.run import Run, RunLike, as_run


def encode(
    run: RunLike,
    split: str = "train",
    *,
    eps_scale: float | None = None,
    batch_size: int = 512,
    log: Callable[[str], None] | None = print,
    progress: bool | None = None,
) -> Path:
    """Encode every image of ``split`` with the run's encoder and write the latents file.

    Images are read as training read them (``zspace.data.prepare``) and fed through the
    run's task input (grey for recolor, seeded noise for denoise), in batches without
    gradients. For a VAE z is sampled with the model's eps settings from a torch RNG
    seeded with the config's seed, so encoding twice gives the same file. The
    latents go to disk batch by batch (``LatentsWriter``), so memory does not grow
    with the split.
    """
    check_type("split", split, str, "a split name (train, valid, test)")
    check_type("eps_scale", eps_scale, (int, float, type(None)), "a number or None")
    check_type("batch_size", batch_size, int, "an integer")
    check_hooks(log, progress)
    positive("batch_size", batch_size)
    run = as_run(run)
    cfg = run.config
    data, splits = run.data()
    if split not in splits:
        raise ZspaceError(
            f"split {split!r} does not exist for {cfg.data.source}; choose one of "
            f"{', '.join(splits)}"
        )
    idx = np.asarray(splits[split], dtype=np.int64)
    old_scale = run.model.eps_scale if run.variational else None
    if eps_scale is not None:
        finite_float32("--eps-scale", eps_scale)
        if eps_scale < 0:
            raise ZspaceError(f"--eps-scale {eps_scale}: must be >= 0")
        if run.variational:
            run.model.eps_scale = float(eps_scale)
    d = run.z_dim
    path = latents_path(run.path, split)
    try:
        with (
            LatentsWriter(path, len(idx), d, run.variational) as out,
            torch.random.fork_rng(devices=[]),
            progress_switch(progress),
        ):
            torch.manual_seed(cfg.seed)
            batches = _inputs(run, data.images, idx, batch_size)
            total = -(-len(idx) // batch_size)
            for x in bar(batches, total=total, desc=f"encoding {split}", unit="batch"):
                out.add(*run.encode(x, batch_size))
            out.finish(
                split=split,
                index=idx,
                label=None if data.labels is None else np.asarray(data.labels)[idx],
                label_names=data.label_names,
                attr=None if data.attr is None else np.asarray(data.attr)[idx],
                attr_names=data.attr_names,
                eps_scale=(float(eps_scale) if eps_scale is not None else old_scale),
                seed=cfg.seed,
            )
    finally:
        if old_scale is not None:
            run.model.eps_scale = old_scale
    if log:
        log(f"encoded {len(idx):,} {split} images -> {path}")
    return path


def _inputs(run: Run, images: np.ndarray, idx: np.ndarray, batch_size: int):
    """The split's model inputs in order, as float NCHW batches.

    Denoising draws its noise on the CPU from a generator seeded with the config's
    seed, so the file does not depend on the device. The other tasks draw nothing:
    their batches come from the training loader (uint8 on the device, converted
    there; resident on a GPU when the split fits, streamed one batch ahead
    otherwise), which moves a quarter of the bytes of float batches."""
    cfg = run.config
    if cfg.data.task == "denoise":
        gen = torch.Generator().manual_seed(cfg.seed + 7919)
        for s in range(0, len(idx), batch_size):
            x = run.as_batch(np.ascontiguousarray(images[idx[s : s + batch_size]]))
            yield make_input(x, cfg.data, gen)
        return
    resident = None if run.device.type == "cuda" else 0
    loader = BatchLoader(
        images, idx, batch_size, cfg.data, device=run.device, shuffle=False, max_bytes=resident
    )
    for x, _ in loader.epoch(0):
        yield x

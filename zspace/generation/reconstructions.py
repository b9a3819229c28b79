"""Reconstruction grids of a split's images and of image files, with the split's metrics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zspace.core.fileio import atomic_write_json
from zspace.generation import grids
from zspace.generation.common import Log, as_run, counts, pick, seed_of, split_index
from zspace.generation.index import entry, samples_dir, update_index
from zspace.generation.naming import sample_file
from zspace.generation.recon import ReconMetrics, load_image_file, recon_metrics, reconstruct_rows
from zspace.generation.results import Reconstructions, SampleImage, SampleImages


def reconstructions(
    run: Any,
    *,
    n: int = 16,
    split: str | None = None,
    images: Sequence[str | Path] = (),
    cols: int = 8,
    seed: int | None = None,
    sharpen: float | None = None,
    metrics: bool = True,
    log: Log = None,
) -> Reconstructions:
    """Originals above their reconstructions for n images of a split and for image
    files; the split's mean loss, PSNR and SSIM (written to samples/reconstruction.json)."""
    run = as_run(run)
    seed = seed_of(run, seed)
    counts(n=n, cols=cols)
    own = np.stack([load_image_file(p, run) for p in images]) if images else None  # first:
    split, data, index = split_index(run, split)  # a bad file must fail before any grid
    imgs = np.ascontiguousarray(data.images[pick(index, n, seed)])
    entries = []
    result: dict[str, Any] = {"split": split}
    cols = min(cols, max(1, len(imgs)))
    if metrics:
        m: ReconMetrics = recon_metrics(run, data.images[index], split, seed)
        result["metrics"] = m.as_dict()
    mtxt = (
        (
            f"; {split} mean loss {m.loss:.4g} ({m.loss_kind}), PSNR {m.psnr:.2f} dB, "
            f"SSIM {m.ssim:.3f} over {m.n} images"
        )
        if metrics
        else ""
    )
    task = run.config.data.task
    order = (
        "input / original / reconstruction"
        if task != "reconstruct"
        else ("original / reconstruction")
    )
    rows = reconstruct_rows(run, imgs, seed)
    rows[-1] = grids.sharpen(rows[-1], sharpen)
    file = sample_file("recon", ("", split), ("sharp", sharpen), ("n", len(imgs)), ("seed", seed))
    sharp = f", reconstructions sharpened x{sharpen:g}" if sharpen is not None else ""
    cap = f"{len(imgs)} {split} images (seed {seed}), rows {order}{sharp}{mtxt}"
    grids.write_grid(samples_dir(run) / file, rows, cols)
    params = {"split": split, "n": len(imgs), "seed": seed, "task": task}
    if sharpen is not None:
        params["sharpen"] = sharpen
    entries.append(entry(file, "reconstruction", "encoder", params, cap))
    if own is not None:
        rows = reconstruct_rows(run, own, seed)
        file = sample_file("recon", ("", "files"), ("", [Path(p).name for p in images]))
        names = ", ".join(Path(p).name for p in images)
        cap = f"image files ({names}), rows {order}"
        grids.write_grid(samples_dir(run) / file, rows, min(cols, len(own)))
        entries.append(
            entry(
                file,
                "reconstruction",
                "encoder",
                {"files": [str(p) for p in images], "task": task},
                cap,
            )
        )
    update_index(run, entries)
    if metrics:
        atomic_write_json(samples_dir(run) / "reconstruction.json", result)
    if log:
        for e in entries:
            log(f"{e['file']}: {e['caption']}")
    folder = samples_dir(run)
    return Reconstructions(
        split,
        result.get("metrics"),
        SampleImages(tuple(SampleImage.of(e, folder) for e in entries)),
    )

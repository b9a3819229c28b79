"""Reconstructions next to their originals, and the reconstruction quality of a split.

Inputs go through the run's task exactly as in training (``images.model_input``:
noise for ``denoise``, grey for ``recolor``), so a grid shows input, target and
reconstruction where they differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_json
from zspace.generation.common import Log, check_args, pick, seed_of, split_index
from zspace.generation.images import load_image_file, model_input, sharpened, to_uint8
from zspace.generation.index import publish, samples_dir
from zspace.generation.naming import sample_file
from zspace.generation.results import Reconstructions, SampleImages
from zspace.models.autoencoder import AutoEncoder
from zspace.runs.run import RunLike, as_run


def reconstruct_rows(run: Any, images_u8: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Rows for a grid: [input,] original, reconstruction (input only when the task
    changes it). Images: uint8 NHWC."""
    target = run.as_batch(images_u8)
    x = model_input(run, target, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z, mu, _ = run.encode(x)
    recon = run.decode(mu if mu is not None else z)
    rows = [to_uint8(target), to_uint8(recon)]
    if run.config.data.task != "reconstruct":
        rows.insert(0, to_uint8(x))
    return rows


def recon_metrics(
    run: Any, images_u8: np.ndarray, split: str, seed: int = 0, batch_size: int = 256
) -> dict[str, Any]:
    """Mean reconstruction loss (the run's kind and scaling, per image), PSNR (dB, data
    range 1) and SSIM (scikit-image) over the given images; mu for a VAE (the
    deterministic reconstruction)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from zspace.core.progress import bar
    from zspace.models.losses import reconstruction_loss

    m = run.config.model
    n = len(images_u8)
    if n == 0:
        raise ZspaceError(f"split {split!r} has no images")
    loss_sum = psnr_sum = ssim_sum = 0.0
    for s in bar(range(0, n, batch_size), desc=f"reconstruction metrics ({split})", unit="batch"):
        target = run.as_batch(images_u8[s : s + batch_size])
        x = model_input(run, target, seed + s)
        with torch.no_grad():
            out = run.model.encode(x.to(run.device))
            code = out.mu if out.mu is not None else out.z
            own = isinstance(run.model, AutoEncoder)  # the loss from logits, as in training;
            pixels = (run.model.decoder if own else run.model.decode)(code).float().cpu()
        # an imported model gives images: the same loss from them (docs/models.md)
        loss = reconstruction_loss(pixels, target, m.loss, m.per_pixel, images=not own)
        loss_sum += float(loss) * len(target)
        recon = (torch.sigmoid(pixels) if own else pixels).numpy().transpose(0, 2, 3, 1)
        recon = recon.astype(np.float64)
        orig = target.numpy().transpose(0, 2, 3, 1).astype(np.float64)
        small = min(orig.shape[1:3]) < 7
        for a, b in zip(orig, recon, strict=True):
            psnr_sum += min(float(peak_signal_noise_ratio(a, b, data_range=1.0)), 100.0)
            ssim_sum += float(
                structural_similarity(
                    a, b, data_range=1.0, channel_axis=2, win_size=3 if small else None
                )
            )
    return {"split": split, "n": n, "loss": loss_sum / n, "psnr": psnr_sum / n,
            "ssim": ssim_sum / n, "loss_kind": m.loss}  # fmt: skip


def reconstructions(
    run: RunLike,
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
    check_args(n=n, cols=cols, split=split, seed=seed, sharpen=sharpen, metrics=metrics)
    own = np.stack([load_image_file(p, run) for p in images]) if images else None  # first:
    split, data, index = split_index(run, split)  # a bad file must fail before any grid
    imgs = np.ascontiguousarray(data.images[pick(index, n, seed)])
    result: dict[str, Any] = {"split": split}
    cols = min(cols, max(1, len(imgs)))
    task = run.config.data.task
    order = (
        "input / original / reconstruction"
        if task != "reconstruct"
        else "original / reconstruction"
    )
    cap = f"{len(imgs)} {split} images (seed {seed}), rows {order}"
    if sharpen is not None:
        cap += f", reconstructions sharpened x{sharpen:g}"
    if metrics:
        m = result["metrics"] = recon_metrics(run, data.images[index], split, seed)
        cap += (f"; {split} mean loss {m['loss']:.4g} ({m['loss_kind']}), PSNR {m['psnr']:.2f} dB, "
                f"SSIM {m['ssim']:.3f} over {m['n']} images")  # fmt: skip
    rows = reconstruct_rows(run, imgs, seed)
    rows[-1] = sharpened(rows[-1], sharpen)
    file = sample_file("recon", ("", split), ("sharp", sharpen), ("n", len(imgs)), ("seed", seed))
    params = {"split": split, "n": len(imgs), "seed": seed, "task": task}
    if sharpen is not None:
        params["sharpen"] = sharpen
    items = [publish(run, rows, cols, file, "reconstruction", "encoder", params, cap, log)]
    if own is not None:
        file = sample_file("recon", ("", "files"), ("", [Path(p).name for p in images]))
        cap = f"image files ({', '.join(Path(p).name for p in images)}), rows {order}"
        params = {"files": [str(p) for p in images], "task": task}
        rows = reconstruct_rows(run, own, seed)
        items.append(publish(run, rows, cols, file, "reconstruction", "encoder", params, cap, log))
    if metrics:
        atomic_write_json(samples_dir(run) / "reconstruction.json", result)
    return Reconstructions(split, result.get("metrics"), SampleImages(items))

"""Reconstructions next to their originals, and the reconstruction quality of a split.

Inputs go through the run's task exactly as in training (noise for ``denoise``,
grey for ``recolor``), so a grid shows input, target and reconstruction where they
differ. A user's own image file is cropped and resized like the training data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.core.errors import ZspaceError
from zspace.generation.grids import to_uint8

TASK_SEED_OFFSET = 104_729  # keeps the task's noise stream apart from other seeded draws


def load_image_file(path: str | Path, run: Any) -> np.ndarray:
    """One image file as (H, W, C) uint8 in the run's geometry (crop, size, channels)."""
    from PIL import Image, UnidentifiedImageError

    from zspace.data.readers.geometry import Geometry, fit

    path = Path(path)
    if not path.is_file():
        raise ZspaceError(f"image file not found: {path}")
    c, h, w = run.input_shape
    try:
        with Image.open(path) as img:
            return fit(img, Geometry(h, w, c, run.config.data.crop))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ZspaceError(f"{path} does not decode as an image: {exc}") from None


def model_input(run: Any, target: torch.Tensor, seed: int) -> torch.Tensor:
    """The run's task applied to clean targets (seeded, so grids reproduce)."""
    from zspace.data.tasks import make_input

    gen = torch.Generator().manual_seed(seed + TASK_SEED_OFFSET)
    return make_input(target.clone(), run.config.data, gen)


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


@dataclass
class ReconMetrics:
    split: str
    n: int
    loss: float  # the run's reconstruction loss (its kind and scaling), mean per image
    psnr: float  # dB, mean over images, data range 1
    ssim: float  # mean over images
    loss_kind: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def recon_metrics(
    run: Any, images_u8: np.ndarray, split: str, seed: int = 0, batch_size: int = 256
) -> ReconMetrics:
    """Mean reconstruction loss, PSNR and SSIM (scikit-image) over the given images.

    Uses mu for a VAE (the deterministic reconstruction)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from zspace.models.losses import reconstruction_loss

    m = run.config.model
    n = len(images_u8)
    if n == 0:
        raise ZspaceError(f"split {split!r} has no images")
    loss_sum = psnr_sum = ssim_sum = 0.0
    from zspace.core.progress import bar

    for s in bar(range(0, n, batch_size), desc=f"reconstruction metrics ({split})", unit="batch"):
        target = run.as_batch(images_u8[s : s + batch_size])
        x = model_input(run, target, seed + s)
        with torch.no_grad():
            out = run.model.encoder(x.to(run.device))
            code = out.mu if out.mu is not None else out.z
            logits = run.model.decoder(code).float().cpu()
        loss_sum += float(reconstruction_loss(logits, target, m.loss, m.per_pixel)) * len(target)
        recon = torch.sigmoid(logits).numpy().transpose(0, 2, 3, 1).astype(np.float64)
        orig = target.numpy().transpose(0, 2, 3, 1).astype(np.float64)
        small = min(orig.shape[1:3]) < 7
        for a, b in zip(orig, recon, strict=True):
            psnr_sum += min(float(peak_signal_noise_ratio(a, b, data_range=1.0)), 100.0)
            ssim_sum += float(
                structural_similarity(
                    a, b, data_range=1.0, channel_axis=2, win_size=3 if small else None
                )
            )
    return ReconMetrics(split, n, loss_sum / n, psnr_sum / n, ssim_sum / n, m.loss)

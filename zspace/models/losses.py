"""Loss terms as pure functions, in the reference's Keras convention.

Reconstruction: the per-pixel loss averaged over the channels of each pixel, summed
over the H*W pixels of an image, averaged over the batch ("per image" values:
about 0.49 per pixel * 9,216 pixels ~ 4,515 on CelebA 96x96). ``per_pixel``
divides by H*W instead of summing. KL: the closed form for a diagonal Gaussian
against N(0, I), summed over z and averaged over the batch; ``fact`` weighs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossTerms:
    total: torch.Tensor
    reco: torch.Tensor
    kl: torch.Tensor  # fact * kl_raw: the term that enters total
    kl_raw: torch.Tensor


def reconstruction_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    kind: str = "bce",
    per_pixel: bool = False,
    *,
    images: bool = False,
) -> torch.Tensor:
    """Channel mean per pixel, pixel sum per image, batch mean (NCHW tensors).
    ``images=True``: ``logits`` are images in [0, 1] (a model that gives no logits);
    BCE then reads them clamped to [1e-7, 1 - 1e-7]."""
    if kind == "bce" and images:
        out = logits.float().clamp(1e-7, 1 - 1e-7)
        elem = F.binary_cross_entropy(out, target.float(), reduction="none")
    elif kind == "bce":
        elem = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    elif kind == "mse":
        out = logits.float() if images else torch.sigmoid(logits.float())
        elem = (out - target.float()).square()
    else:
        raise ValueError(f"unknown reconstruction loss {kind!r}")
    batch, channels, height, width = elem.shape
    # sum over everything then one division: the same value as mean(C) -> sum(HW) -> mean(B).
    # An empty batch (a DDP process's empty part of a tiny last batch) gives 0, not 0/0.
    scale = max(batch, 1) * channels * (height * width if per_pixel else 1)
    return elem.sum() / scale


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Batch mean of -0.5 * sum(1 + logvar - mu^2 - exp(logvar)) over the latent axes."""
    mu, logvar = mu.float(), logvar.float()
    per_image = -0.5 * (1.0 + logvar - mu.square() - logvar.exp()).sum(dim=1)
    return per_image.mean() if len(per_image) else per_image.sum()  # empty batch: 0


def fact_at_epoch(fact: float, warmup_epochs: int, epoch: int) -> float:
    """Linear warm-up of the KL weight: fact * epoch / warmup for the first epochs (1-based)."""
    if warmup_epochs <= 0:
        return fact
    return fact * min(1.0, epoch / warmup_epochs)


def vae_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    mu: torch.Tensor | None,
    logvar: torch.Tensor | None,
    *,
    fact: float,
    kind: str = "bce",
    per_pixel: bool = False,
) -> LossTerms:
    """All terms of one batch; for an AE (mu is None) the KL terms are zero."""
    reco = reconstruction_loss(logits, target, kind, per_pixel)
    if mu is None or logvar is None:
        zero = reco.new_zeros(())
        return LossTerms(reco, reco, zero, zero)
    kl_raw = kl_divergence(mu, logvar)
    if per_pixel:
        kl_raw = kl_raw / (target.shape[2] * target.shape[3])
    kl = fact * kl_raw
    return LossTerms(reco + kl, reco, kl, kl_raw)

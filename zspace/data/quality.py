"""What data-curation tools report first: exact duplicate images and near-constant ones.

129 copies of one image show up in a latent space only as a spike at one radius, so
``zspace data info`` prints both and training keeps them in ``meta.json`` (the report's
data section reads them there). One pass over the images in blocks (a memory-mapped
cache is read once): each row is hashed, and its pixel std computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NEAR_CONSTANT = 4.0  # pixel std (of 0..255) at or below which an image looks blank
BLOCK = 1 << 25  # bytes of images per block
EXAMPLES = 5  # indices kept per finding


def image_checks(images: np.ndarray) -> dict[str, Any]:
    """Exact duplicates of uint8 images (N, ...): ``copies`` beyond the first of
    ``images`` distinct images, the first indices of the largest group; and the
    near-constant images (std around the image's mean colour <= NEAR_CONSTANT), with the
    first indices; ``images`` are (N, H, W, C) or (N, H, W)."""
    flat = images.reshape(len(images), -1)
    channels = images.shape[3] if images.ndim == 4 else 1
    step = max(1, BLOCK // max(1, flat.shape[1]))
    groups: dict[int, list[int]] = {}
    std = np.empty(len(flat), np.float32)
    buffer = np.empty((min(step, len(flat)), flat.shape[1]), np.float32)  # reused: no page faults
    for start in range(0, len(flat), step):
        block = np.ascontiguousarray(flat[start : start + step])
        for i, row in enumerate(block, start):
            groups.setdefault(hash(row.tobytes()), []).append(i)
        x = buffer[: len(block)]
        planes = x.reshape(len(block), channels, -1)  # channel-planar: contiguous reductions
        np.copyto(planes, block.reshape(len(block), -1, channels).transpose(0, 2, 1))
        planes -= planes.mean(axis=2, keepdims=True)
        std[start : start + step] = np.sqrt(np.einsum("ij,ij->i", x, x) / max(1, x.shape[1]))
    # a 64-bit hash may collide (p ~ N^2 / 2^65): a group keeps the rows equal to its first
    same = [[i for i in g if np.array_equal(flat[i], flat[g[0]])] for g in groups.values() if g[1:]]
    same = sorted((g for g in same if len(g) > 1), key=len, reverse=True)
    blank = np.flatnonzero(std <= NEAR_CONSTANT)
    return {
        "duplicates": {
            "copies": sum(len(g) - 1 for g in same),
            "images": len(same),
            "largest": same[0][:EXAMPLES] if same else [],
            "largest_size": len(same[0]) if same else 0,
        },
        "near_constant": {
            "count": len(blank),
            "examples": blank[:EXAMPLES].tolist(),
            "std_at_most": NEAR_CONSTANT,
        },
    }

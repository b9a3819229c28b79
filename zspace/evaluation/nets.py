"""The evaluator's feature model: a small CNN whose penultimate layer is the feature
space every generated image is judged in.

One architecture for every task; only the head and the loss differ:

- ``classes``: softmax over the data's labels (MNIST-format sets, CIFAR-10,
  folders with classes), cross-entropy;
- ``attributes``: one logit per CelebA attribute, binary cross-entropy over the
  attribute values the file knows (0 = unknown is left out);
- ``rotation`` (the fallback without labels): which of 0/90/180/270 degrees an
  image was turned by, cross-entropy (Gidaris et al. 2018). Predicting the
  rotation needs the data's upright structure (eyes above mouths, strokes of
  digits), so its features separate structured images from noise and blobs
  without a single label.

Stride-2 blocks halve the image until it is at most 8 pixels across, so a 28x28
set costs two of them and 96x96 faces four; a global average pool and a linear
layer give ``feature_dim`` features (taken before the head's ReLU).
"""

from __future__ import annotations

import torch
from torch import nn

TASKS = ("classes", "attributes", "rotation")
ROTATIONS = 4
FEATURE_DIM = 64
WIDTH = 16
MAX_WIDTH = 64


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class FeatureNet(nn.Module):
    """(N, C, H, W) floats in [0, 1] -> (features (N, feature_dim), logits (N, outputs))."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        outputs: int,
        *,
        feature_dim: int = FEATURE_DIM,
        width: int = WIDTH,
        max_width: int = MAX_WIDTH,
    ) -> None:
        super().__init__()
        c, h, _ = input_shape
        self.input_shape = tuple(int(s) for s in input_shape)
        self.outputs = int(outputs)
        self.feature_dim = int(feature_dim)
        self.widths = (int(width), int(max_width))
        layers = [_block(c, width, 1)]
        ch, size = width, h
        while size > 8:
            nxt = min(ch * 2, max_width)
            layers.append(_block(ch, nxt, 2))
            ch, size = nxt, (size + 1) // 2
        layers.append(_block(ch, ch, 1))
        self.body = nn.Sequential(*layers)
        self.embed = nn.Linear(ch, feature_dim)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2), nn.Linear(feature_dim, outputs))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x * 2.0 - 1.0).mean(dim=(2, 3))
        features = self.embed(h)
        return features, self.head(features)

    def describe(self) -> dict:
        """What rebuilds this net from a checkpoint (kept in the evaluator's meta)."""
        return {
            "input_shape": list(self.input_shape),
            "outputs": self.outputs,
            "feature_dim": self.feature_dim,
            "width": self.widths[0],
            "max_width": self.widths[1],
        }


def rotate_batch(x: torch.Tensor, generator: torch.Generator | None = None):
    """Each image turned by a random multiple of 90 degrees: (rotated, how many turns)."""
    turns = torch.randint(0, ROTATIONS, (len(x),), generator=generator)
    out = torch.empty_like(x)
    for t in range(ROTATIONS):
        sel = turns == t
        if bool(sel.any()):
            out[sel] = torch.rot90(x[sel], t, dims=(2, 3))
    return out, turns

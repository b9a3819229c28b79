"""Training the evaluator's feature net with zspace's generic epoch loop
(zspace.training.loop.EpochTrainer): seeded batches, NaN checks, a progress bar,
checkpoints that load with ``weights_only=True``. What is particular to the
evaluator sits here: one objective per task and a loader of (images, targets).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zspace.data.loader import to_float_nchw
from zspace.evaluation.nets import ROTATIONS, FeatureNet, rotate_batch
from zspace.runs.checkpoint import load_checkpoint
from zspace.training.loop import EpochTrainer

Log = Callable[[str], None] | None


def batch_terms(task: str, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """(loss, number right, number judged) of one batch; for ``rotation`` the caller
    passes the turned images and their turns."""
    _, logits = net(x)
    if task == "attributes":
        known = y != 0
        loss = F.binary_cross_entropy_with_logits(logits, (y > 0).float(), reduction="none")
        right = (((logits > 0) == (y > 0)) & known).sum()
        return (loss * known).sum() / known.sum().clamp(min=1), right, known.sum()
    return F.cross_entropy(logits, y), (logits.argmax(1) == y).sum(), torch.tensor(len(y))


def structureless(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Images with none of the data's structure, made from (half) a batch, a quarter each:
    its pixels shuffled (each image's own intensities, no strokes), coarse blobs
    (average-pooled to 4x4 and smoothly enlarged), one flat random colour, uniform
    noise."""
    n, c, h, w = x.shape
    q = [0, n // 4, n // 2, 3 * n // 4, n]
    a = q[1]
    perm = torch.argsort(torch.rand(a, h * w, generator=generator), dim=1).to(x.device)
    flat = x[:a].reshape(a, c, h * w)
    shuffled = flat.gather(2, perm[:, None, :].expand(a, c, h * w)).reshape(a, c, h, w)
    pooled = F.adaptive_avg_pool2d(x[q[1] : q[2]], 4)
    blobs = F.interpolate(pooled, size=(h, w), mode="bilinear", align_corners=False)
    colour = torch.rand((q[3] - q[2], c, 1, 1), generator=generator).expand(-1, c, h, w)
    noise = torch.rand((n - q[3], c, h, w), generator=generator)
    return torch.cat([shuffled, blobs, colour.to(x.device), noise.to(x.device)])


class EvaluatorObjective:
    """Cross-entropy over classes or rotations, or masked BCE over attributes.

    A class classifier also learns to say "none of these": on structureless images
    made from each batch (``structureless``) its target is the uniform distribution
    (outlier exposure, Hendrycks et al. 2019), weight ``OUTLIER_WEIGHT``. Without it a
    softmax is as sure about grey mush as about a clean digit, and the confident
    share would reward mush (docs/evaluation.md).

    Random draws (rotations, negatives) come from a generator seeded per epoch for
    training and fixed for validation, so validation losses compare across epochs."""

    OUTLIER_WEIGHT = 0.5

    names: tuple[str, ...] = ("loss", "accuracy")

    def __init__(self, task: str, seed: int = 0) -> None:
        self.task = task
        self.seed = int(seed)
        self._stream: tuple[int, bool] | None = None
        self._gen = torch.Generator()

    def __call__(
        self, model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        stream = (epoch if model.training else 0, model.training)
        if stream != self._stream:
            self._stream = stream
            self._gen.manual_seed(self.seed * 100_003 + stream[0] * 2 + int(stream[1]))
        if self.task == "rotation":
            x, turns = rotate_batch(x, self._gen)
            target = turns.to(x.device)
        if self.task == "classes" and len(x) >= 8:
            _, logits = model(torch.cat([x, structureless(x[: len(x) // 2], self._gen)]))
            real, junk = logits[: len(x)], logits[len(x) :]
            loss = F.cross_entropy(real, target)
            right = (real.argmax(1) == target).sum()
            outlier = -F.log_softmax(junk, dim=1).mean()
            accuracy = right.double() / len(x)
            total = loss + self.OUTLIER_WEIGHT * outlier
            return total, torch.stack((loss.detach().double(), accuracy))
        loss, right, count = batch_terms(self.task, model, x, target)
        accuracy = right.double() / count.clamp(min=1).to(right.device)
        return loss, torch.stack((loss.detach().double(), accuracy))

    def row(
        self, epoch: int, train: dict[str, float], valid: dict[str, float] | None
    ) -> dict[str, Any]:
        row: dict[str, Any] = {"epoch": epoch, **train}  # loss, accuracy
        return row | {f"val_{k}": v for k, v in (valid or {}).items()}

    def score(self, row: dict[str, Any]) -> float:
        return row.get("val_loss", row["loss"])


class ArrayBatches:
    """(images, targets) batches of some rows of in-memory arrays; reshuffled per
    epoch from ``seed`` (``shuffle=False``: in order)."""

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        index: np.ndarray,
        batch_size: int,
        *,
        device: torch.device,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        self.images, self.targets = images, targets
        self.index = torch.as_tensor(np.asarray(index, np.int64))
        self.batch_size = int(batch_size)
        self.device, self.shuffle, self.seed = device, shuffle, int(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.index) / self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.index
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = order[torch.randperm(len(order), generator=g)]
        for s in range(0, len(order), self.batch_size):
            rows = order[s : s + self.batch_size]
            x = to_float_nchw(self.images[rows]).to(self.device)
            yield x, self.targets[rows].to(self.device)


def train_net(
    net: FeatureNet,
    task: str,
    images: np.ndarray,
    targets: np.ndarray,
    train_index: np.ndarray,
    valid_index: np.ndarray,
    folder: Path,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    log: Log = None,
) -> dict:
    """Train ``net`` for ``epochs`` (Adam, cosine decay per epoch) in the generic loop,
    checkpoints under ``folder``; loads the epoch with the lowest validation loss
    back into ``net`` and returns ``{"history", "best_epoch"}``."""
    torch.manual_seed(seed)
    device = next(net.parameters()).device
    imgs = torch.from_numpy(np.ascontiguousarray(images))
    tgt = torch.from_numpy(np.ascontiguousarray(targets))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs))
    loaders = [
        ArrayBatches(imgs, tgt, idx, batch_size, device=device, shuffle=shuffle, seed=seed)
        for idx, shuffle in ((train_index, True), (valid_index, False))
    ]
    trainer = EpochTrainer(
        net, EvaluatorObjective(task, seed), opt, sched, loaders[0], loaders[1], folder,
        epochs=epochs, keep_checkpoints=0, device=device,
        log=(lambda s: log(f"evaluator {s}")) if log else (lambda s: None),
    )  # fmt: skip
    history = trainer.fit()  # its bars follow the switch (open_evaluator sets it)
    net.load_state_dict(load_checkpoint(Path(folder) / "checkpoints" / "best.pt")["model"])
    net.eval()
    best = min(history, key=EvaluatorObjective(task).score)["epoch"]
    return {"history": history, "best_epoch": best}


__all__ = ["ROTATIONS", "ArrayBatches", "EvaluatorObjective", "batch_terms", "train_net"]

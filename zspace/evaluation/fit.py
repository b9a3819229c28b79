"""Training the evaluator's feature net: seeded batches, one objective per task,
a checkpoint per epoch (zspace.checkpoint: atomic, loadable with weights_only=True)
and a progress bar.

A small loop of its own: zspace.training.Trainer is the AE/VAE loop (its loss,
config, run folder and history are those of a run). When training gets its
generic epoch loop (model + objective + loaders + checkpoint folder), this
function is meant to become one call of it; the objectives below already compute
named terms from a batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from zspace.checkpoint import load_checkpoint, save_checkpoint
from zspace.errors import ZspaceError
from zspace.evaluation.nets import FeatureNet, rotate_batch

Log = Callable[[str], None] | None


def to_float(batch_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [0, 1]."""
    return batch_u8.permute(0, 3, 1, 2).float().mul_(1.0 / 255.0)


def objective(task: str):
    """``fn(net, x, y, generator) -> {"loss": tensor, "correct": n, "count": n}``."""

    def classes(net, x, y, gen):
        _, logits = net(x)
        return {
            "loss": F.cross_entropy(logits, y),
            "correct": (logits.argmax(1) == y).sum(),
            "count": torch.tensor(len(y)),
        }

    def attributes(net, x, y, gen):
        _, logits = net(x)
        known = y != 0
        target = (y > 0).float()
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        n_known = known.sum().clamp(min=1)
        return {
            "loss": (loss * known).sum() / n_known,
            "correct": (((logits > 0) == (y > 0)) & known).sum(),
            "count": known.sum(),
        }

    def rotation(net, x, y, gen):
        turned, turns = rotate_batch(x, gen)
        _, logits = net(turned)
        turns = turns.to(logits.device)
        return {
            "loss": F.cross_entropy(logits, turns),
            "correct": (logits.argmax(1) == turns).sum(),
            "count": torch.tensor(len(turns)),
        }

    return {"classes": classes, "attributes": attributes, "rotation": rotation}[task]


def batches(images: torch.Tensor, targets: torch.Tensor, index: np.ndarray, size: int, seed: int):
    """Seeded shuffled (x, y) batches of the rows ``index`` (seed None: in order)."""
    order = torch.as_tensor(index)
    if seed is not None:
        g = torch.Generator().manual_seed(int(seed))
        order = order[torch.randperm(len(order), generator=g)]
    for s in range(0, len(order), size):
        rows = order[s : s + size]
        yield to_float(images[rows]), targets[rows]


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
    progress: bool = True,
) -> dict:
    """Train ``net`` for ``epochs`` (Adam, cosine decay), keep the epoch with the best
    validation loss (``folder/best.pt``) and load it back; returns the history."""
    torch.manual_seed(seed)
    device = next(net.parameters()).device
    imgs = torch.from_numpy(np.ascontiguousarray(images))
    tgt = torch.from_numpy(np.ascontiguousarray(targets))
    fn = objective(task)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * math.ceil(len(train_index) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    history, best = [], math.inf
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        row = {"epoch": epoch}
        for part, index in (("train", train_index), ("valid", valid_index)):
            training = part == "train"
            net.train(training)
            gen = torch.Generator().manual_seed(seed * 1000 + (epoch if training else 0))
            shuffle = seed * 1000 + epoch if training else None
            total = correct = count = 0.0
            n_batches = math.ceil(len(index) / batch_size)
            bar = tqdm(
                total=n_batches, desc=f"evaluator epoch {epoch}/{epochs} {part}", leave=False,
                disable=not progress, mininterval=0.5, dynamic_ncols=True,
            )  # fmt: skip
            with torch.set_grad_enabled(training):
                for x, y in batches(imgs, tgt, index, batch_size, shuffle):
                    out = fn(net, x.to(device), y.to(device), gen)
                    if training:
                        opt.zero_grad(set_to_none=True)
                        out["loss"].backward()
                        opt.step()
                        sched.step()
                    total += float(out["loss"].detach()) * len(x)
                    correct += float(out["correct"])
                    count += float(out["count"])
                    bar.update(1)
            bar.close()
            loss = total / max(1, len(index))
            if not math.isfinite(loss):
                raise ZspaceError(f"evaluator training: non-finite loss in epoch {epoch}")
            row[f"{part}_loss"] = loss
            row[f"{part}_accuracy"] = correct / max(1.0, count)
        row["seconds"] = round(time.perf_counter() - started, 3)
        history.append(row)
        is_best = row["valid_loss"] < best
        best = min(best, row["valid_loss"])
        state = {"model": net.state_dict(), "task": task, "valid_loss": row["valid_loss"]}
        save_checkpoint(folder, state, epoch=epoch, keep=0, is_best=is_best)
        if log:
            log(
                f"evaluator epoch {epoch}/{epochs}: loss {row['train_loss']:.4f}, valid loss "
                f"{row['valid_loss']:.4f}, valid accuracy {row['valid_accuracy']:.3f}, "
                f"{row['seconds']:.1f} s"
            )
    net.load_state_dict(load_checkpoint(folder / "best.pt")["model"])
    net.eval()
    return {"history": history, "best_epoch": min(history, key=lambda r: r["valid_loss"])["epoch"]}

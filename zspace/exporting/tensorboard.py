"""TensorBoard training logs: a training callback writing event files under ``RUN/tb/``.

``train.log = ["tensorboard"]`` turns it on (the flow adds a ``TensorBoardLogger`` to
the training callbacks). Per epoch it writes every numeric key of the
history row under the same name as in history.jsonl (``total``, ``reco``, ``kl``,
``val_total``, ``lr``, ...), a grid of fixed validation images with their
reconstructions (from mu for a VAE, so the grid changes only with the model), and
histograms of the radius |z| (and, for a VAE, |mu| and logvar) of a fixed batch.

The logger never changes training: its forward passes run without gradients, in
eval mode, inside a forked RNG, so a run logs the same losses with and without it.
On resume it rewrites the scalars of the kept epochs from history.jsonl and purges
what a redone epoch replaces; on a rank other than 0 it does nothing.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from zspace.config import to_toml
from zspace.core.checks import require
from zspace.exporting.common import quiet
from zspace.generation.images import tile, to_uint8
from zspace.training import Callback

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

LOG_DIR = "tb"
GRID_IMAGES = 16
GRID_COLUMNS = 8
HIST_IMAGES = 512


def logged_epochs(folder: Path) -> set[int]:
    """Epochs whose scalars TensorBoard already shows from earlier sessions (read with its
    own reader, which applies the purges of redone epochs)."""
    if not any(folder.glob("events.out.tfevents.*")):
        return set()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    guidance = {"scalars": 0, "images": 1, "histograms": 1, "tensors": 1}
    acc = EventAccumulator(str(folder), size_guidance=guidance)
    quiet(acc.Reload)  # its purge notices are expected here
    return {e.step for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)}


class TensorBoardLogger(Callback):
    """A training callback (``on_train_start``, ``on_epoch_end``, ``on_train_end``)."""

    def __init__(self) -> None:
        # fails now, before training, when not installed
        require("tensorboard", "tensorboard", "train.log = ['tensorboard']")
        self._writer_cls = importlib.import_module("torch.utils.tensorboard").SummaryWriter
        self.writer: SummaryWriter | None = None  # opened with the run folder (_open)
        self._active = False
        self._done: list[dict[str, Any]] = []
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------ callback

    def on_train_start(self, trainer: Any) -> None:
        self._active = bool(getattr(trainer, "is_main", True))
        if self._active:
            self._done = [dict(r) for r in trainer.history]  # epochs before this session
            self._batch = trainer.fixed_batch(max(GRID_IMAGES, HIST_IMAGES))

    def _open(self, trainer: Any) -> SummaryWriter:
        """Create the writer once the run folder exists (after the first checkpoint), so a
        run that fails in its first epoch leaves no folder behind."""
        folder = Path(trainer.run_dir) / LOG_DIR
        done = self._done
        logged = logged_epochs(folder)
        # purge_step: TensorBoard hides older events at steps >= it (a redone epoch)
        writer = self._writer_cls(str(folder), purge_step=len(done) + 1 if done else None)
        self.writer = writer
        for row in done:  # epochs trained without logging: their scalars from the history
            if int(row["epoch"]) not in logged:
                self._scalars(writer, row)
        writer.add_text("config", "```\n" + to_toml(trainer.cfg) + "\n```", len(done))
        return writer

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        if not self._active:
            return
        writer = self.writer if self.writer is not None else self._open(trainer)
        epoch = int(row["epoch"])
        self._scalars(writer, row)
        if "lr" not in row:
            writer.add_scalar("lr", trainer.opt.param_groups[0]["lr"], epoch)
        grid, hists = self.snapshot(trainer)
        writer.add_image("reconstructions", grid, epoch, dataformats="HWC")
        for name, values in hists.items():
            writer.add_histogram(name, values, epoch)
        writer.flush()

    def on_train_end(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # ------------------------------------------------------------ pieces

    def _scalars(self, writer: SummaryWriter, row: dict[str, Any]) -> None:
        """Every finite number of a history row, under its key."""
        for key, v in row.items():
            number = isinstance(v, int | float) and not isinstance(v, bool)
            if key != "epoch" and number and math.isfinite(v):
                writer.add_scalar(key, float(v), int(row["epoch"]))

    @torch.no_grad()
    def snapshot(self, trainer: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The reconstruction grid (H, W, C) uint8 and the histogram arrays, computed
        without touching the model's mode, gradients or the global RNG."""
        assert self._batch is not None
        inputs, targets = self._batch
        model = trainer.model
        device = inputs.device
        devices = [device.index or 0] if device.type == "cuda" else []
        was_training = model.training
        try:
            model.eval()
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(int(trainer.cfg.seed))  # the same z-draws every epoch
                enc = model.encoder(inputs)
                n = min(GRID_IMAGES, len(inputs))
                code = enc.mu if enc.mu is not None else enc.z
                recon = torch.sigmoid(model.decoder(code[:n]))
        finally:
            model.train(was_training)
        rows = [to_uint8(targets[:n].float()), to_uint8(recon.float())]
        if trainer.cfg.data.task != "reconstruct":
            rows.insert(0, to_uint8(inputs[:n].float()))
        hists = {"radius": enc.z.float().norm(dim=1).cpu().numpy()}
        if enc.mu is not None:
            hists["radius_mu"] = enc.mu.float().norm(dim=1).cpu().numpy()
            hists["logvar"] = enc.logvar.float().flatten().cpu().numpy()
        return tile(rows, min(GRID_COLUMNS, n)), hists

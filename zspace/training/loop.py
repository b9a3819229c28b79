"""The generic epoch loop: one model, one objective, seeded batches, safe checkpoints.

``EpochTrainer`` knows nothing about autoencoders. An ``Objective`` turns a batch
into the loss to minimise and a few named terms; the loop runs the epochs, shows a
progress bar, checks for NaN, averages the terms per epoch, asks the objective for
the history row and its score, and writes checkpoints that *carry the history rows
up to their epoch*. The checkpoint is the source of truth: ``history.jsonl`` is
rewritten from it after every save, so a crash between the two files never leaves
a run that cannot resume (issue 18), and ``best.pt`` is re-derived from the kept
history when a run is resumed to an earlier epoch (issue 12).

Per batch the loop writes the terms into a device buffer and synchronises with
the host only every ``SYNC_EVERY`` batches (progress bar, NaN check), so on a GPU
it adds almost nothing to the step time. ``graph`` (``zspace.training.step``), when
set, runs the full training batches as one replayed CUDA graph each.

Several processes (torchrun, ``zspace.training.distributed``): the model is
wrapped in DistributedDataParallel (batch norms made to normalise the global
batch), each process takes its ``Part`` of every global batch, its loss is
weighted by ``part size * processes / global size`` so DDP's gradient average is
exactly the gradient of the global batch's mean loss, and the terms are summed
across processes (weighted by the part sizes) at every sync point, so every
process sees the global batch means one process would and the NaN check stops
all of them at the same batch. Only rank 0 writes checkpoints and history, logs
and shows the bar; the processes agree after every epoch's writes, so a failure
there ends all of them.

Precision: ``fp16`` runs the forward under autocast with a ``GradScaler`` whose
state is checkpointed; the steps it skips (inf/NaN gradients) are counted in the
history as ``skipped_steps``.

Used by the AE/VAE trainer (``zspace.training.trainer``) and by the evaluation
stage's feature models.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from zspace.core.device import autocast
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_bytes, undo_on_error
from zspace.core.progress import bar, progress
from zspace.data.loader import part_bounds
from zspace.runs.checkpoint import epoch_files, load_checkpoint, save_checkpoint
from zspace.runs.folder import write_history
from zspace.training.distributed import Dist, quiet_log
from zspace.training.step import compiled
from zspace.training.syncbn import convert_sync_batchnorm

SYNC_EVERY = 20


class NonFiniteLoss(ZspaceError):
    pass


@dataclass(frozen=True)
class Part:
    """Rows ``start:stop`` of a global batch of ``total`` rows: what this process sees
    (the whole batch, ``Part(0, n, n)``, in one process)."""

    start: int
    stop: int
    total: int

    @property
    def size(self) -> int:
        return self.stop - self.start


class Objective(Protocol):
    """What one step computes. ``names`` label the terms ``__call__`` returns.

    An objective that draws per-image randomness (a VAE's eps) takes a keyword
    ``part: Part`` as well, draws for ``part.total`` rows and keeps rows
    ``part.start:part.stop``, so any number of processes train on the same draws.
    Under DDP a process's part of a last batch smaller than the number of
    processes may be empty: the loss must then be a finite 0 (mean over no rows).
    """

    names: tuple[str, ...]

    def __call__(
        self, model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, the batch's mean terms as a 1-D tensor in ``names`` order)."""
        ...

    def row(
        self, epoch: int, train: dict[str, float], valid: dict[str, float] | None
    ) -> dict[str, Any]:
        """The history row of an epoch from the mean terms of its batches."""
        ...

    def score(self, row: dict[str, Any]) -> float:
        """Lower is better; ``best.pt`` holds the epoch with the lowest score."""
        ...


class Callback:
    """Hooks a caller wires into training (loggers, live figures). Every method is
    optional; they run on the main process only."""

    def on_train_start(self, trainer: Any) -> None:
        pass

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        pass

    def on_train_end(self, trainer: Any) -> None:
        pass


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():  # (a CPU run leaves CUDA, and its RNG, untouched)
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _rank_seed(seed: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, rank, 7919]).generate_state(1)[0])


def _takes_part(objective: Any) -> bool:
    try:
        return "part" in inspect.signature(objective).parameters
    except (TypeError, ValueError):
        return False


class EpochTrainer:
    """Runs the epochs of one model and objective; checkpoints and history live in ``folder``.

    ``before_first_save`` runs once, just before the first checkpoint of a fresh
    run is written (the AE trainer writes config.toml and meta.json there), and the
    two are all-or-nothing (``core.fileio.undo_on_error``), so a run that fails in its
    first epoch, or while saving it (a full disk), leaves no folder behind.

    ``dist`` (default: the open process group, if any) makes this one process of a
    DDP run; loaders then either yield this process's parts themselves
    (``world_size`` equal to the run's, with ``parts()``) or whole global batches
    the loop slices. ``compile`` (a ``train.compile`` mode) wraps the (DDP) model in
    ``torch.compile`` (``training.step.compiled``). Progress bars follow the package's
    switch (``zspace.core.progress``), on rank 0 only.
    Dropout and other draws from the global torch RNG get a stream of their own on
    every rank but 0, and each rank's RNG state is checkpointed.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        objective: Objective,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        train_loader: Any,
        valid_loader: Any | None,
        folder: Path,
        *,
        epochs: int,
        keep_checkpoints: int = 3,
        device: torch.device,
        precision: str = "fp32",
        compile: str = "off",
        dist: Dist | None = None,
        extra_state: Callable[[], dict[str, Any]] | None = None,
        before_first_save: Callable[[], None] | None = None,
        callbacks: Iterable[Callback] = (),
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model
        self.step_model = model  # the DDP / compiled wrapper once fit() starts
        self.objective = objective
        self.opt = optimizer
        self.sched = scheduler
        self.train_loader = train_loader
        self.valid_loader = valid_loader
        self.folder = Path(folder)
        self.epochs = int(epochs)
        self.keep = int(keep_checkpoints)
        self.device = device
        self.precision = precision
        self.extra_state = extra_state or dict
        self.before_first_save = before_first_save
        self.callbacks = list(callbacks)
        self.log = log or quiet_log
        self.history: list[dict[str, Any]] = []
        self.best = math.inf
        self.start_epoch = self.epoch = self.saved = 0  # saved: the last checkpoint's epoch
        self.dist = dist if dist is not None else Dist.current()
        self.is_main = self.dist.is_main
        self.world = self.dist.world_size if self.dist.enabled else 1
        self.compile = compile
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        self.skipped = 0  # steps the scaler skipped in the current epoch
        self._prepared = False
        self._pass_part = _takes_part(objective)
        self._peer_rng: list[dict[str, Any]] = []
        if self.world > 1 and self.dist.rank > 0:
            torch.manual_seed(_rank_seed(torch.initial_seed(), self.dist.rank))
        self.graph: Any = None  # a GraphedStep for full training batches (training.step)

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder / "checkpoints"

    # ---------------------------------------------------------------- state

    def state(self) -> dict[str, Any]:
        out = {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "rng": _rng_state(),
            "best": self.best,
            "history": [dict(r) for r in self.history],
            **self.extra_state(),
        }
        if self.scaler is not None:
            out["scaler"] = self.scaler.state_dict()
        if self._peer_rng:
            out["rng_ranks"] = self._peer_rng  # ranks 1.. of a DDP run
        return out

    def restore(self, state: dict[str, Any], history: list[dict[str, Any]] | None = None) -> None:
        """Continue from a loaded checkpoint. Its own rows are the history; ``history``
        (history.jsonl) is used only for checkpoints written before they carried rows.
        Every process restores; only rank 0 repairs best.pt and rewrites the history."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        rank = self.dist.rank if self.world > 1 else 0
        if rank == 0:
            _set_rng_state(state["rng"])
        elif rank <= len(state.get("rng_ranks", ())):
            _set_rng_state(state["rng_ranks"][rank - 1])
        # else: a run resumed on more processes; this rank keeps its fresh stream
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = self.epoch = self.saved = int(state["epoch"])
        rows = state.get("history")
        if rows is None:
            rows = [r for r in (history or []) if r["epoch"] <= self.start_epoch]
        self.history = [dict(r) for r in rows]
        if (epochs := [r["epoch"] for r in self.history]) != list(range(1, self.start_epoch + 1)):
            raise ZspaceError(
                f"{self.folder / 'history.jsonl'} has epochs {epochs} up to "
                f"{self.start_epoch}; it does not match the checkpoint"
            )
        if self.is_main:
            self._repair_best()
            write_history(self.folder, self.history)

    def _repair_best(self) -> None:
        """Make ``best.pt`` the best epoch of the kept history that still has a checkpoint.

        After a resume to epoch k, best.pt may hold an epoch > k that the history no
        longer has; it is replaced by the lowest-scoring checkpoint among best.pt
        (when its epoch <= k) and the kept epoch files <= k."""
        folder = self.checkpoint_dir
        scores = {r["epoch"]: self.objective.score(r) for r in self.history}  # epochs 1..k
        candidates = {e: p for e, p in epoch_files(folder).items() if e in scores}
        best_file = folder / "best.pt"
        if best_file.is_file() and (best := int(load_checkpoint(best_file)["epoch"])) in scores:
            candidates[best] = best_file
        if not candidates:
            best_file.unlink(missing_ok=True)
            self.best = math.inf
            return
        epoch = min(candidates, key=lambda e: (scores[e], e))
        if candidates[epoch] != best_file:  # atomic, and a kill's temporary is cleaned later
            atomic_write_bytes(best_file, candidates[epoch].read_bytes())
        self.best = scores[epoch]

    # ---------------------------------------------------------------- loop

    def _prepare(self) -> None:
        """Wrap the model for the run once: SyncBatchNorm + DDP across processes, then
        torch.compile. Done when training starts, after any restore, since wrapping
        in DDP is itself a collective (rank 0's weights are broadcast)."""
        if self._prepared:
            return
        self._prepared = True
        step: torch.nn.Module = self.model
        if self.dist.enabled:
            self.model = convert_sync_batchnorm(self.model, self.device)
            ids = [self.device.index] if self.device.type == "cuda" else None
            step = DistributedDataParallel(self.model, device_ids=ids)
        self.step_model = compiled(step, self.compile)
        if self.graph is not None:
            self.graph.model = self.step_model

    def _parts(self, loader: Any, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, Part]]:
        """(x, target, part) of this process for every global batch of ``loader``."""
        if self.world == 1:
            for x, target in loader.epoch(epoch):
                yield x, target, Part(0, len(x), len(x))
        elif getattr(loader, "world_size", 1) == self.world:
            for (x, target), (_, start, stop, total) in zip(
                loader.epoch(epoch), loader.parts(), strict=True
            ):
                yield x, target, Part(start, stop, total)
        else:  # a loader of whole global batches: take this process's part
            for x, target in loader.epoch(epoch):
                start, stop = part_bounds(len(x), self.dist.rank, self.world)
                yield x[start:stop], target[start:stop], Part(start, stop, len(x))

    def _step(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.opt.step()
            return
        scale = self.scaler.get_scale()
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)  # skipped when the gradients hold inf/NaN
        self.scaler.update()
        if self.scaler.get_scale() < scale:  # the scale backs off exactly on a skip
            self.skipped += 1

    def run_epoch(self, epoch: int, *, train: bool) -> dict[str, float]:
        """Mean terms of one pass over the training (or validation) loader."""
        loader = self.train_loader if train else self.valid_loader
        assert loader is not None
        n = len(loader)
        names = self.objective.names
        terms = torch.zeros((n, len(names)), dtype=torch.float64, device=self.device)
        totals: list[int] = []
        self.step_model.train(train)
        desc = f"epoch {epoch}/{self.epochs}" + ("" if train else " valid")
        with progress(None if self.is_main else False):
            ticker = bar(total=n, desc=desc)
        checked = 0
        with torch.set_grad_enabled(train):
            for i, (x, target, part) in enumerate(self._parts(loader, epoch)):
                if train and self.world == 1 and self.graph is not None and self.graph.fits(x):
                    terms[i] = self.graph(x, target, epoch)  # the CUDA-graphed step
                else:
                    with autocast(self.precision, self.device):
                        extra = {"part": part} if self._pass_part else {}
                        loss, batch_terms = self.objective(
                            self.step_model, x, target, epoch, **extra
                        )
                    if train:
                        # DDP averages the processes' gradients; this weight makes the
                        # average the gradient of the global batch's mean loss
                        weight = part.size * self.world / part.total
                        self._step(loss if self.world == 1 else loss * weight)
                    if self.world == 1:
                        terms[i] = batch_terms.detach()
                    elif part.size:
                        terms[i] = batch_terms.detach() * part.size
                    else:  # an empty part adds nothing, but a non-finite loss still shows
                        terms[i] = (batch_terms.detach() + loss.detach()) * 0.0
                totals.append(part.total)
                if (i + 1) % SYNC_EVERY == 0 or i + 1 == n:
                    if self.world > 1:
                        window = self.dist.all_reduce_(terms[checked : i + 1])
                        sizes = torch.tensor(totals, dtype=torch.float64)
                        window /= sizes.to(self.device).unsqueeze(1)
                    self._check_finite(terms, checked, i + 1, epoch, train)
                    checked = i + 1
                    totals.clear()
                    if not ticker.disable:
                        seen = terms[: i + 1].mean(dim=0).tolist()
                        ticker.set_postfix(
                            {k: f"{v:.4g}" for k, v in zip(names, seen, strict=True)},
                            refresh=False,
                        )
                        ticker.update(i + 1 - ticker.n)
        ticker.close()
        return dict(zip(names, terms.mean(dim=0).tolist(), strict=True))

    def _check_finite(
        self, terms: torch.Tensor, start: int, stop: int, epoch: int, train: bool
    ) -> None:
        finite = torch.isfinite(terms[start:stop]).all(dim=1)
        if bool(finite.all()):
            return
        batch = start + int((~finite).nonzero()[0, 0]) + 1
        where = "training" if train else "validation"
        last = self.checkpoint_dir / "last.pt"
        kept = f"; the last good checkpoint is {last}" if last.exists() else ""
        error = NonFiniteLoss(
            f"non-finite loss (NaN or inf) in epoch {epoch}, {where} batch {batch}: "
            f"training stopped{kept}"
        )
        # the terms were summed over the processes: every one of them stops here
        error.agreed = True  # type: ignore[attr-defined]
        error.quiet = not self.is_main
        raise error

    def _callbacks(self, hook: str, *args: Any) -> None:
        if self.is_main:
            for cb in self.callbacks:
                getattr(cb, hook)(self, *args)

    def fit(self) -> list[dict[str, Any]]:
        self._prepare()
        self.dist.agreed(lambda: self._callbacks("on_train_start"))
        for epoch in range(self.start_epoch + 1, self.epochs + 1):
            self.epoch = epoch
            started = time.perf_counter()
            lr = self.opt.param_groups[0]["lr"]
            self.skipped = 0
            train = self.run_epoch(epoch, train=True)
            valid = self.run_epoch(epoch, train=False) if self.valid_loader is not None else None
            self.sched.step()
            row = self.objective.row(epoch, train, valid)
            row.update(lr=lr, seconds=round(time.perf_counter() - started, 3))
            if self.scaler is not None:
                row["skipped_steps"] = self.skipped
            if self.world > 1:
                self._peer_rng = self.dist.all_gather(_rng_state())[1:]

            def finish(row: dict[str, Any] = row) -> None:
                self.save_epoch(row)
                self._callbacks("on_epoch_end", row)

            self.dist.agreed(finish)
        self.dist.agreed(lambda: self._callbacks("on_train_end"))
        return self.history

    def save_epoch(self, row: dict[str, Any]) -> None:
        """Checkpoint first (it carries the rows), then history.jsonl derived from it.
        Every process keeps the row; only rank 0 writes."""
        epoch = int(row["epoch"])
        self.history.append(row)
        score = self.objective.score(row)
        if is_best := score < self.best:
            self.best = score
        if not self.is_main:
            return
        first, self.before_first_save = self.before_first_save, None
        with undo_on_error() if first is not None else contextlib.nullcontext():
            if first is not None:
                first()
            save_checkpoint(
                self.checkpoint_dir, self.state(), epoch=epoch, keep=self.keep, is_best=is_best
            )
        self.saved = epoch
        write_history(self.folder, self.history)
        self.log(self.format_row(row))

    def format_row(self, row: dict[str, Any]) -> str:
        """The log line of an epoch: the objective's ``shown`` terms (every number of
        the row when it names none), the learning rate and the time."""
        keys = getattr(self.objective, "shown", row)
        parts = [f"epoch {row['epoch']}/{self.epochs}"]
        for k in keys:
            if k not in ("epoch", "lr", "seconds") and isinstance(row.get(k), float):
                parts.append(f"{k} {row[k]:.6g}")
        parts += [f"lr {row['lr']:.3g}", f"{row['seconds']:.1f}s"]
        return "  ".join(parts)

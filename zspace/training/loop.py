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
it adds almost nothing to the step time.

Used by the AE/VAE trainer (``zspace.training.trainer``) and by the evaluation
stage's feature models.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from zspace.checkpoint import epoch_files, load_checkpoint, save_checkpoint
from zspace.device import autocast
from zspace.errors import ZspaceError
from zspace.fileio import atomic_write_bytes, atomic_write_text

SYNC_EVERY = 20


class NonFiniteLoss(ZspaceError):
    pass


class Objective(Protocol):
    """What one step computes. ``names`` label the terms ``__call__`` returns."""

    names: tuple[str, ...]

    def __call__(
        self, model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, the batch's terms as a 1-D tensor in ``names`` order)."""
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
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def write_history_file(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    import json

    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


class EpochTrainer:
    """Runs the epochs of one model and objective; checkpoints and history live in ``folder``.

    ``before_first_save`` runs once, just before the first checkpoint of a fresh
    run is written (the AE trainer writes config.toml and meta.json there), so a
    run that fails in its first epoch leaves no folder behind.
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
        step_model: torch.nn.Module | None = None,
        extra_state: Callable[[], dict[str, Any]] | None = None,
        before_first_save: Callable[[], None] | None = None,
        callbacks: Iterable[Callback] = (),
        log: Callable[[str], None] = print,
        progress: bool = True,
    ) -> None:
        self.model = model
        self.step_model = step_model or model
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
        self.log = log
        self.progress = progress
        self.history: list[dict[str, Any]] = []
        self.best = math.inf
        self.start_epoch = 0
        self.epoch = 0
        self.is_main = True

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder / "checkpoints"

    @property
    def history_path(self) -> Path:
        return self.folder / "history.jsonl"

    # ---------------------------------------------------------------- state

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "rng": _rng_state(),
            "best": self.best,
            "history": [dict(r) for r in self.history],
            **self.extra_state(),
        }

    def restore(self, state: dict[str, Any], history: list[dict[str, Any]] | None = None) -> None:
        """Continue from a loaded checkpoint. Its own rows are the history; ``history``
        (history.jsonl) is used only for checkpoints written before they carried rows."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        self.start_epoch = self.epoch = int(state["epoch"])
        rows = state.get("history")
        if rows is None:
            rows = [r for r in (history or []) if r["epoch"] <= self.start_epoch]
        self.history = [dict(r) for r in rows]
        if [r["epoch"] for r in self.history] != list(range(1, self.start_epoch + 1)):
            raise ZspaceError(
                f"{self.history_path} has epochs {[r['epoch'] for r in self.history]} up to "
                f"{self.start_epoch}; it does not match the checkpoint"
            )
        self._repair_best()
        write_history_file(self.history_path, self.history)

    def _repair_best(self) -> None:
        """Make ``best.pt`` the best epoch of the kept history that still has a checkpoint.

        After a resume to epoch k, best.pt may hold an epoch > k that the history no
        longer has; it is replaced by the lowest-scoring checkpoint among best.pt
        (when its epoch <= k) and the kept epoch files <= k."""
        folder = self.checkpoint_dir
        scores = {r["epoch"]: self.objective.score(r) for r in self.history}
        candidates: dict[int, Path] = {
            e: p for e, p in epoch_files(folder).items() if e <= self.start_epoch
        }
        best_file = folder / "best.pt"
        if best_file.is_file():
            best_epoch = int(load_checkpoint(best_file)["epoch"])
            if best_epoch <= self.start_epoch:
                candidates[best_epoch] = best_file
        candidates = {e: p for e, p in candidates.items() if e in scores}
        if not candidates:
            best_file.unlink(missing_ok=True)
            self.best = math.inf
            return
        epoch = min(candidates, key=lambda e: (scores[e], e))
        if candidates[epoch] != best_file:  # atomic, and a kill's temporary is cleaned later
            atomic_write_bytes(best_file, candidates[epoch].read_bytes())
        self.best = scores[epoch]

    # ---------------------------------------------------------------- loop

    def run_epoch(self, epoch: int, *, train: bool) -> dict[str, float]:
        """Mean terms of one pass over the training (or validation) loader."""
        loader = self.train_loader if train else self.valid_loader
        assert loader is not None
        n = len(loader)
        names = self.objective.names
        terms = torch.zeros((n, len(names)), dtype=torch.float64, device=self.device)
        self.model.train(train)
        desc = f"epoch {epoch}/{self.epochs}" + ("" if train else " valid")
        bar = tqdm(
            total=n, desc=desc, leave=False, disable=not self.progress, mininterval=0.5,
            dynamic_ncols=True,
        )  # fmt: skip
        checked = 0
        with torch.set_grad_enabled(train):
            for i, (x, target) in enumerate(loader.epoch(epoch)):
                with autocast(self.precision, self.device):
                    loss, batch_terms = self.objective(self.step_model, x, target, epoch)
                if train:
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.opt.step()
                terms[i] = batch_terms.detach()
                if (i + 1) % SYNC_EVERY == 0 or i + 1 == n:
                    self._check_finite(terms, checked, i + 1, epoch, train)
                    checked = i + 1
                    seen = terms[: i + 1].mean(dim=0).tolist()
                    bar.set_postfix(
                        {k: f"{v:.4g}" for k, v in zip(names, seen, strict=True)}, refresh=False
                    )
                    bar.update(i + 1 - bar.n)
        bar.close()
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
        raise NonFiniteLoss(
            f"non-finite loss (NaN or inf) in epoch {epoch}, {where} batch {batch}: "
            f"training stopped{kept}"
        )

    def fit(self) -> list[dict[str, Any]]:
        for cb in self.callbacks:
            cb.on_train_start(self)
        for epoch in range(self.start_epoch + 1, self.epochs + 1):
            self.epoch = epoch
            started = time.perf_counter()
            lr = self.opt.param_groups[0]["lr"]
            train = self.run_epoch(epoch, train=True)
            valid = self.run_epoch(epoch, train=False) if self.valid_loader is not None else None
            self.sched.step()
            row = self.objective.row(epoch, train, valid)
            row.update(lr=lr, seconds=round(time.perf_counter() - started, 3))
            self.save_epoch(row)
            for cb in self.callbacks:
                cb.on_epoch_end(self, row)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history

    def save_epoch(self, row: dict[str, Any]) -> None:
        """Checkpoint first (it carries the rows), then history.jsonl derived from it."""
        epoch = int(row["epoch"])
        self.history.append(row)
        score = self.objective.score(row)
        is_best = score < self.best
        if is_best:
            self.best = score
        if self.before_first_save is not None:
            self.before_first_save()
            self.before_first_save = None
        save_checkpoint(
            self.checkpoint_dir, self.state(), epoch=epoch, keep=self.keep, is_best=is_best
        )
        write_history_file(self.history_path, self.history)
        self.log(self.format_row(row))

    def format_row(self, row: dict[str, Any]) -> str:
        parts = [f"epoch {row['epoch']}/{self.epochs}"]
        for k, v in row.items():
            if k in ("epoch", "lr", "seconds") or not isinstance(v, float):
                continue
            parts.append(f"{k} {v:.6g}")
        parts += [f"lr {row['lr']:.3g}", f"{row['seconds']:.1f}s"]
        return "  ".join(parts)

"""The training loop: Adam, optional step decay, per-epoch metrics and checkpoints.

Per batch the loop does the step and writes three loss scalars into a device
buffer; it synchronises with the host only every ``SYNC_EVERY`` batches (for the
progress bar and the NaN check), so it adds almost nothing to the step time on a
GPU. Epoch metrics are plain means over the batches, and ``total`` is computed as
``reco + kl`` so the identity holds exactly in the history.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from zspace.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from zspace.config import (
    Config,
    apply_overrides,
    check_geometry,
    config_from_dict,
    load_config,
    to_dict,
    to_toml,
)
from zspace.data import BatchLoader, ImageData, load_data, split_indices
from zspace.device import autocast, check_precision, pick_device
from zspace.errors import ZspaceError
from zspace.losses import fact_at_epoch, vae_loss
from zspace.models import AutoEncoder, summary
from zspace.run import Run
from zspace.runfolder import (
    default_run_dir,
    read_config,
    read_history,
    write_config,
    write_history,
    write_meta,
)

SYNC_EVERY = 20
# Keys that may change when a run is resumed; anything else would make the resumed
# run a different experiment from the one its history describes.
RESUMABLE_CHANGES = {
    "train.epochs",
    "train.device",
    "train.keep_checkpoints",
    "train.threads",
    "train.compile",
}


class NonFiniteLoss(ZspaceError):
    pass


@dataclass
class EpochResult:
    reco: float
    kl: float
    kl_raw: float
    batches: int

    @property
    def total(self) -> float:
        return self.reco + self.kl


def input_shape_of(data: ImageData) -> tuple[int, int, int]:
    h, w, c = data.shape
    return c, h, w


def prepare(cfg: Config) -> tuple[ImageData, dict[str, np.ndarray]]:
    """Load the data and check it fits the model, before anything is written."""
    data = load_data(cfg.data)
    h, w, c = data.shape
    if h != w:
        raise ZspaceError(f"data: images are {h}x{w}; zspace models need square images")
    check_geometry(cfg, h, c)
    return data, split_indices(data, cfg.data.valid_fraction, cfg.seed)


def make_optimizer(model: torch.nn.Module, cfg: Config):
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    step = cfg.train.lr_decay_every
    sched = torch.optim.lr_scheduler.StepLR(
        opt, step_size=step if step > 0 else 10**9, gamma=cfg.train.lr_decay_factor
    )
    return opt, sched


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _config_diff(a: Config, b: Config) -> list[str]:
    da, db = to_dict(a), to_dict(b)
    diffs = []
    for section, values in da.items():
        if isinstance(values, dict):
            for key, value in values.items():
                if db[section][key] != value:
                    diffs.append(f"{section}.{key}")
        elif db[section] != values:
            diffs.append(section)
    return diffs


class Trainer:
    """Holds the model, optimiser and loaders of one run and runs its epochs."""

    def __init__(
        self,
        cfg: Config,
        data: ImageData,
        splits: dict[str, np.ndarray],
        run_dir: Path,
        *,
        log: Callable[[str], None] = print,
        progress: bool = True,
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.log = log
        self.progress = progress
        self.device = pick_device(cfg.train.device)
        check_precision(cfg.train.precision, self.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)
        self.model = AutoEncoder(cfg.model, input_shape_of(data)).to(self.device)
        self.model = self.model.to(memory_format=torch.channels_last)
        self.step_model = torch.compile(self.model) if cfg.train.compile == "on" else self.model
        self.opt, self.sched = make_optimizer(self.model, cfg)
        bs = cfg.train.batch_size
        self.train_loader = BatchLoader(
            data.images, splits["train"], bs, cfg.data, device=self.device, seed=cfg.seed
        )
        self.valid_loader = None
        if len(splits.get("valid", ())):
            self.valid_loader = BatchLoader(
                data.images, splits["valid"], bs, cfg.data,
                device=self.device, shuffle=False, seed=cfg.seed + 1,
            )  # fmt: skip
        self.history: list[dict[str, Any]] = []
        self.best = math.inf
        self.start_epoch = 0

    # ---------------------------------------------------------------- state

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "rng": _rng_state(),
            "config": to_toml(self.cfg),
            "best": self.best,
        }

    def restore(self, path: Path) -> None:
        state = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        _set_rng_state({k: v.cpu() if torch.is_tensor(v) else v for k, v in state["rng"].items()})
        self.best = float(state.get("best", math.inf))
        self.start_epoch = int(state["epoch"])
        self.history = [r for r in read_history(self.run_dir) if r["epoch"] <= self.start_epoch]
        if len(self.history) != self.start_epoch:
            raise ZspaceError(
                f"{self.run_dir}/history.jsonl has {len(self.history)} epochs up to "
                f"{self.start_epoch}; it does not match the checkpoint"
            )

    # ---------------------------------------------------------------- loop

    def _run_epoch(self, epoch: int, fact: float, *, train: bool) -> EpochResult:
        loader = self.train_loader if train else self.valid_loader
        assert loader is not None
        n = len(loader)
        losses = torch.zeros((n, 3), dtype=torch.float64, device=self.device)
        self.model.train(train)
        m = self.cfg.model
        desc = f"epoch {epoch}/{self.cfg.train.epochs}" + ("" if train else " valid")
        bar = tqdm(
            total=n, desc=desc, leave=False, disable=not self.progress, mininterval=0.5,
            dynamic_ncols=True,
        )  # fmt: skip
        checked = 0
        with torch.set_grad_enabled(train):
            for i, (x, target) in enumerate(loader.epoch(epoch)):
                with autocast(self.cfg.train.precision, self.device):
                    logits, enc = self.step_model(x)
                terms = vae_loss(
                    logits, target, enc.mu, enc.logvar,
                    fact=fact, kind=m.loss, per_pixel=m.per_pixel,
                )  # fmt: skip
                if train:
                    self.opt.zero_grad(set_to_none=True)
                    terms.total.backward()
                    self.opt.step()
                losses[i] = torch.stack((terms.reco, terms.kl, terms.kl_raw)).detach()
                if (i + 1) % SYNC_EVERY == 0 or i + 1 == n:
                    self._check_finite(losses, checked, i + 1, epoch, train)
                    checked = i + 1
                    seen = losses[: i + 1].mean(dim=0).tolist()
                    bar.set_postfix(
                        total=f"{seen[0] + seen[1]:.4g}", reco=f"{seen[0]:.4g}",
                        kl=f"{seen[1]:.4g}", refresh=False,
                    )  # fmt: skip
                    bar.update(i + 1 - bar.n)
        bar.close()
        reco, kl, kl_raw = losses.mean(dim=0).tolist()
        return EpochResult(reco, kl, kl_raw, n)

    def _check_finite(
        self, losses: torch.Tensor, start: int, stop: int, epoch: int, train: bool
    ) -> None:
        chunk = losses[start:stop]
        finite = torch.isfinite(chunk).all(dim=1)
        if bool(finite.all()):
            return
        batch = start + int((~finite).nonzero()[0, 0]) + 1
        where = "training" if train else "validation"
        last = self.run_dir / "checkpoints" / "last.pt"
        kept = f"; the last good checkpoint is {last}" if last.exists() else ""
        raise NonFiniteLoss(
            f"non-finite loss (NaN or inf) in epoch {epoch}, {where} batch {batch}: "
            f"training stopped{kept}"
        )

    def fit(self) -> list[dict[str, Any]]:
        cfg = self.cfg
        for epoch in range(self.start_epoch + 1, cfg.train.epochs + 1):
            started = time.perf_counter()
            fact = fact_at_epoch(cfg.model.fact, cfg.model.fact_warmup_epochs, epoch)
            lr = self.opt.param_groups[0]["lr"]
            tr = self._run_epoch(epoch, fact, train=True)
            row: dict[str, Any] = {
                "epoch": epoch, "total": tr.total, "reco": tr.reco, "kl": tr.kl,
                "kl_raw": tr.kl_raw,
            }  # fmt: skip
            if self.valid_loader is not None:
                va = self._run_epoch(epoch, fact, train=False)
                row.update(val_total=va.total, val_reco=va.reco, val_kl=va.kl)
            else:
                row.update(val_total=None, val_reco=None, val_kl=None)
            self.sched.step()
            row.update(lr=lr, seconds=round(time.perf_counter() - started, 3), fact=fact)
            self.history.append(row)
            score = row["val_total"] if row["val_total"] is not None else row["total"]
            is_best = score < self.best
            if is_best:
                self.best = score
            save_checkpoint(
                self.run_dir / "checkpoints", self.state(),
                epoch=epoch, keep=cfg.train.keep_checkpoints, is_best=is_best,
            )  # fmt: skip
            write_history(self.run_dir, self.history)
            self.log(format_epoch(row, cfg.train.epochs))
        return self.history


def format_epoch(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    parts += [f"{k} {row[k]:.6g}" for k in ("total", "reco", "kl")]
    if row.get("val_total") is not None:
        parts += [f"{k} {row[k]:.6g}" for k in ("val_total", "val_reco", "val_kl")]
    parts += [f"lr {row['lr']:.3g}", f"{row['seconds']:.1f}s"]
    return "  ".join(parts)


def train(
    config: Config | str | Path | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool | int | str = False,
    overrides: list[str] | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> Run:
    """Train a model and return its Run.

    ``config`` is a Config, a TOML path, or None for the defaults; ``overrides``
    are ``section.key=value`` strings. ``resume=True`` continues ``run_dir`` from
    its last checkpoint, ``resume=N`` from epoch N (the history after N is dropped).
    """
    if resume is not False:
        return _resume(config, run_dir, resume, overrides or [], log, progress)
    cfg = config if isinstance(config, Config) else load_config(config, overrides)
    if isinstance(config, Config) and overrides:
        raise ZspaceError("train(): pass overrides with a TOML path, or apply them to the Config")
    data, splits = prepare(cfg)
    run = Path(run_dir) if run_dir is not None else default_run_dir(cfg.model.variational)
    if run.exists() and any(run.iterdir()):
        raise ZspaceError(
            f"run folder {run} is not empty; pick another --run-dir or resume it with --resume"
        )
    trainer = Trainer(cfg, data, splits, run, log=log, progress=progress)
    run.mkdir(parents=True, exist_ok=True)
    write_config(run, cfg)
    write_meta(run, _meta(cfg, data, splits, trainer))
    write_history(run, [])
    _announce(trainer, data, splits)
    trainer.fit()
    return Run.load(run, device=trainer.device)


def _resume(config, run_dir, resume, overrides, log, progress) -> Run:
    if run_dir is None:
        raise ZspaceError("--resume needs --run-dir naming the run to continue")
    run = Path(run_dir)
    saved = read_config(run)
    if config is None:
        cfg = config_from_dict(apply_overrides(to_dict(saved), overrides))
    else:
        cfg = config if isinstance(config, Config) else load_config(config, overrides)
    changed = [k for k in _config_diff(saved, cfg) if k not in RESUMABLE_CHANGES]
    if changed:
        raise ZspaceError(
            f"cannot resume {run} with a changed {changed[0]}: only "
            f"{', '.join(sorted(RESUMABLE_CHANGES))} may change"
        )
    which = "last" if resume is True else resume
    ckpt = resolve_checkpoint(run / "checkpoints", which)
    data, splits = prepare(cfg)
    trainer = Trainer(cfg, data, splits, run, log=log, progress=progress)
    trainer.restore(ckpt)
    if trainer.start_epoch >= cfg.train.epochs:
        raise ZspaceError(
            f"{run} already has {trainer.start_epoch} epochs; raise train.epochs to continue"
        )
    write_config(run, cfg)
    log(f"resuming {run} from epoch {trainer.start_epoch}")
    trainer.fit()
    return Run.load(run, device=trainer.device)


def _meta(cfg: Config, data: ImageData, splits, trainer: Trainer) -> dict[str, Any]:
    return {
        "kind": "vae" if cfg.model.variational else "ae",
        "input_shape": list(input_shape_of(data)),
        "data": data.describe(),
        "splits": {k: int(len(v)) for k, v in splits.items()},
        "device": str(trainer.device),
    }


def _announce(trainer: Trainer, data: ImageData, splits) -> None:
    log = trainer.log
    counts = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    h, w, c = data.shape
    log(f"data: {data.source}  {h}x{w}x{c}  ({counts})")
    log(f"device: {trainer.device}  precision: {trainer.cfg.train.precision}")
    log(summary(trainer.model))
    log(f"run folder: {trainer.run_dir}")

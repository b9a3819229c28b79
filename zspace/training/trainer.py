"""Training an AE or VAE into a run folder: the objective, the trainer, ``train_run()``.

The epoch loop itself is generic (``zspace.training.loop``); this module adds what
is particular to autoencoders: the model and optimiser built from the config, the
reconstruction + weighted-KL objective (``total == reco + kl`` exactly in the
history), the run folder's config.toml and meta.json, and the resume rules.

Under torchrun every process runs ``train_run()``: each resolves the config, reads the
data and checks the run folder, then they agree (one line, exit 2 on all of them
when any failed) before rank 0 writes anything. ``train.batch_size`` is the
global batch; the VAE's eps is drawn for it from the run's seed and sliced per
process, so a run gives the same numbers on any number of processes.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.config import (
    Config,
    apply_overrides,
    config_from_dict,
    config_from_toml,
    load_config,
    to_dict,
    to_toml,
)
from zspace.config.parse import config_diff
from zspace.config.validate import flatten
from zspace.core.checks import PATH, check_hooks, check_type
from zspace.core.device import check_precision, pick_device, set_tf32
from zspace.core.errors import ZspaceError, first_line
from zspace.core.fileio import check_writable, make_dirs
from zspace.core.progress import progress as progress_switch
from zspace.data import BatchLoader, ImageData, input_shape_of, prepare
from zspace.data.arrays import save_arrays
from zspace.data.loader import epoch_seed, to_float_nchw
from zspace.data.prepare import new_run_data
from zspace.data.tasks import make_input
from zspace.models.autoencoder import AutoEncoder, summary
from zspace.models.footprint import check_model_fits
from zspace.models.losses import fact_at_epoch, vae_loss
from zspace.runs.checkpoint import check_fits_model, load_checkpoint, resolve_checkpoint
from zspace.runs.folder import (
    check_new_run_dir,
    data_meta,
    default_run_dir,
    origin_of,
    read_config,
    read_history,
    read_meta,
    write_config,
    write_meta,
    writer_lock,
)
from zspace.runs.run import Run
from zspace.training.distributed import Dist, PeerFailed, session
from zspace.training.loop import Callback, EpochTrainer, Part
from zspace.training.step import GraphedStep, check_graphs, set_capturable

Callbacks = Iterable[Callback] | Callable[[Config], Iterable[Callback]]

# Keys that may change when a run is resumed; anything else would make the resumed
# run a different experiment from the one its history describes.
RESUMABLE_CHANGES = {
    "train.epochs",
    "train.device",
    "train.keep_checkpoints",
    "train.threads",
    "train.tf32",
    "train.compile",
    "train.cuda_graphs",
    "train.log",
}


class AutoencoderObjective:
    """Reconstruction loss plus fact * KL (zero for an AE), per batch.

    The VAE's eps comes from a generator of its own, seeded per epoch from the run's
    seed (one fixed stream for validation, so validation losses compare across
    epochs), and is drawn for the whole global batch: every process keeps its rows."""

    names: tuple[str, ...] = ("reco", "kl", "kl_raw")
    shown = ("total", "reco", "kl", "val_total", "val_reco", "val_kl")  # the log line's terms

    def __init__(self, cfg: Config) -> None:
        self.m = cfg.model
        self.seed = cfg.seed
        self._gen: torch.Generator | None = None
        self._stream: tuple[int, bool, str] | None = None
        # a CUDA-graphed run draws eps from the CUDA generator, which a graph replay
        # advances (training.step); a private generator would be baked into the graph
        self.global_eps = False

    def fact(self, epoch: int) -> float:
        return fact_at_epoch(self.m.fact, self.m.fact_warmup_epochs, epoch)

    graph_key = fact  # what of the epoch a CUDA-graphed step bakes in: the KL weight

    def eps(self, training: bool, epoch: int, part: Part, device: torch.device) -> torch.Tensor:
        """N(0, I) noise for rows ``part.start:part.stop`` of the global batch."""
        stream = (epoch if training else 0, training, str(device))
        if self._gen is None or stream != self._stream:
            self._gen = torch.Generator(device=device)
            self._gen.manual_seed(epoch_seed(self.seed, stream[0], 2 if training else 3))
            self._stream = stream
        eps = torch.randn((part.total, self.m.z_dim), generator=self._gen, device=device)
        return eps[part.start : part.stop]

    def __call__(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        target: torch.Tensor,
        epoch: int,
        part: Part | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        part = part or Part(0, len(x), len(x))
        private = self.m.variational and not self.global_eps
        eps = self.eps(model.training, epoch, part, x.device) if private else None
        logits, enc = model(x, eps=eps)
        t = vae_loss(
            logits, target, enc.mu, enc.logvar,
            fact=self.fact(epoch), kind=self.m.loss, per_pixel=self.m.per_pixel,
        )  # fmt: skip
        return t.total, torch.stack((t.reco, t.kl, t.kl_raw))

    def row(
        self, epoch: int, train: dict[str, float], valid: dict[str, float] | None
    ) -> dict[str, Any]:
        v = valid or {}
        return {
            "epoch": epoch, "total": train["reco"] + train["kl"], "reco": train["reco"],
            "kl": train["kl"], "kl_raw": train["kl_raw"],
            "val_total": v["reco"] + v["kl"] if v else None, "val_reco": v.get("reco"),
            "val_kl": v.get("kl"), "fact": self.fact(epoch),
        }  # fmt: skip

    def score(self, row: dict[str, Any]) -> float:
        return row["val_total"] if row.get("val_total") is not None else row["total"]


def scaled_lr(cfg: Config) -> float:
    """``train.lr`` for ``train.batch_size`` by ``train.lr_scaling``: "sqrt" multiplies
    it by sqrt(batch_size / lr_base_batch) (the rule for Adam, docs/performance.md),
    "linear" by batch_size / lr_base_batch (the rule for SGD), "none" keeps it."""
    t = cfg.train
    ratio = t.batch_size / t.lr_base_batch
    return t.lr * {"none": 1.0, "sqrt": ratio**0.5, "linear": ratio}[t.lr_scaling]


_KILLED_AFTER: list[int] = []  # epochs written while ZSPACE_TEST_KILL_AFTER_EPOCHS is set


class Trainer(EpochTrainer):
    """The model, optimiser and loaders of one run, on the generic epoch loop.

    Callbacks see this object: ``cfg``, ``model``, ``run_dir``, ``device``,
    ``history``, ``opt``, ``is_main`` and ``fixed_batch(n)``; they are made (when
    ``callbacks`` is a function of the config) and run on rank 0 only. The model and
    batch are checked against the device's memory before anything is allocated."""

    folder_existed = True  # False: a fresh run's folder, removed when nothing was saved

    model: AutoEncoder  # itself, never a wrapper (those are the loop's step_model)

    def __init__(
        self,
        cfg: Config,
        data: ImageData,
        splits: dict[str, np.ndarray],
        run_dir: Path,
        *,
        log: Callable[[str], None] | None = None,
        callbacks: Callbacks = (),
        before_first_save: Callable[[], None] | None = None,
        dist: Dist | None = None,
    ) -> None:
        dist = dist if dist is not None else Dist.current()
        device = dist.device(pick_device(cfg.train.device))
        check_precision(cfg.train.precision, device)
        world = dist.world_size if dist.enabled else 1
        bs = cfg.train.batch_size
        if bs < world:
            raise ZspaceError(
                f"train.batch_size = {bs} is the global batch, split over {world} processes: "
                f"it must be at least {world}"
            )
        shape, batch = input_shape_of(data), max(1, min(bs, len(splits["train"])))
        check_model_fits(cfg.model, shape, device, batch=batch, precision=cfg.train.precision)
        if callable(callbacks):
            callbacks = callbacks(cfg) if dist.is_main else ()
        self.tf32 = set_tf32(device, cfg.train.tf32)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)
        model = AutoEncoder(cfg.model, shape).to(device)
        # Module.to takes memory_format (torch's _parse_to); its stub lists no such overload
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # on the CPU Adam's fused kernel (one pass over each tensor instead of six: 1.02x a
        # whole step, docs/performance.md); a resumed run keeps its checkpoint's choice.
        # The kernel assumes the optimiser's state has its parameter's strides, which
        # holds: the state is made like the channels_last parameters, and saved so.
        fused = True if device.type == "cpu" else None
        opt = torch.optim.Adam(model.parameters(), lr=scaled_lr(cfg), fused=fused)
        step = cfg.train.lr_decay_every if cfg.train.lr_decay_every > 0 else 10**9
        sched = torch.optim.lr_scheduler.StepLR(opt, step, gamma=cfg.train.lr_decay_factor)
        train_loader, valid_loader = (
            BatchLoader(
                data.images, splits[s], bs, cfg.data, device=device, shuffle=s == "train",
                seed=cfg.seed + (s == "valid"), rank=dist.rank, world_size=world,
            ) if s == "train" or len(splits.get(s, ())) else None
            for s in ("train", "valid")
        )  # fmt: skip
        objective = AutoencoderObjective(cfg)
        super().__init__(
            model, objective, opt, sched, train_loader, valid_loader, run_dir,
            epochs=cfg.train.epochs, keep_checkpoints=cfg.train.keep_checkpoints,
            device=device, precision=cfg.train.precision, compile=cfg.train.compile,
            dist=dist, extra_state=lambda: {"config": to_toml(self.cfg)},
            before_first_save=before_first_save, callbacks=callbacks, log=log,
        )  # fmt: skip
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.data = data
        self.splits = splits
        if cfg.train.cuda_graphs == "on":
            check_graphs(device, cfg.train.precision, cfg.train.compile, world)
            objective.global_eps = True
            # the loop points the graph at its (compiled) step model when training starts
            self.graph = GraphedStep(
                model, objective, opt, batch_size=bs, precision=cfg.train.precision
            )

    def restore(self, state: dict[str, Any], history: list[dict[str, Any]] | None = None) -> None:
        super().restore(state, history)
        # Adam's fused kernel is the CPU's (a run keeps its checkpoint's choice there, so
        # older runs resume unfused, exactly); elsewhere torch's default
        if self.device.type != "cpu":
            for group in self.opt.param_groups:
                group["fused"] = None
        # a checkpoint of a graphed run keeps Adam's step counters on the GPU
        set_capturable(self.opt, self.graph is not None)

    def save_epoch(self, row: dict[str, Any]) -> None:
        super().save_epoch(row)
        # Test hook: ZSPACE_TEST_KILL_AFTER_EPOCHS=N makes the process SIGKILL itself (no
        # clean-up, as kill -9) once it wrote its N-th epoch, counted over its runs: crash
        # tests (tests/test_sweep.py, tests/test_distributed.py) stop there, never polling.
        if at := os.environ.get("ZSPACE_TEST_KILL_AFTER_EPOCHS"):
            _KILLED_AFTER.append(row["epoch"])
            if len(_KILLED_AFTER) == int(at):
                os.kill(os.getpid(), signal.SIGKILL)

    def fixed_batch(self, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of the first ``n`` validation images (training images when
        there is no validation split), float NCHW on the device, the same every call."""
        split = "valid" if len(self.splits.get("valid", ())) else "train"
        rows = np.sort(np.asarray(self.splits[split]))[:n]
        u8 = torch.from_numpy(np.ascontiguousarray(self.data.images[rows]))
        target = to_float_nchw(u8).to(self.device)
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 104729)
        return make_input(target, self.cfg.data, gen), target


def resolve_config(config: Config | str | Path | None, overrides: Sequence[str] | None) -> Config:
    """One rule for fresh and resumed runs: ``overrides`` apply on top of ``config``
    (a Config, a TOML path, or None for the defaults); a Config built by hand is
    checked as a file would be."""
    check_type("config", config, (Config, *PATH, type(None)), "a Config, a TOML file or None")
    check_type("overrides", overrides, (list, tuple, type(None)), "a list of strings", each=str)
    overrides = list(overrides or [])
    if isinstance(config, Config):
        return config_from_dict(apply_overrides(to_dict(config), overrides))
    return load_config(config, overrides)


def train_run(
    config: Config | str | Path | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool | int | str = False,
    overrides: list[str] | None = None,
    data: Any = None,
    labels: Any = None,
    label_names: Any = None,
    callbacks: Callbacks = (),
    log: Callable[[str], None] | None = None,
    progress: bool | None = None,
) -> Run:
    """Train a model and return its Run (``zspace.train`` adds the loggers of ``train.log``).

    ``config`` is a Config, a TOML path, or None for the defaults; ``overrides``
    (``section.key=value`` strings) apply on top of it. ``callbacks``: Callback
    objects, or a function of the resolved Config returning them (how the flow wires
    the loggers of ``train.log``). ``resume=True`` continues
    ``run_dir`` from its last checkpoint, ``resume=N`` from epoch N (the history
    after N is dropped). Nothing is written before the first epoch ends, so a run
    that fails in its first epoch leaves no folder behind.

    ``data``: images in memory instead of ``data.source`` — a NumPy array or torch
    tensor, uint8 (N, H, W[, C]) or float (N, C, H, W) in [0, 1] — with optional
    ``labels`` (N,) and ``label_names``. They are saved into the run folder
    (``RUN/data/``) and the saved config's source is ``run:data``, so every later
    stage reads the run exactly as a file-backed one.

    The run folder is held (``runs.folder.writer_lock``) from the checks to the end:
    a second train or resume of it meanwhile is refused, naming this process.

    Under torchrun (or inside an open process group) this is one process of a DDP
    run: every process calls it with the same arguments; rank 0 logs, writes and
    holds the folder. ``progress=False`` hides the bars; otherwise they follow the
    caller's switch (by default on a terminal only, never in a log: the CLI and the
    flow pass True).
    """
    check_type("config", config, (Config, *PATH, type(None)), "a Config, a TOML file or None")
    check_type("run_dir", run_dir, (*PATH, type(None)), "a folder (str or Path) or None")
    check_type("resume", resume, (bool, int, str), "False, True, an epoch or 'best'/'last'")
    check_type("overrides", overrides, (list, tuple, type(None)), "a list of strings", each=str)
    if not (callable(callbacks) or isinstance(callbacks, list | tuple)):
        raise TypeError(f"callbacks = {callbacks!r}: expected a list of Callbacks or a function")
    check_hooks(log, progress)
    threads = torch.get_num_threads()  # train.threads holds while training, not after
    try:
        with session() as dist, ExitStack() as hold:
            log = log if dist.is_main else None
            with progress_switch(None if progress is not False and dist.is_main else False):
                args = (config, run_dir, list(overrides or []), callbacks, log, dist, hold)
                if resume is not False:
                    trainer = _resume(*args, resume, data)
                else:
                    trainer = _fresh(*args, (data, labels, label_names))
                _fit(trainer, dist)
                return Run.load(trainer.run_dir, device=trainer.device)
    finally:
        torch.set_num_threads(threads)


def _fresh(config, run_dir, overrides, callbacks, log, dist: Dist, hold, arrays) -> Trainer:
    data, labels, label_names = arrays

    def setup() -> Trainer:
        cfg = resolve_config(config, overrides)
        run = Path(run_dir) if run_dir is not None else default_run_dir(cfg.model.variational)
        existed = run.is_dir()  # a folder the lock creates goes with it (nothing saved)
        if dist.is_main:  # only rank 0 writes, so only it probes and holds the folder
            check_writable(run, "--run-dir", folder=True)
            hold.enter_context(writer_lock(run))
        check_new_run_dir(run)
        cfg, images, splits = new_run_data(cfg, data, labels, label_names)

        def create_folder() -> None:  # undone with the first checkpoint when that fails
            make_dirs(run)
            if data is not None:
                save_arrays(run / "data", images)
            write_config(run, cfg)
            meta = data_meta(cfg.model.variational, images, splits)
            write_meta(run, {**meta, "device": str(trainer.device), "processes": trainer.world})

        trainer = Trainer(
            cfg, images, splits, run, log=log, callbacks=callbacks,
            before_first_save=create_folder, dist=dist,
        )  # fmt: skip
        trainer.folder_existed = existed
        return trainer

    # every process has checked the config, the data and the folder before rank 0
    # writes anything; a failure on any of them ends all of them here
    trainer = dist.agreed(setup)
    if run_dir is None:  # the default folder's name holds the time: take rank 0's
        trainer.run_dir = trainer.folder = Path(dist.all_gather(str(trainer.run_dir))[0])
    if dist.is_main:
        _announce(trainer, trainer.data, trainer.splits)
    return trainer


def _resume(config, run_dir, overrides, callbacks, log, dist: Dist, hold, resume, data) -> Trainer:
    def setup() -> tuple[Trainer, dict[str, Any], list[dict[str, Any]], Path]:
        if data is not None:
            raise ZspaceError("train(data=...) starts a new run; a resumed run reads its own data")
        if run_dir is None:
            raise ZspaceError("--resume needs --run-dir naming the run to continue")
        run = Path(run_dir)
        if not run.is_dir():
            raise ZspaceError(f"--resume: run folder not found: {run}")
        if dist.is_main:
            hold.enter_context(writer_lock(run))
        if (origin := origin_of(read_meta(run))) is not None:
            raise ZspaceError(
                f"--resume: {run} is an imported model (factory {origin.get('factory')}); "
                "zspace did not train it, so there is nothing to resume"
            )
        on_disk = read_config(run)
        which = "last" if resume is True else resume
        path = resolve_checkpoint(run / "checkpoints", which)
        state = load_checkpoint(path)
        if not isinstance(state.get("config"), str):
            raise ZspaceError(f"checkpoint {path} carries no config; it cannot be resumed")
        trained = config_from_toml(state["config"], f"the config inside {path}")
        cfg = resolve_config(on_disk if config is None else config, overrides)
        set_keys = {o.partition("=")[0].strip() for o in overrides}
        for key in config_diff(trained, cfg):
            if key not in RESUMABLE_CHANGES:
                where = (
                    "from --set" if key in set_keys
                    else "in the given config" if config is not None
                    else "in config.toml"
                )  # fmt: skip
                raise ZspaceError(
                    f"cannot resume {run} with a changed {key} ({flatten(trained)[key]!r} in the "
                    f"checkpoint, {flatten(cfg)[key]!r} {where}): only "
                    f"{', '.join(sorted(RESUMABLE_CHANGES))} may change"
                )
        done = int(state["epoch"])
        if done >= cfg.train.epochs:  # before restore() rewrites anything
            raise ZspaceError(f"{run} already has {done} epochs; raise train.epochs to continue")
        images, splits = prepare(cfg, run)
        trainer = Trainer(cfg, images, splits, run, log=log, callbacks=callbacks, dist=dist)
        # the state read above (on the CPU) is restored as is: load_state_dict copies
        # weights and optimiser state onto the model's device, so it is read once
        check_fits_model(trainer.model, state, path)
        return trainer, state, read_history(run), path

    trainer, state, history, path = dist.agreed(setup)

    def restore() -> None:
        try:  # every process; rank 0 rewrites the history once all of it is read
            trainer.restore(state, history)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
            what = f"{type(exc).__name__}: {first_line(exc)}"
            raise ZspaceError(f"checkpoint {path} cannot be resumed: damaged ({what})") from None
        if dist.is_main:
            write_config(trainer.run_dir, trainer.cfg)

    dist.agreed(restore)
    trainer.log(f"resuming {trainer.run_dir} from epoch {trainer.start_epoch}")
    return trainer


def _fit(trainer: Trainer, dist: Dist) -> None:
    try:
        trainer.fit()
    except KeyboardInterrupt:  # Ctrl-C: say what is kept and how to go on (cli.main prints it)
        run, epochs = trainer.run_dir, f"of {trainer.epochs}"
        if trainer.saved:
            raise KeyboardInterrupt(
                f"in epoch {trainer.epoch} {epochs}; epoch {trainer.saved} is saved: continue "
                f"with zspace train --out {run} --resume"
            ) from None
        gone = not trainer.folder_existed  # the writer lock removes the folder it made
        kept = f"the run folder {run} is gone" if gone else f"nothing was saved in {run}"
        raise KeyboardInterrupt(
            f"in epoch {trainer.epoch} {epochs}, before the first checkpoint: {kept} (nothing "
            "to resume)"
        ) from None
    except RuntimeError as exc:
        # another process died between agreement points (killed, a crash): gloo/NCCL
        # report the lost connection here; say so in one line instead of a traceback
        if not (dist.enabled and _lost_peer(exc)):
            raise
        error = PeerFailed(
            "lost contact with another process of this run: it stopped (see its own "
            "message or torchrun's report)"
        )
        error.quiet = not dist.is_main
        raise error from None


def _lost_peer(exc: BaseException) -> bool:
    import torch.distributed as torch_dist

    if isinstance(exc, getattr(torch_dist, "DistError", ())):
        return True
    text = str(exc)
    return any(s in text for s in ("Connection closed by peer", "Connection reset by peer"))


def _announce(trainer: Trainer, data: ImageData, splits) -> None:
    log = trainer.log
    counts = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    h, w, c = data.shape
    log(f"data: {data.source}  {h}x{w}x{c}  ({counts})")
    t = trainer.cfg.train
    tf32 = " (TF32)" if trainer.tf32 else ""
    line = f"device: {trainer.device}  precision: {t.precision}{tf32}"
    if trainer.world > 1:
        line += f"  processes: {trainer.world} (DDP, global batch {t.batch_size})"
    log(line)
    log(summary(trainer.model))
    log(f"run folder: {trainer.run_dir}")

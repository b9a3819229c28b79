"""A trained run, loaded from its folder: config, history and the model in eval mode.

``encode`` and ``decode`` work on plain tensors in batches without gradients, so
notebooks and the later stages (encode, generate) need nothing else.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.config import Config
from zspace.core.checks import PATH, check_type
from zspace.core.device import pick_device
from zspace.core.errors import ZspaceError
from zspace.data import ImageData, prepare
from zspace.data.arrays import image_layout, to_nchw
from zspace.models.autoencoder import AutoEncoder, count_parameters
from zspace.models.footprint import check_model_fits
from zspace.models.interface import latent_dim
from zspace.models.wrapped import WrappedModel
from zspace.runs.bundle import WEIGHTS_FILE, is_bundle, load_weights, read_bundle
from zspace.runs.checkpoint import check_fits_model, load_checkpoint, resolve_checkpoint
from zspace.runs.folder import (
    NO_HISTORY,
    origin_of,
    origin_text,
    read_config,
    read_history,
    read_meta,
)
from zspace.runs.imported import load_imported


@dataclass(repr=False)
class Run:
    path: Path
    config: Config
    meta: dict[str, Any]
    model: AutoEncoder | WrappedModel
    device: torch.device
    epoch: int
    checkpoint: str | int = "best"
    _data: Any = field(default=None, compare=False)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        checkpoint: str | int = "best",
        device: str | torch.device | None = None,
    ) -> Run:
        """Open a run folder with the model from ``best``, ``last`` or an epoch's
        checkpoint; ``path`` may also be a safetensors bundle (``zspace export RUN
        --format safetensors``)."""
        check_type("path", path, (Run, *PATH), "a run folder or bundle (str or Path)")
        path = run_path(path)
        check_type("checkpoint", checkpoint, (str, int), "best, last or an epoch number")
        check_type("device", device, (str, torch.device, type(None)), "a device name or None")
        cfg = read_config(path)
        meta = read_meta(path)
        shape = input_shape(meta, path)
        dev = device if isinstance(device, torch.device) else pick_device(device or "auto")
        model: AutoEncoder | WrappedModel
        if origin_of(meta) is not None:  # a model the user brought: no checkpoints
            if checkpoint not in ("best", "last"):
                raise ZspaceError(f"{path} is an imported model: no checkpoint {checkpoint!r}")
            model = load_imported(path, meta, shape).to(dev)
            return cls(path, cfg, meta, model, dev, 0, checkpoint)
        check_model_fits(cfg.model, shape, dev, batch=1, training=False)
        model = AutoEncoder(cfg.model, shape).to(dev)
        if is_bundle(path):  # exported weights (safetensors), no checkpoints/
            weights, epoch = read_bundle(path, checkpoint)
            load_weights(model, weights, path / WEIGHTS_FILE)
        else:
            file = resolve_checkpoint(path / "checkpoints", checkpoint)
            state = load_checkpoint(file, dev)
            check_fits_model(model, state, file)
            model.load_state_dict(state["model"])
            epoch = int(state["epoch"])
        model.eval()
        return cls(path, cfg, meta, model, dev, epoch, checkpoint)

    def __repr__(self) -> str:
        """One line: ``Run('runs/x', vae z=16, epoch 12/12, best)``."""
        which = "" if isinstance(self.checkpoint, int) else f", {self.checkpoint}"
        kind = f"{'vae' if self.variational else 'ae'} z={self.z_dim}"
        if self.origin is not None:
            return f"Run({str(self.path)!r}, {kind}, imported)"
        epochs = f"epoch {self.epoch}/{self.config.train.epochs}"
        return f"Run({str(self.path)!r}, {kind}, {epochs}{which})"

    def summary(self) -> str:
        """What the run is: model, data, training so far, folder (``repr`` is one line)."""
        m, data, rows = self.config.model, self.meta.get("data", {}), self.history
        names = data.get("label_names") or []
        splits = ", ".join(f"{k} {v}" for k, v in self.meta.get("splits", {}).items())
        key = "val_total" if rows and rows[-1].get("val_total") is not None else "total"
        best = min(rows, key=lambda r: r[key], default=None)
        params = f"{count_parameters(self.model):,} parameters"
        model = (
            f"filters {list(m.encoder_filters)}, {params}, fact {m.fact:g}"
            if self.origin is None
            else f"latent shape {self.latent_shape}, {params}, {origin_text(self.meta)}"
        )
        lines = [
            repr(self),
            f"  model     {'VAE' if self.variational else 'AE'}, z_dim {self.z_dim}, input "
            f"{'x'.join(map(str, self.input_shape))}, {model}",
            f"  data      {self.config.data.source}, {data.get('count', '?')} images ({splits}), "
            f"{len(names)} classes"
            + (f": {', '.join(names[:10])}" if names else "")
            + (", ..." if len(names) > 10 else ""),
            f"  training  {len(rows)} of {self.config.train.epochs} epochs in the history; "
            f"this model: epoch {self.epoch} ({self.checkpoint}), on {self.device}"
            if self.origin is None
            else f"  training  {NO_HISTORY}; on {self.device}",
        ]
        if best is not None:
            lines[-1] += f"; best {key} {best[key]:.6g} at epoch {best['epoch']}"
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.summary())}</pre>"

    def data(self) -> tuple[ImageData, dict[str, np.ndarray]]:
        """The run's images and splits as training saw them (read once, then kept)."""
        if self._data is None:
            self._data = prepare(self.config, self.path, geometry=self.origin is None)
        return self._data

    @property
    def history(self) -> list[dict[str, Any]]:
        return read_history(self.path)

    @property
    def origin(self) -> dict[str, Any] | None:
        """Where an imported model comes from (meta.json's origin); None for zspace's own."""
        return origin_of(self.meta)

    @property
    def variational(self) -> bool:
        return self.model.variational

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the model expects."""
        return self.model.input_shape

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The latent's own shape: (D,) for a vector, (C, H, W) for a map."""
        return tuple(self.model.latent_shape)

    @property
    def z_dim(self) -> int:
        """D, the length of the flattened latent (what ``encode`` returns per image)."""
        return latent_dim(self.model)

    def as_batch(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Images to float NCHW in [0, 1], laid out as ``zspace.data.arrays.image_layout``
        says (uint8 NHWC, NCHW or NHW; floats in [0, 1] NCHW or NHW; one image may omit N).
        Floats in 0..255 and other shapes are refused with one line that shows the shape."""
        given = tuple(x.shape)
        if isinstance(x, np.ndarray) and (x.dtype == np.uint8 or x.dtype.kind == "f"):
            copy = not x.flags.writeable  # torch warns on read-only arrays (np.frombuffer)
            x = torch.from_numpy(np.array(x, order="C") if copy else np.ascontiguousarray(x))
        if not isinstance(x, torch.Tensor) or not (x.dtype == torch.uint8 or x.is_floating_point()):
            raise ZspaceError(
                f"images of dtype {x.dtype}, shape {given}: expected uint8 (0..255) or "
                f"floats in [0, 1]"
            )
        batch: torch.Tensor = to_nchw(
            x, image_layout(given, x.dtype == torch.uint8, self.input_shape)
        )
        if batch.dtype == torch.uint8:
            return batch.float().div_(255.0)  # in place: one pass less, the same numbers
        top = float(batch.max()) if batch.numel() else 0.0
        if top > 1.0 + 1e-3:
            raise ZspaceError(
                f"float images of shape {given} have values up to {top:.4g}: expected "
                f"[0, 1]; divide by 255 (or pass them as uint8)"
            )
        return batch.float()

    @torch.no_grad()
    def encode(
        self, x: torch.Tensor | np.ndarray, batch_size: int = 512
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(z, mu, logvar) on the CPU; mu and logvar are None for an AE.

        For a VAE, z is sampled with the model's eps_clip and eps_scale from the
        global torch RNG (seed it for reproducible z)."""
        x = self.as_batch(x)
        zs, mus, lvs = [], [], []
        for start in range(0, len(x), batch_size):
            out = self.model.encode(x[start : start + batch_size].to(self.device))
            zs.append(out.z.float().flatten(1).cpu())
            if out.mu is not None and out.logvar is not None:
                mus.append(out.mu.float().flatten(1).cpu())
                lvs.append(out.logvar.float().flatten(1).cpu())
        z = torch.cat(zs) if zs else torch.empty(0, self.z_dim)
        if not self.variational:
            return z, None, None
        return z, torch.cat(mus), torch.cat(lvs)

    @torch.no_grad()
    def decode(self, z: torch.Tensor | np.ndarray, batch_size: int = 512) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] on the CPU."""
        if isinstance(z, np.ndarray) and not z.flags.writeable:  # memory-mapped latents
            z = np.array(z, dtype=np.float32)
        z = torch.as_tensor(z, dtype=torch.float32)
        shape = self.latent_shape
        if z.ndim == 2 and z.shape[1] == self.z_dim:
            z = z.view(len(z), *shape)
        elif tuple(z.shape[1:]) != shape:
            raise ZspaceError(
                f"z of shape {tuple(z.shape)} does not fit this model: expected (N, "
                f"{self.z_dim})"
                + (f" or (N, {', '.join(map(str, shape))})" if len(shape) > 1 else "")
            )
        out = [
            self.model.decode(z[s : s + batch_size].to(self.device)).float().cpu()
            for s in range(0, len(z), batch_size)
        ]
        return torch.cat(out) if out else torch.empty(0, *self.input_shape)


RunLike = Run | str | Path  # what every stage function takes as ``run``


def input_shape(meta: dict[str, Any], run: Path) -> tuple[int, int, int]:
    """(C, H, W) from meta.json, checked: three positive integers."""
    shape = meta.get("input_shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        raise ZspaceError(
            f"{run / 'meta.json'}: input_shape {shape!r} is not [channels, height, width]"
        )
    return tuple(shape)  # type: ignore[return-value]


load_run = Run.load  # the public name: zspace.load_run(path, checkpoint=..., device=...)


def run_path(run: RunLike) -> Path:
    """The folder of a Run or a path, checked to exist: the one way every stage turns
    "a run or a path" into a folder."""
    check_type("run", run, (Run, *PATH), "a Run or a run folder (str or Path)")
    path = Path(run.path if isinstance(run, Run) else run)
    if not path.is_dir():
        raise ZspaceError(f"run folder not found: {path}")
    return path


def as_run(run: RunLike) -> Run:
    """A loaded Run (``best`` checkpoint) from a Run or a run folder."""
    return run if isinstance(run, Run) else Run.load(run_path(run))

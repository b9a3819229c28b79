"""A trained run, loaded from its folder: config, history and the model in eval mode.

``encode`` and ``decode`` work on plain tensors in batches without gradients, so
notebooks and the later stages (encode, generate) need nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.bundle import is_bundle, load_weights, read_bundle
from zspace.checkpoint import load_checkpoint, resolve_checkpoint
from zspace.config import Config
from zspace.data import ImageData, prepare
from zspace.device import pick_device
from zspace.errors import ZspaceError
from zspace.models import AutoEncoder
from zspace.runfolder import read_config, read_history, read_meta


@dataclass
class Run:
    path: Path
    config: Config
    meta: dict[str, Any]
    model: AutoEncoder
    device: torch.device
    epoch: int
    _data: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        checkpoint: str | int = "best",
        device: str | torch.device | None = None,
    ) -> Run:
        path = Path(path)
        if not path.is_dir():
            raise ZspaceError(f"run folder not found: {path}")
        cfg = read_config(path)
        meta = read_meta(path)
        dev = device if isinstance(device, torch.device) else pick_device(device or "auto")
        model = AutoEncoder(cfg.model, tuple(meta["input_shape"])).to(dev)
        if is_bundle(path):  # exported weights (safetensors), no checkpoints/
            weights, epoch = read_bundle(path, checkpoint)
            load_weights(model, weights, path)
        else:
            state = load_checkpoint(resolve_checkpoint(path / "checkpoints", checkpoint), dev)
            model.load_state_dict(state["model"])
            epoch = int(state["epoch"])
        model.eval()
        return cls(path, cfg, meta, model, dev, epoch)

    def data(self) -> tuple[ImageData, dict[str, np.ndarray]]:
        """The run's images and splits as training saw them (read once, then kept)."""
        if self._data is None:
            self._data = prepare(self.config, self.path)
        return self._data

    @property
    def history(self) -> list[dict[str, Any]]:
        return read_history(self.path)

    @property
    def variational(self) -> bool:
        return self.model.variational

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the model expects."""
        return self.model.input_shape

    def as_batch(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Images to float NCHW in [0, 1]: accepts float NCHW or uint8 NHWC (as stored)."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        if x.dtype == torch.uint8:
            if x.ndim == 3:
                x = x[None]
            x = x.permute(0, 3, 1, 2).float() / 255.0
        if x.ndim == 3:
            x = x[None]
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ZspaceError(
                f"images of shape {tuple(x.shape[1:])} do not fit this model, which expects "
                f"(C, H, W) = {tuple(self.input_shape)}"
            )
        return x.float()

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
            batch = x[start : start + batch_size].to(self.device)
            batch = batch.contiguous(memory_format=torch.channels_last)
            out = self.model.encoder(batch)
            zs.append(out.z.float().cpu())
            if out.mu is not None:
                mus.append(out.mu.float().cpu())
                lvs.append(out.logvar.float().cpu())
        z = torch.cat(zs) if zs else torch.empty(0, self.model.cfg.z_dim)
        if not self.variational:
            return z, None, None
        return z, torch.cat(mus), torch.cat(lvs)

    @torch.no_grad()
    def decode(self, z: torch.Tensor | np.ndarray, batch_size: int = 512) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] on the CPU."""
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.ndim != 2 or z.shape[1] != self.model.cfg.z_dim:
            raise ZspaceError(
                f"z of shape {tuple(z.shape)} does not fit this model: expected (N, "
                f"{self.model.cfg.z_dim})"
            )
        out = [
            torch.sigmoid(self.model.decoder(z[s : s + batch_size].to(self.device))).float().cpu()
            for s in range(0, len(z), batch_size)
        ]
        return torch.cat(out) if out else torch.empty(0, *self.input_shape)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor | np.ndarray, batch_size: int = 512) -> torch.Tensor:
        z, _, _ = self.encode(x, batch_size)
        return self.decode(z, batch_size)


def load_run(
    path: str | Path,
    checkpoint: str | int = "best",
    device: str | torch.device | None = None,
) -> Run:
    """Open a run folder with the model from ``best``, ``last`` or an epoch's checkpoint.

    ``path`` may also be a safetensors bundle (``zspace export RUN --format safetensors``)."""
    return Run.load(path, checkpoint=checkpoint, device=device)


def run_path(run: Run | str | Path) -> Path:
    """The folder of a Run or a path, checked to exist: the one way every stage turns
    "a run or a path" into a folder."""
    path = Path(run.path if isinstance(run, Run) else run)
    if not path.is_dir():
        raise ZspaceError(f"run folder not found: {path}")
    return path


def as_run(run: Run | str | Path) -> Run:
    """A loaded Run (``best`` checkpoint) from a Run or a run folder."""
    return run if isinstance(run, Run) else load_run(run_path(run))

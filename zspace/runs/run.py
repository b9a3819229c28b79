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

from zspace.config import Config
from zspace.core.device import pick_device
from zspace.core.errors import ZspaceError
from zspace.data import ImageData, prepare
from zspace.models.autoencoder import AutoEncoder
from zspace.models.footprint import check_model_fits
from zspace.runs.bundle import is_bundle, load_weights, read_bundle
from zspace.runs.checkpoint import check_fits_model, load_checkpoint, resolve_checkpoint
from zspace.runs.folder import read_config, read_history, read_meta


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
        """Open a run folder with the model from ``best``, ``last`` or an epoch's
        checkpoint; ``path`` may also be a safetensors bundle (``zspace export RUN
        --format safetensors``)."""
        path = run_path(path)
        cfg = read_config(path)
        meta = read_meta(path)
        shape = input_shape(meta, path)
        dev = device if isinstance(device, torch.device) else pick_device(device or "auto")
        check_model_fits(cfg.model, shape, dev, batch=1, training=False)
        model = AutoEncoder(cfg.model, shape).to(dev)
        if is_bundle(path):  # exported weights (safetensors), no checkpoints/
            weights, epoch = read_bundle(path, checkpoint)
            load_weights(model, weights, path)
        else:
            file = resolve_checkpoint(path / "checkpoints", checkpoint)
            state = load_checkpoint(file, dev)
            check_fits_model(model, state, file)
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
        """Images to float NCHW in [0, 1]. Accepts float NCHW in [0, 1], or uint8 images
        (0..255) as NHWC (as stored) or NCHW, converted; one image may omit N. Floats in
        0..255 and other shapes are refused with one line that shows the shape given."""
        given, (c, h, w) = tuple(x.shape), self.input_shape
        if isinstance(x, np.ndarray) and (x.dtype == np.uint8 or x.dtype.kind == "f"):
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not isinstance(x, torch.Tensor) or not (x.dtype == torch.uint8 or x.is_floating_point()):
            raise ZspaceError(
                f"images of dtype {x.dtype}, shape {given}: expected uint8 (0..255) or "
                f"floats in [0, 1]"
            )
        x = x[None] if x.ndim == 3 else x
        nchw = x.ndim == 4 and tuple(x.shape[1:]) == (c, h, w)
        nhwc = x.ndim == 4 and tuple(x.shape[1:]) == (h, w, c)
        if x.dtype == torch.uint8:
            if not (nchw or nhwc):
                raise ZspaceError(
                    f"uint8 images of shape {given} do not fit this model, which expects "
                    f"(N, H, W, C) = (N, {h}, {w}, {c}) or (N, C, H, W) = (N, {c}, {h}, {w})"
                )
            return (x if nchw else x.permute(0, 3, 1, 2)).float() / 255.0
        if not nchw:
            hint = "; these look like (N, H, W, C): use x.permute(0, 3, 1, 2)" if nhwc else ""
            raise ZspaceError(
                f"images of shape {given} do not fit this model, which expects (N, C, H, W) "
                f"= (N, {c}, {h}, {w}) floats in [0, 1] (or uint8 (N, H, W, C)){hint}"
            )
        top = float(x.max()) if x.numel() else 0.0
        if top > 1.0 + 1e-3:
            raise ZspaceError(
                f"float images of shape {given} have values up to {top:.4g}: expected "
                f"[0, 1]; divide by 255 (or pass them as uint8)"
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
            out = self.model.encoder(batch, fused=True)
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
        if isinstance(z, np.ndarray) and not z.flags.writeable:  # memory-mapped latents
            z = np.array(z, dtype=np.float32)
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
    path = Path(run.path if isinstance(run, Run) else run)
    if not path.is_dir():
        raise ZspaceError(f"run folder not found: {path}")
    return path


def as_run(run: RunLike) -> Run:
    """A loaded Run (``best`` checkpoint) from a Run or a run folder."""
    return run if isinstance(run, Run) else Run.load(run)

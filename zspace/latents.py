"""Encoding a split once and the latents file format (``RUN/latents/<split>.npz``).

The file holds z (N, d) float32; mu and logvar for a VAE; index (N,) int64 rows of
the data set; label (+ label_names) and attr (+ attr_names) when the source knows
them; and a few scalars (split, variational, eps_scale, seed). Analyses read only
this file, so they never load the model or the images again.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zspace.data.dataset import SPLITS as SPLIT_NAMES  # noqa: F401 - the one list, re-exported
from zspace.errors import ZspaceError
from zspace.fileio import atomic_write_bytes


@dataclass(frozen=True)
class Latents:
    split: str
    z: np.ndarray
    index: np.ndarray
    mu: np.ndarray | None = None
    logvar: np.ndarray | None = None
    label: np.ndarray | None = None
    label_names: tuple[str, ...] | None = None
    attr: np.ndarray | None = None
    attr_names: tuple[str, ...] | None = None
    eps_scale: float | None = None
    seed: int = 0

    @property
    def variational(self) -> bool:
        return self.mu is not None

    @property
    def z_dim(self) -> int:
        return int(self.z.shape[1])

    def __len__(self) -> int:
        return int(self.z.shape[0])


def latents_path(run_dir: str | Path, split: str = "train") -> Path:
    return Path(run_dir) / "latents" / f"{split}.npz"


def save_latents(path: str | Path, lat: Latents) -> Path:
    arrays: dict[str, Any] = {
        "z": lat.z.astype(np.float32),
        "index": lat.index.astype(np.int64),
        "split": np.array(lat.split),
        "variational": np.array(lat.variational),
        "seed": np.array(lat.seed),
        "eps_scale": np.array(np.nan if lat.eps_scale is None else lat.eps_scale),
    }
    if lat.mu is not None:
        arrays["mu"] = lat.mu.astype(np.float32)
        arrays["logvar"] = lat.logvar.astype(np.float32)
    if lat.label is not None:
        arrays["label"] = lat.label.astype(np.int64)
        if lat.label_names:
            arrays["label_names"] = np.array(lat.label_names, dtype=str)
    if lat.attr is not None:
        arrays["attr"] = lat.attr.astype(np.int8)
        arrays["attr_names"] = np.array(lat.attr_names or (), dtype=str)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_latents(run: Any, split: str = "train") -> Latents:
    """Read ``RUN/latents/<split>.npz`` (run: a folder or a Run)."""
    from zspace.run import run_path

    run_dir = run_path(run)
    path = latents_path(run_dir, split)
    if not path.is_file():
        raise ZspaceError(
            f"no latents for split {split!r} in {run_dir}: run `zspace encode {run_dir} "
            f"--split {split}` first"
        )
    with np.load(path, allow_pickle=False) as f:
        get = lambda k: f[k] if k in f.files else None  # noqa: E731
        eps = get("eps_scale")
        names = get("label_names")
        attr_names = get("attr_names")
        return Latents(
            split=str(f["split"]),
            z=f["z"],
            index=f["index"],
            mu=get("mu"),
            logvar=get("logvar"),
            label=get("label"),
            label_names=tuple(str(s) for s in names) if names is not None else None,
            attr=get("attr"),
            attr_names=tuple(str(s) for s in attr_names) if attr_names is not None else None,
            eps_scale=None if eps is None or np.isnan(eps) else float(eps),
            seed=int(f["seed"]) if "seed" in f.files else 0,
        )


def encode_split(
    run: Any,
    split: str = "train",
    eps_scale: float | None = None,
    batch_size: int = 512,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Encode every image of ``split`` with the run's encoder and write the latents file.

    Images are read as training read them (``zspace.data.prepare``) and fed through the
    run's task input (grey for recolor, seeded noise for denoise), in batches without
    gradients. For a VAE z is sampled with the model's eps settings from a torch RNG
    seeded with the config's seed, so encoding twice gives the same file.
    """
    import torch

    from zspace.data.tasks import make_input
    from zspace.run import as_run

    if batch_size < 1:
        raise ZspaceError(f"batch_size = {batch_size}: must be >= 1")
    run = as_run(run)
    cfg = run.config
    data, splits = run.data()
    if split not in splits:
        raise ZspaceError(
            f"split {split!r} does not exist for {cfg.data.source}; choose one of "
            f"{', '.join(splits)}"
        )
    idx = np.asarray(splits[split], dtype=np.int64)
    old_scale = run.model.eps_scale if run.variational else None
    if eps_scale is not None:
        if eps_scale < 0:
            raise ZspaceError(f"--eps-scale {eps_scale}: must be >= 0")
        if run.variational:
            run.model.eps_scale = float(eps_scale)
    zs, mus, lvs = [], [], []
    gen = torch.Generator().manual_seed(cfg.seed + 7919)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            for s in range(0, len(idx), batch_size):
                rows = idx[s : s + batch_size]
                x = run.as_batch(np.ascontiguousarray(data.images[rows]))
                x = make_input(x, cfg.data, gen)
                z, mu, lv = run.encode(x, batch_size)
                zs.append(z.numpy())
                if mu is not None:
                    mus.append(mu.numpy())
                    lvs.append(lv.numpy())
    finally:
        if old_scale is not None:
            run.model.eps_scale = old_scale
    d = run.model.cfg.z_dim
    lat = Latents(
        split=split,
        z=np.concatenate(zs) if zs else np.empty((0, d), np.float32),
        index=idx,
        mu=np.concatenate(mus) if mus else None,
        logvar=np.concatenate(lvs) if lvs else None,
        label=None if data.labels is None else np.asarray(data.labels)[idx],
        label_names=data.label_names,
        attr=None if data.attr is None else np.asarray(data.attr)[idx],
        attr_names=data.attr_names,
        eps_scale=(float(eps_scale) if eps_scale is not None else old_scale),
        seed=cfg.seed,
    )
    path = save_latents(latents_path(run.path, split), lat)
    if log:
        log(f"encoded {len(idx):,} {split} images -> {path}")
    return path


encode = encode_split  # the public name (zspace.encode)

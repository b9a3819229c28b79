"""The latents file format (``RUN/latents/<split>.npz``).

The file holds z (N, d) float32; mu and logvar for a VAE; index (N,) int64 rows of
the data set; label (+ label_names) and attr (+ attr_names) when the source knows
them; and a few scalars (split, variational, eps_scale, seed). Analyses read only
this file, so they never load the model or the images again.

Scale: the members are stored uncompressed (the layout ``np.savez`` writes), so
``load_latents`` memory-maps z, mu and logvar instead of reading them, and
``encode`` appends the latents batch by batch to temporary .npy files beside the
final one, then packs them into the .npz in chunks: a split of millions of
images is never held in memory, once or twice. Older files written by
``np.savez`` are stored the same way and are mapped too.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import zspace.core.npz as npz
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write, make_dirs, read_npz

if TYPE_CHECKING:
    from zspace.runs.run import RunLike


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


def _as(arr: Any, dtype: Any) -> np.ndarray:
    """``arr`` as ``dtype`` without a copy when it already is (memory maps stay maps)."""
    arr = np.asanyarray(arr)
    return arr if arr.dtype == dtype else arr.astype(dtype)


def _members(lat: Latents) -> dict[str, Any]:
    arrays: dict[str, Any] = {
        "z": _as(lat.z, np.float32),
        "index": _as(lat.index, np.int64),
        "split": np.array(lat.split),
        "variational": np.array(lat.variational),
        "seed": np.array(lat.seed),
        "eps_scale": np.array(np.nan if lat.eps_scale is None else lat.eps_scale),
    }
    if lat.mu is not None and lat.logvar is not None:
        arrays["mu"] = _as(lat.mu, np.float32)
        arrays["logvar"] = _as(lat.logvar, np.float32)
    if lat.label is not None:
        arrays["label"] = _as(lat.label, np.int64)
        if lat.label_names:
            arrays["label_names"] = np.array(lat.label_names, dtype=str)
    if lat.attr is not None:
        arrays["attr"] = _as(lat.attr, np.int8)
        arrays["attr_names"] = np.array(lat.attr_names or (), dtype=str)
    return arrays


def save_latents(path: str | Path, lat: Latents) -> Path:
    """Write ``lat`` to ``path`` atomically as a stored .npz; its arrays may be memory
    maps, which are copied in chunks."""
    return atomic_write(path, lambda fh: npz.write(fh, _members(lat)))


class LatentsWriter:
    """Collects the latents of ``n`` images batch by batch in .npy files on disk (a
    hidden folder beside ``path``) and packs them into the latents file at the end.

    Batches are appended with plain writes (no memory map), so the process holds
    one batch whatever ``n`` is; the parts are removed when the file is written,
    and also when an error ends the ``with`` block early."""

    def __init__(self, path: str | Path, n: int, z_dim: int, variational: bool) -> None:
        self.path = make_dirs(Path(path).parent) / Path(path).name
        self.n, self.z_dim, self.filled = int(n), int(z_dim), 0
        self._parts = tempfile.TemporaryDirectory(
            prefix=f".{self.path.name}.", suffix=".parts", dir=self.path.parent
        )
        header = {"descr": "<f4", "fortran_order": False, "shape": (self.n, self.z_dim)}
        self._files = {}
        for key in ("z", "mu", "logvar") if variational else ("z",):
            fh = open(Path(self._parts.name) / f"{key}.npy", "wb")  # noqa: SIM115 - closed in abort
            np.lib.format.write_array_header_1_0(fh, header)
            self._files[key] = fh

    def add(self, z: Any, mu: Any = None, logvar: Any = None) -> None:
        """Append one batch (arrays or CPU tensors of shape (m, z_dim))."""
        m = len(z)
        if self.filled + m > self.n:
            raise ValueError(f"{self.filled + m} latents for a file of {self.n}")
        for key, value in (("z", z), ("mu", mu), ("logvar", logvar)):
            if key in self._files:
                block = np.ascontiguousarray(np.asarray(value), dtype=np.float32)
                if block.shape != (m, self.z_dim):
                    raise ValueError(f"{key} of shape {block.shape}; expected ({m}, {self.z_dim})")
                self._files[key].write(block.tobytes())
        self.filled += m

    def finish(self, **fields: Any) -> Path:
        """Write the file. ``fields`` are the other fields of ``Latents`` (split, index,
        label, label_names, attr, attr_names, eps_scale, seed)."""
        if self.filled != self.n:
            raise ValueError(f"{self.filled} of {self.n} latents were added")
        for fh in self._files.values():
            fh.close()
        empty = np.empty((0, self.z_dim), np.float32)  # in place of the parts, in their order
        vae = empty if "mu" in self._files else None
        members = _members(Latents(z=empty, mu=vae, logvar=vae, **fields))
        members.update({k: Path(self._parts.name) / f"{k}.npy" for k in self._files})
        try:
            atomic_write(self.path, lambda fh: npz.write(fh, members))
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._parts.cleanup()

    def __enter__(self) -> LatentsWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.abort()


def load_latents(run: RunLike, split: str = "train", *, mmap: bool = True) -> Latents:
    """Read ``RUN/latents/<split>.npz``. z, mu and logvar are read-only memory maps
    (``mmap=False`` reads them into memory)."""
    from zspace.runs.run import run_path  # here: the analyses read latents without torch

    run_dir = run_path(run)
    path = latents_path(run_dir, split)
    if not path.is_file():
        raise ZspaceError(
            f"no latents for split {split!r} in {run_dir}: run `zspace encode {run_dir} "
            f"--split {split}` first"
        )
    redo = f"run `zspace encode {run_dir} --split {split}` again"
    f = read_npz(path, redo, mmap=mmap)
    _check_latents(f, path, redo)
    get = f.get
    eps = get("eps_scale")
    small = lambda k: None if get(k) is None else np.array(get(k))  # noqa: E731 - off the map
    names = lambda k: None if k not in f else tuple(str(s) for s in f[k])  # noqa: E731
    return Latents(
        split=str(f["split"]) if "split" in f else split,
        z=f["z"],
        index=np.array(f["index"]),
        mu=get("mu"),
        logvar=get("logvar"),
        label=small("label"),
        label_names=names("label_names"),
        attr=small("attr"),
        attr_names=names("attr_names"),
        eps_scale=None if eps is None or np.isnan(eps) else float(eps),
        seed=int(f["seed"]) if "seed" in f else 0,
    )


def _check_latents(f: dict[str, np.ndarray], path: Path, redo: str) -> None:
    """The arrays of a latents file, checked against the format (a foreign or damaged
    file is refused here, not as an IndexError inside an analysis)."""

    def bad(why: str) -> ZspaceError:
        return ZspaceError(f"{path} is not a zspace latents file: {why}; {redo}")

    z = f.get("z")
    if z is None or z.ndim != 2 or z.dtype.kind != "f" or z.shape[1] < 1:
        raise bad(f"z must be an (N, d) float array, found {_describe(z)}")
    n = z.shape[0]
    index = f.get("index")
    if index is None or index.shape != (n,) or index.dtype.kind not in "iu":
        raise bad(f"index must be ({n},) integers, found {_describe(index)}")
    for key in ("mu", "logvar"):
        a = f.get(key)
        if a is not None and (a.shape != z.shape or a.dtype.kind != "f"):
            raise bad(f"{key} must be {z.shape} floats like z, found {_describe(a)}")
    if ("mu" in f) != ("logvar" in f):
        raise bad("mu and logvar come together")
    for key in ("z", "mu", "logvar"):  # in blocks: no (N, d) temporary of a memory map
        a = f.get(key)
        if a is not None and not all(
            np.isfinite(a[s : s + 65536]).all() for s in range(0, n, 65536)
        ):
            raise bad(f"{key} holds NaN or inf values")
    for key, kinds, ndim in (("label", "iu", 1), ("attr", "iu", 2)):
        a = f.get(key)
        if a is not None and (a.ndim != ndim or len(a) != n or a.dtype.kind not in kinds):
            raise bad(f"{key} must have {n} integer rows, found {_describe(a)}")
    for key in ("eps_scale", "seed"):
        a = f.get(key)
        if a is not None and (a.shape != () or a.dtype.kind not in "iuf"):
            raise bad(f"{key} must be a number, found {_describe(a)}")
    for key in ("split", "label_names", "attr_names"):
        a = f.get(key)
        if a is not None and a.dtype.kind != "U":
            raise bad(f"{key} must be text, found {_describe(a)}")


def _describe(a: np.ndarray | None) -> str:
    return "nothing" if a is None else f"{a.dtype} of shape {a.shape}"

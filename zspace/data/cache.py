"""The on-disk uint8 cache of image files: decode a source once, memory-map it on every
later run.

Layout in the cache folder (``data.cache_dir``, else ``$ZSPACE_CACHE``, else the
user's cache folder such as ``~/.cache/zspace``; never beside the source, which is
often read-only)::

    <stem>.json            meta: source, geometry, shape, listing checksum, data file,
                           the files skipped as unreadable
    <stem>-<token>.npy     uint8 (N, H, W, C), memory-mapped read-only
    <stem>.lock            taken while building

``stem`` holds a key: sha256 of (format version, source kind, absolute path,
geometry). The checksum of the source listing (names, sizes, mtimes or CRCs) is
kept in the meta: when it differs the cache is *stale* and is rebuilt in place,
so a changed source does not pile up orphaned copies. The skipped files are kept
too, so the kept names (and with them labels and attributes) are known again on
reuse without decoding anything.

Concurrency: builders take an exclusive ``flock`` on the lock file (``building``),
write the data file under a temporary name (``fileio.atomic_path``) and then the
meta (the commit record). A second process waiting on the lock finds the fresh
cache and reuses it; readers never take the lock and never see a half-written
file. Where ``fcntl`` does not exist (Windows) two builders may both work, but
each commits atomically, so the result is still whole.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_path, atomic_write_json, digest, locked, read_json
from zspace.data.readers.decode import decode_to_npy
from zspace.data.readers.imagefiles import list_images, resolve_geometry

if TYPE_CHECKING:
    from zspace.config import DataConfig

log = logging.getLogger("zspace.data")
FORMAT = 1


def cache_root(cache_dir: str = "") -> Path:
    """``data.cache_dir``, else ``$ZSPACE_CACHE``, else the platform's user cache folder."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("ZSPACE_CACHE")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "zspace"


@contextlib.contextmanager
def building(
    root: Path, lock: Path, what: str = "data.cache_dir", log: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the builders' lock of an entry in the cache folder ``root`` (created first; a
    one-line error says which settings move it), so no two processes build one entry.
    ``log``: told that (and how long) this process waits on another one's build."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZspaceError(
            f"{what} {root}: cannot create it ({exc.strerror}); "
            "set data.cache_dir or $ZSPACE_CACHE to a writable folder"
        ) from None

    def waiting(pid: str, seconds: float) -> None:
        if log:
            log(f"{what}: waiting for process {pid}, which builds {root} ({seconds:.0f} s so far)")

    with locked(lock, waiting=waiting):
        yield


@dataclass(frozen=True)
class CacheSpec:
    """What identifies one cached array."""

    kind: str
    path: str
    geometry: dict
    listing_sha256: str
    root: Path

    @property
    def stem(self) -> str:
        key = digest(
            {"format": FORMAT, "kind": self.kind, "path": self.path, "geometry": self.geometry}
        )
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(self.path).name)[:40] or "data"
        g = self.geometry
        return f"{self.kind}-{base}-{g['height']}x{g['width']}x{g['channels']}-{key[:16]}"

    @property
    def meta_path(self) -> Path:
        return self.root / f"{self.stem}.json"


@dataclass(frozen=True)
class Cached:
    """An opened cache: the memory-mapped images, the meta, and what happened."""

    images: np.ndarray
    meta: dict
    state: str  # "reused", "built" or "rebuilt (source changed)"
    meta_path: Path


def probe(spec: CacheSpec) -> tuple[str, dict | None]:
    """ "fresh", "stale" (source changed), "absent" or "broken", without taking the lock."""
    if not spec.meta_path.exists():
        return "absent", None
    try:
        meta = read_json(spec.meta_path)
    except ZspaceError:
        return "broken", None
    if not isinstance(meta, dict):
        return "broken", None
    if meta.get("format") != FORMAT or not (spec.root / str(meta.get("data_file"))).is_file():
        return "broken", meta
    if meta.get("listing_sha256") != spec.listing_sha256:
        return "stale", meta
    return "fresh", meta


def open_or_build(spec: CacheSpec, build: Callable[[Path], dict]) -> Cached:
    """Reuse the fresh cache for ``spec`` or build it with ``build(tmp_npy_path) -> meta``.

    ``build`` must leave a uint8 NHWC ``.npy`` at the path it is given and return
    extra meta fields (JSON-friendly).
    """
    cached, _ = _reuse(spec)
    if cached is not None:
        return cached
    with building(spec.root, spec.root / f"{spec.stem}.lock"):
        cached, state = _reuse(spec)  # another process may have built it while we waited
        if cached is not None:
            return cached
        _remove(spec.root.glob(f".*{spec.stem}-*.tmp"))  # leftovers of a killed build
        data_name = f"{spec.stem}-{secrets.token_hex(4)}.npy"
        started = time.perf_counter()
        with atomic_path(spec.root / data_name, undoable=False) as tmp:
            extra = build(tmp)
        images = np.load(spec.root / data_name, mmap_mode="r")
        meta = {
            "format": FORMAT,
            **{k: v for k, v in vars(spec).items() if k != "root"},
            "data_file": data_name,
            "shape": list(images.shape),
            "count": int(images.shape[0]),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(time.perf_counter() - started, 3),
            **extra,
        }
        atomic_write_json(spec.meta_path, meta, undoable=False)  # shared, not output
        _remove(p for p in spec.root.glob(f"{spec.stem}-*.npy") if p.name != data_name)
    built = "rebuilt (source changed)" if state == "stale" else "built"
    return Cached(images, meta, built, spec.meta_path)


def _reuse(spec: CacheSpec) -> tuple[Cached | None, str]:
    """The fresh cache, or None (absent, stale, broken, or its data file replaced by a
    concurrent rebuild or damaged: rebuilt under the lock); and the ``probe`` state."""
    state, meta = probe(spec)
    if state != "fresh" or meta is None:
        return None, state
    try:
        images = np.load(spec.root / meta["data_file"], mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return None, state
    if images.dtype != np.uint8 or list(images.shape) != meta.get("shape"):
        return None, state
    return Cached(images, meta, "reused", spec.meta_path), state


def _remove(paths) -> None:
    for p in paths:
        with contextlib.suppress(OSError):  # e.g. still mapped by a reader on Windows
            p.unlink()


def read_images(
    container: Path, cfg: DataConfig, *, kind: str, label: str, default_size: int = 0
) -> tuple[np.ndarray, tuple[str, ...], dict]:
    """(images, the file of each row, details for ``data info``) of the image files in a
    folder or zip, decoded at the configured geometry into the cache, or reused from it."""
    files = list_images(container, label)
    geo = resolve_geometry(files, cfg, label, default_size)
    spec = CacheSpec(
        kind, files.container, geo.describe(), files.listing_sha256, cache_root(cfg.cache_dir)
    )

    def build(tmp: Path) -> dict:
        report = decode_to_npy(files, geo, tmp, label=label)
        return {"source": label, "skipped": [list(f) for f in report.failures]}

    cached = open_or_build(spec, build)
    skipped = cached.meta.get("skipped", [])
    bad = {name for name, _ in skipped}
    names = tuple(n for n in files.names if n not in bad)
    if len(names) != cached.images.shape[0]:  # cannot happen unless the cache was edited
        raise ZspaceError(
            f"{label}: cache {cached.meta_path} does not match the source; delete it to rebuild"
        )
    if skipped:
        log.warning(
            "%s: skipped %d unreadable image(s) of %d (e.g. %s: %s)",
            label,
            len(skipped),
            len(files),
            *skipped[0],
        )
    details = {
        "cache": {
            "path": str(cached.meta_path),
            "data": str(cached.meta_path.with_name(cached.meta["data_file"])),
            "state": cached.state,
            "bytes": int(cached.images.nbytes),
            "build_seconds": cached.meta.get("build_seconds"),
        },
        "files": len(files),
        "skipped": len(skipped),
        "skipped_examples": skipped[:5],
    }
    return cached.images, names, details

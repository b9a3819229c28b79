"""The on-disk uint8 cache: decode a source once, memory-map it on every later run.

Layout in the cache folder (``data.cache_dir``, else ``$ZSPACE_CACHE``, else the
user's cache folder such as ``~/.cache/zspace``; never beside the source, which is
often read-only)::

    <stem>.json            meta: source, geometry, shape, listing checksum, data file
    <stem>-<token>.npy     uint8 (N, H, W, C), memory-mapped read-only
    <stem>.lock            taken while building

``stem`` holds a key: sha256 of (format version, source kind, absolute path,
geometry). The checksum of the source listing (names, sizes, mtimes or CRCs) is
kept in the meta: when it differs the cache is *stale* and is rebuilt in place,
so a changed source does not pile up orphaned copies.

Concurrency: builders take an exclusive ``flock`` on the lock file, build into a
unique temporary name and commit by ``os.replace`` of the data file and then the
meta (the meta is the commit record). A second process waiting on the lock finds
the fresh cache and reuses it; readers never take the lock and never see a
half-written file. Where ``fcntl`` does not exist (Windows) two builders may both
work, but each commits atomically, so the result is still whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_json, locked

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


@dataclass(frozen=True)
class CacheSpec:
    """What identifies one cached array."""

    kind: str
    path: str
    geometry: dict
    listing_sha256: str
    root: Path

    @property
    def key(self) -> str:
        ident = {"format": FORMAT, "kind": self.kind, "path": self.path, "geometry": self.geometry}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()

    @property
    def stem(self) -> str:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(self.path).name)[:40] or "data"
        g = self.geometry
        return f"{self.kind}-{base}-{g['height']}x{g['width']}x{g['channels']}-{self.key[:16]}"

    @property
    def meta_path(self) -> Path:
        return self.root / f"{self.stem}.json"

    @property
    def lock_path(self) -> Path:
        return self.root / f"{self.stem}.lock"


@dataclass(frozen=True)
class Cached:
    """An opened cache: the memory-mapped images, the meta, and what happened."""

    images: np.ndarray
    meta: dict
    state: str  # "reused", "built" or "rebuilt (source changed)"
    meta_path: Path


def probe(spec: CacheSpec) -> tuple[str, dict | None]:
    """ "fresh", "stale" (source changed), "absent" or "broken", without taking the lock."""
    try:
        meta = json.loads(spec.meta_path.read_text())
    except FileNotFoundError:
        return "absent", None
    except (OSError, ValueError):
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
    state, meta = probe(spec)
    if state == "fresh" and meta is not None:  # fresh: meta was read
        images = _open(spec, meta)
        if images is not None:
            return Cached(images, meta, "reused", spec.meta_path)
    try:
        spec.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZspaceError(
            f"data.cache_dir {spec.root}: cannot create it ({exc.strerror}); "
            "set data.cache_dir or $ZSPACE_CACHE to a writable folder"
        ) from None
    with locked(spec.lock_path):
        state, meta = probe(spec)  # another process may have built it while we waited
        if state == "fresh" and meta is not None:  # fresh: meta was read
            images = _open(spec, meta)
            if images is not None:
                return Cached(images, meta, "reused", spec.meta_path)
        _remove(spec.root.glob(f"{spec.stem}.tmp-*"))  # leftovers of a crashed build
        token = secrets.token_hex(4)
        tmp = spec.root / f"{spec.stem}.tmp-{os.getpid()}-{token}.npy"
        started = time.perf_counter()
        try:
            extra = build(tmp)
            data_name = f"{spec.stem}-{token}.npy"
            os.replace(tmp, spec.root / data_name)
        except BaseException:
            _remove([tmp])
            raise
        images = np.load(spec.root / data_name, mmap_mode="r")
        new_meta = {
            "format": FORMAT,
            "kind": spec.kind,
            "path": spec.path,
            "geometry": spec.geometry,
            "listing_sha256": spec.listing_sha256,
            "data_file": data_name,
            "shape": list(images.shape),
            "count": int(images.shape[0]),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(time.perf_counter() - started, 3),
            **extra,
        }
        atomic_write_json(spec.meta_path, new_meta, undoable=False)  # shared, not output
        _remove(p for p in spec.root.glob(f"{spec.stem}-*.npy") if p.name != data_name)
    return Cached(
        images,
        new_meta,
        "rebuilt (source changed)" if state == "stale" else "built",
        spec.meta_path,
    )


def _open(spec: CacheSpec, meta: dict) -> np.ndarray | None:
    try:
        images = np.load(spec.root / meta["data_file"], mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return None  # replaced by a concurrent rebuild or damaged: rebuild under the lock
    if images.dtype != np.uint8 or list(images.shape) != meta.get("shape"):
        return None
    return images


def _remove(paths) -> None:
    for p in paths:
        with contextlib.suppress(OSError):  # e.g. still mapped by a reader on Windows
            p.unlink()

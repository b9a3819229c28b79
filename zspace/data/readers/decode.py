"""Decode a list of image files into a uint8 ``.npy`` in parallel, skipping bad files.

Worker processes (all cores) each take chunks of file names, open the container
once, decode, crop and resize with ``geometry.fit`` and write their rows straight
into the memory-mapped output file, so no pixels travel through pipes. Files that
cannot be decoded are reported back and dropped at the end; the caller logs one
summary line for them.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_path
from zspace.core.progress import bar
from zspace.core.resources import check_disk, check_memory, cpu_count
from zspace.data.readers.geometry import Geometry, fit
from zspace.data.readers.imagefiles import ImageFiles, Opener

MIN_PARALLEL = 64  # below this many images a process pool costs more than it saves


@dataclass
class DecodeReport:
    failures: list[tuple[str, str]]  # (name, reason) of the files that could not be decoded


def decode_to_npy(
    files: ImageFiles, geo: Geometry, out: Path, *, label: str, workers: int = 0
) -> DecodeReport:
    """Write all decodable images of ``files`` at ``geo`` to ``out`` (uint8 NHWC .npy)."""
    n = len(files)
    shape = (n, geo.height, geo.width, geo.channels)
    check_disk(
        f"{label}: the data cache of {n:,} images at {geo.height}x{geo.width}x{geo.channels}",
        math.prod(shape),
        out.parent,
        "use a smaller data.image_size or point data.cache_dir at a larger disk",
    )
    check_memory(
        f"{label}: one image at {geo.height}x{geo.width}x{geo.channels}",
        geo.height * geo.width * geo.channels,
        "use a smaller data.image_size",
    )
    np.lib.format.open_memmap(out, mode="w+", dtype=np.uint8, shape=shape).flush()
    workers = workers or cpu_count()
    size = max(16, min(256, math.ceil(n / (workers * 8))))
    chunks = [(s, files.names[s : s + size]) for s in range(0, n, size)]
    args = (files.container, files.is_zip)
    failures: list[tuple[int, str]] = []
    pool = _pool(min(workers, len(chunks))) if workers > 1 and n >= MIN_PARALLEL else None
    try:
        if pool is None:  # lazily, chunk by chunk
            done: Iterable = ((_decode_chunk(*args, c, s, geo, str(out)), c) for s, c in chunks)
        else:  # submitting first forks the workers before tqdm starts its monitor thread
            pending = {pool.submit(_decode_chunk, *args, c, s, geo, str(out)): c for s, c in chunks}
            done = ((f.result(), pending[f]) for f in as_completed(pending))
        with bar(total=n, desc=f"decoding {label}", unit="img", leave=True) as shown:
            for failed, names in done:
                failures += failed
                shown.update(len(names))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for opener, _ in _STATE.values():
            opener.close()
        _STATE.clear()
    failures.sort()
    if len(failures) == n:
        name, reason = files.names[failures[0][0]], failures[0][1]
        raise ZspaceError(
            f"{label}: none of the {n} image(s) could be read (e.g. {name}: {reason})"
        )
    bad = [i for i, _ in failures]
    kept = np.setdiff1d(np.arange(n), np.asarray(bad, dtype=np.int64))
    if bad:
        _compact(out, kept)
    return DecodeReport([(files.names[i], reason) for i, reason in failures])


def _pool(workers: int) -> Executor:
    """Processes started by fork where that is safe, else threads.

    fork starts workers in milliseconds and they inherit the imports; they only run
    Pillow, never torch, so a parent with torch loaded is fine. Where fork is
    unsafe (macOS, Windows, or a parent with other Python threads that might hold a
    lock), spawn-style starts would re-run a user's unguarded script, so threads are
    used instead: Pillow releases the GIL while decoding and resizing.
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and sys.platform != "darwin" and threading.active_count() == 1:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    return ThreadPoolExecutor(workers)


# Per-worker state: the open container and the output mapping, keyed by process and
# thread so a forked worker never reuses its parent's open zip (which shares a file
# offset) and threads never share one.
_STATE: dict[tuple, tuple[Opener, np.ndarray]] = {}


def _decode_chunk(
    container: str, is_zip: bool, names: tuple[str, ...], start: int, geo: Geometry, out: str
) -> list[tuple[int, str]]:
    key = (os.getpid(), threading.get_ident(), container, out)
    if key not in _STATE:
        _STATE[key] = (Opener(container, is_zip), np.load(out, mmap_mode="r+"))
    opener, arr = _STATE[key]
    failures = []
    for j, name in enumerate(names):
        try:
            with opener.open(name) as fh, Image.open(fh) as image:
                arr[start + j] = fit(image, geo)
        except Exception as exc:  # any decoding problem: skip the file, report why
            failures.append((start + j, f"{type(exc).__name__}: {exc}"))
    return failures


def _compact(path: Path, kept: np.ndarray) -> None:
    """Drop the rows of images that failed (rare: a rewrite of the kept rows)."""
    src = np.load(path, mmap_mode="r")
    with atomic_path(path, undoable=False) as tmp:
        dst = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(kept), *src.shape[1:])
        )
        step = 4096
        for s in range(0, len(kept), step):
            dst[s : s + step] = src[kept[s : s + step]]
        dst.flush()
        del dst, src

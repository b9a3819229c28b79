"""CIFAR-10 in its official "python version": ``cifar-10-batches-py/`` or the tar.gz.

Each batch file is a Python-2 pickle of a dict with ``data`` (a uint8 numpy array,
N x 3072, channel-planar), ``labels`` (list of int), ``batch_label`` and
``filenames`` (bytes). Pickle can run arbitrary code, so the batches are read with
an Unpickler that only resolves the handful of globals such a file needs
(numpy's array reconstruction, ``numpy.ndarray``/``numpy.dtype`` and
``_codecs.encode``) and refuses everything else. zspace never writes pickles of
its own. ``data_batch_1..5`` become the train split, ``test_batch`` the test split
(alone, it is a smaller data set with a seeded validation split).

The arrays load in a fraction of a second, so CIFAR does not go through the cache.
"""

from __future__ import annotations

import codecs
import io
import itertools
import pickle
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.data.dataset import ImageData, source_path
from zspace.data.readers.geometry import fit_array
from zspace.data.readers.imagefiles import is_image_name

if TYPE_CHECKING:
    from zspace.config import DataConfig

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = "test_batch"
META = "batches.meta"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's array rebuilder, under numpy 1 and 2
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class BatchUnpickler(pickle.Unpickler):
    """Resolves only the globals of a CIFAR batch; anything else is an error."""

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def unpickle(data: bytes, where: str):
    try:
        return BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # truncated, corrupt or not a pickle at all
        raise ZspaceError(f"{where}: truncated or not a CIFAR-10 batch ({exc})") from None


def parse_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 32 x 32 x 3 uint8, labels N int64) of one batch file."""
    obj = unpickle(data, where)
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        keys = sorted(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
        raise ZspaceError(f"{where}: not a CIFAR-10 batch (found {keys})")
    pixels = obj[b"data"]
    if (
        not isinstance(pixels, np.ndarray)
        or pixels.dtype != np.uint8
        or pixels.ndim != 2
        or pixels.shape[1] != 3072
    ):
        shape = getattr(pixels, "shape", None)
        raise ZspaceError(f"{where}: 'data' should be uint8 N x 3072, got {shape}")
    try:
        labels = np.asarray(obj[b"labels"], dtype=np.int64)
    except (TypeError, ValueError):
        raise ZspaceError(f"{where}: 'labels' should be class numbers 0..9") from None
    if labels.shape != (len(pixels),):
        raise ZspaceError(f"{where}: {labels.size} labels for {len(pixels)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ZspaceError(f"{where}: labels outside 0..9")
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_files(root: Path, label: str) -> tuple[dict[str, bytes], str]:
    """The batch files' bytes by name, from the folder or the tar.gz; and where they were."""
    wanted = {*TRAIN, TEST, META}
    if root.is_dir():
        if (root / FOLDER).is_dir():
            root = root / FOLDER
        elif (root / ARCHIVE).is_file():
            root = root / ARCHIVE
    if root.is_dir():
        files = {p.name: p.read_bytes() for p in root.iterdir() if p.name in wanted}
    else:
        files = {}
        try:
            with tarfile.open(root, "r:*") as tar:
                for member in tar:
                    name = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and name in wanted:
                        fh = tar.extractfile(member)
                        assert fh is not None  # a regular file always has contents
                        files[name] = fh.read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ZspaceError(f"{root}: truncated or not a CIFAR-10 archive ({exc})") from None
    if not any(name in files for name in (*TRAIN, TEST)):
        hint = ""
        if root.is_dir() and _has_images(root):
            hint = f"; it holds image files: read them with folder:{root}"
        raise ZspaceError(
            f"{label}: no CIFAR-10 batches (data_batch_1..5, test_batch) in {root}{hint}"
        )
    return files, str(root)


def _has_images(root: Path, limit: int = 2000) -> bool:
    """Whether a folder (looked at for at most ``limit`` entries) holds image files."""
    return any(is_image_name(p.name) for p in itertools.islice(root.rglob("*"), limit))


def read_cifar10(path: str, cfg: DataConfig) -> ImageData:
    root = source_path(path, "cifar10")
    files, where = read_files(root, f"cifar10:{path}")
    names = [n for n in (*TRAIN, TEST) if n in files]
    sep = ":" if where.endswith(".gz") else "/"
    images, labels = zip(*(parse_batch(files[n], f"{where}{sep}{n}") for n in names), strict=True)
    codes = [
        np.full(len(labs), 2 if n == TEST else 0, np.int8)
        for n, labs in zip(names, labels, strict=True)
    ]
    label_names: tuple[str, ...] = CLASSES
    if META in files:
        meta = unpickle(files[META], f"{where}/{META}")
        raw = meta.get(b"label_names") if isinstance(meta, dict) else None
        if isinstance(raw, list | tuple) and len(raw) == len(CLASSES):
            label_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in raw)
    has_both = TEST in names and len(names) > 1
    return ImageData(
        images=fit_array(np.concatenate(images), cfg.image_size, cfg.crop),
        source=f"cifar10:{root}",
        labels=np.concatenate(labels),
        label_names=label_names,
        partition=np.concatenate(codes) if has_both else None,
        details={
            "files": [f"{where}/{n}" for n in names],
            "cache": {"state": "not used (CIFAR arrays are read directly)"},
        },
    )


def guess_cifar10(path: Path) -> bool:
    if path.is_file():
        return path.name == ARCHIVE
    return path.is_dir() and any(
        (path / n).exists() for n in (FOLDER, ARCHIVE, "data_batch_1", TEST)
    )

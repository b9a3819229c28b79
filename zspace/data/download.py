"""Download the data sets whose publishers serve them openly, verified by checksum.

Official file names, the md5 sums torchvision and the publishers list, mirrors
tried in order, transfers resumed with HTTP Range from a ``.part`` file, written
under a temporary name and renamed only after the checksum matched. The mirror
list can be replaced with ``--mirror URL`` (repeatable) or ``$ZSPACE_MIRRORS``
(space- or comma-separated base URLs), e.g. for a local copy or a test server.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from zspace.core.errors import ZspaceError
from zspace.core.fileio import make_dirs
from zspace.core.progress import bar
from zspace.core.progress import progress as progress_switch

CHUNK = 1 << 20
TIMEOUT = 30.0


@dataclass(frozen=True)
class Remote:
    filename: str
    md5: str
    split: str  # "train", "test" or "all"


@dataclass(frozen=True)
class DataSet:
    name: str
    kind: str  # the data.source kind that reads it
    mirrors: tuple[str, ...]
    files: tuple[Remote, ...]
    licence: str
    classes: tuple[str, ...] | None = None  # class names, when not "0".."9"


def _idx_files(
    train_images: str, train_labels: str, test_images: str, test_labels: str
) -> tuple[Remote, ...]:
    return (
        Remote("train-images-idx3-ubyte.gz", train_images, "train"),
        Remote("train-labels-idx1-ubyte.gz", train_labels, "train"),
        Remote("t10k-images-idx3-ubyte.gz", test_images, "test"),
        Remote("t10k-labels-idx1-ubyte.gz", test_labels, "test"),
    )


FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
KMNIST = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
SETS: dict[str, DataSet] = {
    "mnist": DataSet(
        "mnist",
        "mnist",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        _idx_files(
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
        "MNIST (LeCun, Cortes, Burges): CC BY-SA 3.0",
    ),
    "fashion-mnist": DataSet(
        "fashion-mnist",
        "mnist",
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        _idx_files(
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
        "Fashion-MNIST (Zalando Research): MIT",
        FASHION,
    ),
    "kmnist": DataSet(
        "kmnist",
        "mnist",
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        _idx_files(
            "bdb82020997e1d708af4cf47b453dcf7",
            "e144d726b3acfaa3e44228e80efcd344",
            "5c965bf0a639b31b8f53240b1b52f4d7",
            "7320c461ea6c1c855c0b718fb2a4b134",
        ),
        "Kuzushiji-MNIST (ROIS-DS CODH): CC BY-SA 4.0",
        KMNIST,
    ),
    "cifar10": DataSet(
        "cifar10",
        "cifar10",
        ("https://www.cs.toronto.edu/~kriz/",),
        (Remote("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "all"),),
        "CIFAR-10 (Krizhevsky 2009): no explicit licence; cite the tech report",
    ),
}
ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar": "cifar10",
    "k-mnist": "kmnist",
}
CELEBA_MESSAGE = (
    "CelebA cannot be downloaded automatically: its licence (non-commercial research "
    "only) must be accepted at https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html; get "
    "img_align_celeba.zip, list_attr_celeba.txt and list_eval_partition.txt into one "
    "folder and use --set data.source=celeba:/that/folder (the zip is read in place)"
)


def resolve(name: str) -> DataSet:
    key = ALIASES.get(name.lower(), name.lower())
    if key in ("celeba", "celeb-a", "celeba-aligned"):
        raise ZspaceError(CELEBA_MESSAGE)
    if key not in SETS:
        raise ZspaceError(
            f"data download: unknown data set '{name}' (known: {', '.join(SETS)}, celeba)"
        )
    return SETS[key]


def mirrors_for(dataset: DataSet, override: list[str] | None = None) -> list[str]:
    """``override``, else ``$ZSPACE_MIRRORS``, else the publisher's mirrors, in order."""
    if override:
        return list(override)
    env = os.environ.get("ZSPACE_MIRRORS", "").replace(",", " ").split()
    return env or list(dataset.mirrors)


def md5_of(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


class Truncated(Exception):
    """The server closed the connection before sending everything it announced."""


def download(
    name: str,
    dest: Path,
    *,
    only: str = "all",
    mirrors: list[str] | None = None,
    progress: bool | None = None,
) -> tuple[DataSet, Path]:
    """Fetch ``name`` into ``dest/<name>/``; returns the set and that folder."""
    dataset = resolve(name)
    folder = make_dirs(Path(dest).expanduser() / dataset.name, undoable=False)  # kept: resumes
    bases = mirrors_for(dataset, mirrors)
    wanted = [f for f in dataset.files if only == "all" or f.split in (only, "all")]
    for remote in wanted:
        fetch(remote, folder, bases, progress=progress)
    return dataset, folder


def fetch(
    remote: Remote, folder: Path, mirrors: list[str], *, progress: bool | None = None
) -> Path:
    """One verified file: present and correct, or downloaded (resuming a ``.part``)."""
    final = folder / remote.filename
    if final.is_file() and md5_of(final) == remote.md5:
        return final
    part = folder / f"{remote.filename}.part"
    errors: list[str] = []
    unreachable = 0
    for base in mirrors:
        url = base if base.endswith(remote.filename) else base.rstrip("/") + "/" + remote.filename
        for _attempt in range(3):  # a cut transfer resumes from the .part on the same mirror
            try:
                with progress_switch(progress):
                    _transfer(url, part)
            except Truncated as exc:
                errors.append(f"{url}: {exc}")
                continue
            except urllib.error.HTTPError as exc:
                errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
                break
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                errors.append(f"{url}: {reason}")
                unreachable += 1
                break
            digest = md5_of(part)
            if digest != remote.md5:
                part.unlink()
                errors.append(f"{url}: checksum mismatch (md5 {digest}, expected {remote.md5})")
                break
            os.replace(part, final)
            return final
    if unreachable == len(mirrors):
        raise ZspaceError(
            f"data download: cannot reach any mirror for {remote.filename} (offline?): {errors[-1]}"
        )
    raise ZspaceError(
        f"data download: {remote.filename} failed on every mirror: " + "; ".join(errors)
    )


def _transfer(url: str, part: Path) -> None:
    """Append the rest of ``url`` to ``part`` (HTTP Range), or start it over."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "zspace-download"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the .part is complete
            return
        raise
    with resp:
        if resp.status != 206:
            have = 0  # the server ignored the Range header: start over
        length = resp.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        total = have + expected if expected is not None else None
        got = 0
        with (
            open(part, "ab" if have else "wb") as fh,
            bar(total=total, initial=have, unit="B", unit_scale=True, desc=part.name[:-5]) as shown,
        ):
            while True:
                try:
                    block = resp.read(CHUNK)
                except (TimeoutError, http.client.IncompleteRead, ConnectionError) as exc:
                    raise Truncated(f"transfer cut after {have + got} bytes ({exc})") from None
                if not block:
                    break
                fh.write(block)
                got += len(block)
                shown.update(len(block))
    if expected is not None and got < expected:
        raise Truncated(f"transfer cut after {have + got} of {total} bytes")

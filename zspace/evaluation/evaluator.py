"""The evaluator: a feature net trained once per data set, cached, and the fixed
split that goes with it.

Why: a run must not be judged in a space it shaped itself (its encoder can map
grey mush next to its own blurry data, docs/evaluation.md). The evaluator is
trained by zspace on the data set alone, so every run on the same data is judged
in the same space and their numbers compare.

Split (fixed seed ``SPLIT_SEED``, never the run's): a seeded permutation of all
images gives the *reference* part (30 %, at most ``REFERENCE_CAP``), which no
evaluator training sees, and the evaluator's own training part (the rest, at most
``TRAIN_CAP``, of which 10 % validate). The reference part has two halves: ``A``,
the real set every row of an evaluation is scored against (its features are
cached), and ``B``, from which the real-vs-real floor draws its "generated" images.

Task: ``classes`` with labels, ``attributes`` with CelebA attributes on at least
``MIN_ATTRIBUTED`` images, else the ``rotation`` fallback (logged, with the reason).

Cache: ``<cache root>/evaluators/<stem>/`` (the data cache's root,
zspace.data.cache.cache_root), one folder per source, geometry and task; its
``meta.json`` (the commit record, written last and atomically) carries the data's
content fingerprint and ``EVALUATOR_VERSION``. A changed data set or version makes
it stale: it is rebuilt in place, and the reason is logged. Builders hold the data
cache's builders' lock (zspace.data.cache.building), so two processes never build one
evaluator at once; a waiting one logs that it waits and reuses the fresh result.
meta.json lists the sha256 of every build file and seals itself: anything changed
rebuilds the entry (logged). Weights load with ``weights_only=True``, reference
features without pickle. The fingerprint names what defines the evaluator, not its
weights (their float rounding differs with the thread count: docs/evaluation.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zspace.core.errors import ZspaceError, first_line
from zspace.core.fileio import atomic_write_json, digest, read_json, read_npz, sha256_of
from zspace.core.progress import progress as progress_switch
from zspace.data.cache import building, cache_root
from zspace.data.dataset import ImageData
from zspace.data.loader import to_float_nchw
from zspace.evaluation.fit import Log, batch_terms, train_net
from zspace.evaluation.nets import ROTATIONS, TASKS, FeatureNet
from zspace.runs.checkpoint import load_checkpoint

EVALUATOR_VERSION = 7  # raise it whenever the net, its training or the split changes
SPLIT_SEED = 0
REFERENCE_FRACTION = 0.3
REFERENCE_CAP = 10_000
TRAIN_CAP = 50_000
VALID_FRACTION = 0.1
MIN_ATTRIBUTED = 2000
IMAGE_BUDGET = 50_000  # images seen in training: epochs = budget / train size, 5..20
BATCH = 256


# ---------------------------------------------------------------- identity


def data_fingerprint(data: ImageData) -> str:
    """sha256 of the images' bytes (at this geometry), their labels and attributes."""
    h = hashlib.sha256()
    h.update(json.dumps({"shape": list(data.images.shape)}).encode())
    images = data.images
    step = max(1, (64 << 20) // max(1, int(np.prod(images.shape[1:]))))
    for s in range(0, len(images), step):
        h.update(np.ascontiguousarray(images[s : s + step]).data.cast("B"))
    for name in ("labels", "attr"):
        arr = getattr(data, name)
        h.update(name.encode())
        if arr is not None:
            h.update(np.ascontiguousarray(np.asarray(arr, np.int64)).tobytes())
    return h.hexdigest()


def check_task(task: str) -> str:
    if task not in ("auto", *TASKS):
        raise ZspaceError(f"evaluator task {task!r}: choose auto, {', '.join(TASKS)}")
    return task


def resolve_task(data: ImageData, task: str = "auto", log: Log = None) -> tuple[str, str]:
    """(task, why). ``auto``: classes with labels, attributes on enough attributed
    images, else the rotation fallback, logged with its reason."""
    check_task(task)
    n_classes = 0 if data.labels is None else len(np.unique(data.labels))
    has_labels = n_classes >= 2
    n_attr = 0 if data.attr is None else int((np.asarray(data.attr) != 0).any(axis=1).sum())
    if task == "classes" and not has_labels:
        raise ZspaceError(f"evaluator task 'classes': {data.source} has no class labels")
    if task == "attributes" and n_attr < MIN_ATTRIBUTED:
        raise ZspaceError(
            f"evaluator task 'attributes': {n_attr} images of {data.source} carry attributes; "
            f"an attribute classifier needs at least {MIN_ATTRIBUTED}"
        )
    if task != "auto":
        return task, "asked for"
    if has_labels:
        return "classes", f"{n_classes} class labels"
    if n_attr >= MIN_ATTRIBUTED:
        return "attributes", f"attributes on {n_attr} images"
    why = (
        f"only {n_attr} of {data.count} images carry attributes (an attribute classifier "
        f"needs {MIN_ATTRIBUTED})"
        if data.attr is not None
        else "no labels"
    )
    if log:
        log(f"evaluator: {data.source}: {why}; falling back to rotation-prediction features")
    return "rotation", why


@dataclass(frozen=True)
class Slot:
    """Where one evaluator lives: one per source, geometry and task (``slot_for``)."""

    folder: Path
    key: str  # the digest of source, geometry and task
    geometry: dict

    @property
    def meta_path(self) -> Path:
        return self.folder / "meta.json"

    @property
    def lock_path(self) -> Path:
        return self.folder.parent / f"{self.folder.name}.lock"


def buildable(data: ImageData, task: str) -> dict[str, np.ndarray]:
    """The split of ``data``, or the one-line reason no evaluator of ``task`` builds."""
    h, w, _ = data.shape
    if task == "rotation" and h != w:
        raise ZspaceError(f"rotation features need square images; {data.source} gives {h}x{w}")
    return split(data.count)


def split(n: int, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """The evaluator's fixed split of n images: train, valid, reference_a, reference_b."""
    if n < 40:
        raise ZspaceError(f"an evaluator needs at least 40 images; the data set has {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_ref = min(REFERENCE_CAP, int(round(n * REFERENCE_FRACTION)))
    ref, rest = perm[:n_ref], perm[n_ref:][:TRAIN_CAP]
    n_valid = max(1, int(round(len(rest) * VALID_FRACTION)))
    return {
        "train": np.sort(rest[n_valid:]),
        "valid": np.sort(rest[:n_valid]),
        "reference_a": np.sort(ref[: n_ref // 2]),
        "reference_b": np.sort(ref[n_ref // 2 :]),
    }


# ---------------------------------------------------------------- the loaded evaluator


@dataclass
class Evaluator:
    """A loaded evaluator: its net (eval mode), meta, and the reference features."""

    net: FeatureNet
    meta: dict
    folder: Path
    reference: np.ndarray  # features of reference half A
    index_a: np.ndarray
    index_b: np.ndarray
    state: str = "reused"

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    @property
    def has_classifier(self) -> bool:
        return self.task in ("classes", "attributes")

    @property
    def multilabel(self) -> bool:
        return self.task == "attributes"

    def embed(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, H, W, C) images -> (features (N, D) float32, probabilities (N, K))."""
        return embed(self.net, images, self.multilabel)

    def summary(self) -> dict[str, Any]:
        m = self.meta
        return {
            "fingerprint": m["fingerprint"],
            "kind": m["task"],
            "accuracy": m["accuracy"],
            "reference_size": int(len(self.index_a)),
            "probe_size": int(len(self.index_b)),
            "feature_dim": m["net"]["feature_dim"],
            "why": m["why"],
            "data": m["data"],
            "version": m["version"],
            "folder": str(self.folder),
        }


def embed(net: FeatureNet, images: np.ndarray, multilabel: bool) -> tuple[np.ndarray, np.ndarray]:
    feats, probs = [], []
    net.eval()
    with torch.no_grad():
        for _, x in _batches(net, images):
            f, logits = net(x)
            feats.append(f.float().cpu().numpy())
            p = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
            probs.append(p.double().cpu().numpy())
    if not feats:
        return np.zeros((0, net.feature_dim), np.float32), np.zeros((0, net.outputs))
    return np.concatenate(feats), np.concatenate(probs)


def _batches(net: FeatureNet, images: np.ndarray) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, float NCHW batch on the net's device) of uint8 NHWC images."""
    device = next(net.parameters()).device
    for s in range(0, len(images), BATCH):
        u8 = torch.from_numpy(np.ascontiguousarray(images[s : s + BATCH]))
        yield s, to_float_nchw(u8).to(device)


def probe(slot: Slot, fingerprint: str) -> tuple[str, dict | None, str]:
    """(state, meta, reason): "fresh", "stale", "absent" or "broken", without the lock."""
    if not slot.meta_path.is_file():
        return "absent", None, "not built yet"
    try:
        meta = read_json(slot.meta_path)
    except ZspaceError:
        return "broken", None, "its meta.json is unreadable"
    if not isinstance(meta, dict) or meta.get("version") != EVALUATOR_VERSION:
        old = meta.get("version") if isinstance(meta, dict) else None
        return "stale", meta, f"evaluator version {old}, this zspace builds {EVALUATOR_VERSION}"
    if meta.get("data", {}).get("fingerprint") != fingerprint:
        return "stale", meta, "the data changed since it was built (another content fingerprint)"
    if meta.get("sealed") != digest({k: v for k, v in meta.items() if k != "sealed"}):
        return "broken", meta, "its meta.json was changed after it was written"
    try:
        _verified(slot, meta)
    except ZspaceError as exc:
        return "broken", meta, str(exc)
    return "fresh", meta, ""


def _verified(slot: Slot, meta: dict) -> Path:
    """The build folder, every file of it checked against the sha256 meta.json lists."""
    build = slot.folder / str(meta.get("build"))
    listed = meta.get("files") or {}
    found = sorted(p.name for p in build.iterdir()) if build.is_dir() else []
    if found != sorted(listed):
        raise ZspaceError(f"evaluator {build} holds {found}, its meta.json lists {sorted(listed)}")
    for name, want in listed.items():
        if sha256_of(build / name) != want:
            raise ZspaceError(f"evaluator {build / name} does not match its meta.json (sha256)")
    return build


def _load(slot: Slot, meta: dict, count: int, device: torch.device) -> Evaluator:
    """The evaluator of a fresh slot (its files verified by ``probe``), its reference
    arrays checked against the net and the data's ``count`` images."""
    build = slot.folder / meta["build"]
    try:
        net = FeatureNet(**meta["net"])
        net.load_state_dict(load_checkpoint(build / "weights.pt", map_location="cpu")["model"])
        arrays = read_npz(build / "reference.npz")
        ref, ia, ib = arrays["features_a"], arrays["index_a"], arrays["index_b"]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ZspaceError(f"evaluator {build} does not load: {first_line(exc)}") from None
    fits = ref.dtype.kind == "f" and ref.shape[1:] == (net.feature_dim,) and len(ref) == len(ia)
    for index in (ia, ib):
        fits = fits and index.ndim == 1 and index.dtype.kind in "iu" and len(index) > 0
        fits = fits and 0 <= index.min() and index.max() < count
    if not fits:
        raise ZspaceError(f"evaluator {build / 'reference.npz'} does not fit its net and data")
    net.to(device).eval()
    return Evaluator(net, meta, slot.folder, ref, ia, ib)


def slot_for(data: ImageData, crop: str, task: str, cache_dir: str = "") -> Slot:
    h, w, c = data.shape
    geometry = {"height": h, "width": w, "channels": c, "crop": crop}
    key = digest({"source": data.source, "geometry": geometry, "task": task})
    kind, _, path = data.source.partition(":")
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).name or kind)[:40] or "data"
    stem = f"{kind}-{base}-{h}x{w}x{c}-{task}-{key[:12]}"
    return Slot(cache_root(cache_dir) / "evaluators" / stem, key, geometry)


def open_evaluator(
    data: ImageData,
    *,
    crop: str = "center",
    cache_dir: str = "",
    task: str = "auto",
    rebuild: bool = False,
    build: bool = True,
    device: str | torch.device = "cpu",
    log: Log = None,
    progress: bool | None = None,
) -> Evaluator:
    """The fresh cached evaluator for ``data`` at its geometry, built (under the lock)
    when absent, stale or broken, or when ``rebuild``; logged either way."""
    task, why = resolve_task(data, task, log)
    slot = slot_for(data, crop, task, cache_dir)
    fp = data_fingerprint(data)
    device = torch.device(device)

    def opened(meanwhile: str = "") -> tuple[str, Evaluator | None, str]:
        state, meta, reason = probe(slot, fp)
        if state != "fresh" or meta is None or rebuild:
            return state, None, reason
        try:
            ev = _load(slot, meta, data.count, device)
        except ZspaceError as exc:
            return "broken", None, str(exc)
        if log:
            log(f"evaluator: reused {slot.folder} ({meanwhile}{_describe(ev.meta)})")
        return state, ev, ""

    state, ev, reason = opened()
    if ev is not None:
        return ev
    if not build:
        raise ZspaceError(
            f"no usable evaluator for {data.source} ({reason or 'broken'}); "
            f"build it with `zspace evaluator train`"
        )
    buildable(data, task)  # a refused build leaves no folder behind
    with building(slot.folder, slot.lock_path, "evaluator", log):
        state, ev, reason = opened("built meanwhile; ")  # by another process
        if ev is not None:
            return ev
        what = "building" if state == "absent" else "rebuilding"
        because = "asked to rebuild" if state == "fresh" else reason
        if log:
            log(f"evaluator: {what} {slot.folder}: {because}; task {task} ({why})")
        with progress_switch(progress):
            ev = _build(slot, data, task, why, fp, device, log)
    ev.state = "built" if what == "building" else "rebuilt"
    if log:
        log(f"evaluator: {ev.state} in {ev.meta['train_seconds']:.1f} s ({_describe(ev.meta)})")
    return ev


def _describe(meta: dict) -> str:
    acc = meta.get("accuracy")
    return (
        f"{meta['task']}, held-out accuracy {acc:.3f}, reference {meta['reference_size']} images, "
        f"fingerprint {meta['fingerprint']}"
    )


def _targets(data: ImageData, task: str) -> tuple[np.ndarray, int]:
    if task == "classes":
        labels = np.asarray(data.labels, np.int64)
        return labels, int(labels.max()) + 1
    if task == "attributes":
        attr = np.asarray(data.attr, np.int64)
        return attr, attr.shape[1]
    return np.zeros(data.count, np.int64), ROTATIONS


def epochs_for(n_train: int) -> int:
    return int(min(20, max(5, math.ceil(IMAGE_BUDGET / max(1, n_train)))))


def batch_for(n_train: int) -> int:
    """128, smaller for small sets (at least ~40 steps an epoch, never below 32)."""
    return int(min(128, max(32, n_train // 40)))


def held_out_accuracy(net: FeatureNet, task: str, images: np.ndarray, targets: np.ndarray) -> float:
    """Accuracy on images no training saw: classes; attributes (per known value);
    rotation (every image at all four turns)."""
    kind = "classes" if task == "rotation" else task
    correct = count = 0.0
    net.eval()
    with torch.no_grad():
        for s, x in _batches(net, images):
            y = torch.from_numpy(targets[s : s + BATCH]).to(x.device)
            for t in range(ROTATIONS if task == "rotation" else 1):
                xt = torch.rot90(x, t, dims=(2, 3)) if t else x
                yt = torch.full_like(y, t) if task == "rotation" else y
                _, right, judged = batch_terms(kind, net, xt, yt)
                correct += float(right)
                count += float(judged)
    return correct / max(1.0, count)


def _build(
    slot: Slot,
    data: ImageData,
    task: str,
    why: str,
    fingerprint: str,
    device: torch.device,
    log: Log,
) -> Evaluator:
    """Train and save an evaluator (a build folder, then meta.json: the commit record)
    and return it as loaded, without reading back what it wrote."""
    h, w, c = data.shape
    parts = buildable(data, task)
    targets, outputs = _targets(data, task)
    rows = np.sort(np.concatenate(list(parts.values())))
    images = np.ascontiguousarray(data.images[rows])  # only the rows used, in memory
    local = {k: np.searchsorted(rows, v) for k, v in parts.items()}
    tgt = targets[rows]
    torch.manual_seed(SPLIT_SEED)
    net = FeatureNet((c, h, w), outputs).to(device)
    for old in slot.folder.glob("build-*"):  # leftovers of a crashed build
        shutil.rmtree(old, ignore_errors=True)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    build = slot.folder / f"build-{token}"
    epochs = epochs_for(len(local["train"]))
    started = time.perf_counter()
    try:
        fitted = train_net(
            net, task, images, tgt, local["train"], local["valid"], build,
            epochs=epochs, batch_size=batch_for(len(local["train"])), seed=SPLIT_SEED, log=log,
        )  # fmt: skip
        ref = np.concatenate([local["reference_a"], local["reference_b"]])
        accuracy = held_out_accuracy(net, task, images[ref], tgt[ref])
        feats_a, _ = embed(net, images[local["reference_a"]], task == "attributes")
        weights = build / "weights.pt"
        os.replace(build / "checkpoints" / "best.pt", weights)
        shutil.rmtree(build / "checkpoints")
        np.savez(
            build / "reference.npz",
            features_a=feats_a,
            index_a=parts["reference_a"],
            index_b=parts["reference_b"],
        )
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    ident = {"key": slot.key, "data": fingerprint, "version": EVALUATOR_VERSION, "seed": SPLIT_SEED}
    meta = {
        "version": EVALUATOR_VERSION,
        "fingerprint": digest(ident)[:16],  # what defines it, not its float rounding
        "task": task,
        "why": why,
        "accuracy": accuracy,
        "data": {
            "source": data.source,
            "count": data.count,
            "fingerprint": fingerprint,
            "geometry": slot.geometry,
            "label_names": list(data.label_names) if data.label_names else None,
            "attr_names": list(data.attr_names) if data.attr_names else None,
        },
        "split": {"seed": SPLIT_SEED, **{k: int(len(v)) for k, v in parts.items()}},
        "reference_size": int(len(parts["reference_a"])),
        "net": net.describe(),
        "epochs": epochs,
        "best_epoch": fitted["best_epoch"],
        "history": fitted["history"],
        "train_seconds": round(seconds, 2),
        "device": str(device),
        "build": build.name,
        "files": {p.name: sha256_of(p) for p in sorted(build.iterdir())},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    meta["sealed"] = digest(meta)
    atomic_write_json(slot.meta_path, meta)  # the commit record
    for old in slot.folder.glob("build-*"):
        if old.name != build.name:
            shutil.rmtree(old, ignore_errors=True)
    return Evaluator(net, meta, slot.folder, feats_a, parts["reference_a"], parts["reference_b"])


def evaluator_info(
    data: ImageData, *, crop: str = "center", cache_dir: str = "", task: str = "auto"
) -> dict[str, Any]:
    """What ``zspace evaluator info`` shows: the slot, its state and its meta."""
    task, why = resolve_task(data, task)
    slot = slot_for(data, crop, task, cache_dir)
    state, meta, reason = probe(slot, data_fingerprint(data))
    out: dict[str, Any] = {
        "source": data.source,
        "geometry": slot.geometry,
        "task": task,
        "why": why,
        "folder": str(slot.folder),
        "state": state,
    }
    if reason:
        out["reason"] = reason
    if meta and state == "fresh":
        keep = ("fingerprint", "accuracy", "reference_size", "split", "epochs", "best_epoch",
                "train_seconds", "created")  # fmt: skip
        out.update({k: meta.get(k) for k in keep})
    return out

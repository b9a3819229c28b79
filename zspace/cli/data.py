"""The ``zspace data`` command: ``info``, ``preview`` and ``download``.

The top-level CLI calls ``add_parser(subparsers)`` and then ``args.func(args)``;
every function here returns the exit code and raises ``ZspaceError`` for user
errors (printed as one line by the caller).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from zspace.cli import common
from zspace.cli.common import count, flag, opt, out, split

if TYPE_CHECKING:
    from zspace.config import Config
    from zspace.data.dataset import ImageData

LABEL_LIST_MAX = 20


def add_parser(subparsers) -> None:
    """Register ``data`` with its sub-commands on the top-level subparsers."""
    parser = subparsers.add_parser(
        "data",
        help="inspect, preview and download data sets",
        description="Inspect, preview and download data sets (see docs/data.md).",
    )
    sub = parser.add_subparsers(
        dest="data_command", metavar="{info,preview,download}", required=True
    )

    info = sub.add_parser("info", help="count, shape, labels, splits and cache state of a source")
    _source_arguments(info)
    flag(info, "--json", "print the facts as JSON")
    info.set_defaults(func=cmd_info)

    preview = sub.add_parser("preview", help="write a PNG grid of samples after geometry and task")
    _source_arguments(preview)
    out(preview, "-o", "PNG file (default: preview-<kind>.png)", metavar="FILE")
    count(preview, 64, "images to show")
    opt(preview, "--cols --columns", 8, "images per row")
    split(preview)
    preview.set_defaults(func=cmd_preview)

    download = sub.add_parser("download", help="fetch MNIST, Fashion-MNIST, KMNIST or CIFAR-10")
    download.add_argument("name", help="mnist, fashion-mnist, kmnist or cifar10 (celeba: see)")
    out(download, "--dir", "parent folder", default="data")
    what = "only the train or the test files of an IDX set"
    opt(download, "--files --only", "all", what, choices=("all", "train", "test"))
    what = "base URL to use instead of the publisher's (repeatable)"
    opt(download, "--mirror", None, what, action="append", metavar="URL", dest="mirrors")
    download.set_defaults(func=cmd_download)


def _source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", help="KIND:PATH or a path (default: the config's)")
    common.config_options(p)
    common.data_options(p)


def build_config(args: argparse.Namespace) -> Config:
    """The Config from ``--config``, the positional source and the shortcuts, then ``--set``."""
    from zspace.config import load_config

    return load_config(args.config, common.data_overrides(args, args.source))


def describe(data: ImageData, cfg: Config) -> dict:
    """The facts ``data info`` shows, JSON-friendly."""
    from zspace.data.dataset import split_indices
    from zspace.data.quality import image_checks
    from zspace.data.sources import READERS, parse_source

    kind, _ = parse_source(cfg.data.source)
    splits = split_indices(data, cfg.data.valid_fraction, cfg.seed)
    info = {
        "source": data.source,
        "kind": kind,
        "reader": READERS[kind].description,
        "count": data.count,
        "shape": list(data.shape),
        "bytes": int(data.images.nbytes),
        "splits": {name: len(idx) for name, idx in splits.items()},
        "split_from": "source" if data.partition is not None else "data.valid_fraction",
        "task": cfg.data.task,
        "label_names": list(data.label_names) if data.label_names else None,
        "label_counts": None
        if data.labels is None
        else [int((data.labels == i).sum()) for i in range(len(data.label_names or ()))],
        "attr_names": list(data.attr_names) if data.attr_names else None,
        **image_checks(data.images),
        "cache": data.details.get("cache", {"state": "not used"}),
        "skipped": data.details.get("skipped", 0),
        "skipped_examples": data.details.get("skipped_examples", []),
    }
    if data.attr is not None:
        with_row = int((data.attr != 0).any(axis=1).sum())
        info["attr_rows"] = {"with": with_row, "without": data.count - with_row}
    more = ("attributes", "partition", "labels_from", "converted_from_channels")
    return info | {key: data.details[key] for key in more if key in data.details}


def format_info(info: dict) -> str:
    h, w, c = info["shape"]
    lines = [
        ("source", info["source"]),
        ("reader", f"{info['kind']}: {info['reader']}"),
        ("images", f"{info['count']} of {h}x{w}x{c} uint8 ({_mb(info['bytes'])})"),
    ]
    if info["label_names"]:
        pairs = [f"{n} {k}" for n, k in zip(info["label_names"], info["label_counts"], strict=True)]
        more = len(pairs) - LABEL_LIST_MAX
        text = ", ".join(pairs[:LABEL_LIST_MAX]) + (f", ... ({more} more)" if more > 0 else "")
        lines.append(("labels", f"{len(pairs)} classes: {text}"))
    else:
        lines.append(("labels", "none"))
    if names := info["attr_names"]:
        rows, n = info["attr_rows"], info["count"]
        part = f"{rows['with']} of {n} images, {rows['without']} without a row"
        text = f"attributes for {part if rows['without'] else f'all {n} images'}"
        lines.append(("attributes", f"{len(names)} ({', '.join(names[:4])}, ...); {text}"))
    dup, blank = info["duplicates"], info["near_constant"]
    text = f"{dup['copies']} exact copies of {_count(dup['images'], 'image')} ("
    text += (
        f"{dup['largest_size']} identical: images {_indices(dup['largest'], dup['largest_size'])})"
    )
    lines.append(("duplicates", text if dup["copies"] else "none"))
    text = f"{_count(blank['count'], 'image')} with pixel std <= {blank['std_at_most']:g} of 255 "
    text += f"(images {_indices(blank['examples'], blank['count'])})"
    lines.append(("near-constant", text if blank["count"] else "none"))
    splits = ", ".join(f"{k} {v}" for k, v in info["splits"].items())
    origin = (
        "the source's partition" if info["split_from"] == "source" else "seeded data.valid_fraction"
    )
    lines.append(("splits", f"{splits} ({origin})"))
    lines.append(("task", info["task"]))
    cache = info["cache"]
    text = cache.get("state", "not used")
    if "data" in cache:
        text += f": {cache['data']} ({_mb(cache['bytes'])}"
        if cache.get("build_seconds") is not None:
            text += f", decoded in {cache['build_seconds']:.1f} s"
        text += ")"
    lines.append(("cache", text))
    if info["skipped"]:
        name, reason = info["skipped_examples"][0]
        lines.append(("skipped", f"{info['skipped']} unreadable file(s), e.g. {name}: {reason}"))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _indices(shown: list[int], of: int) -> str:
    return ", ".join(map(str, shown)) + (", ..." if of > len(shown) else "")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_info(args: argparse.Namespace) -> int:
    from zspace.data.sources import load_data

    cfg = build_config(args)
    info = describe(load_data(cfg.data), cfg)
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from zspace.core.checks import positive
    from zspace.core.fileio import check_writable
    from zspace.data.preview import preview
    from zspace.data.sources import load_data, parse_source

    positive("--count", args.count)
    positive("--cols", args.cols)
    cfg = build_config(args)
    kind, _ = parse_source(cfg.data.source)
    out = Path(args.out or f"preview-{kind}.png")
    check_writable(out, "--out")
    data = load_data(cfg.data)
    shown = preview(
        data, cfg.data, out, count=args.count, columns=args.cols, split=args.split, seed=cfg.seed
    )
    h, w, c = data.shape
    print(f"wrote {out}: {shown} {args.split} images at {h}x{w}x{c}, task {cfg.data.task}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from zspace.data.download import download

    dataset, folder = download(args.name, Path(args.out), only=args.files, mirrors=args.mirrors)
    print(f"{dataset.name}: verified in {folder}")
    print(f"licence: {dataset.licence}")
    print(f"use it with: --set data.source={dataset.kind}:{folder}")
    return 0

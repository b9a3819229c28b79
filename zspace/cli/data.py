"""The ``zspace data`` command: ``info``, ``preview`` and ``download``.

The top-level CLI calls ``add_parser(subparsers)`` and then ``args.func(args)``;
every function here returns the exit code and raises ``ZspaceError`` for user
errors (printed as one line by the caller).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zspace.cli.common import deprecated_alias
from zspace.config import Config, load_config
from zspace.data.dataset import ImageData, split_indices
from zspace.data.sources import READERS, load_data, parse_source

LABEL_LIST_MAX = 20


def add_parser(subparsers) -> None:
    """Register ``data`` with its sub-commands on the top-level subparsers."""
    parser = subparsers.add_parser(
        "data",
        help="inspect, preview and download data sets",
        description="Inspect, preview and download data sets (see docs/data.md).",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="{info,preview,download}")
    sub.required = True

    info = sub.add_parser("info", help="count, shape, labels, splits and cache state of a source")
    _source_arguments(info)
    info.add_argument("--json", action="store_true", help="print the facts as JSON")
    info.set_defaults(func=cmd_info)

    preview = sub.add_parser("preview", help="write a PNG grid of samples after geometry and task")
    _source_arguments(preview)
    preview.add_argument("--out", "-o", help="PNG file (default: preview-<kind>.png)")
    preview.add_argument("--count", type=int, default=64, help="images to show (default 64)")
    preview.add_argument("--cols", type=int, default=8, help="images per row (default 8)")
    preview.add_argument(
        "--columns",
        type=int,
        dest="cols",
        action=deprecated_alias("--cols"),
        help=argparse.SUPPRESS,
    )
    preview.add_argument("--split", default="train", help="train, valid or test (default train)")
    preview.set_defaults(func=cmd_preview)

    download = sub.add_parser("download", help="fetch MNIST, Fashion-MNIST, KMNIST or CIFAR-10")
    download.add_argument("name", help="mnist, fashion-mnist, kmnist or cifar10 (celeba: see)")
    download.add_argument("--dir", default="data", help="parent folder (default ./data)")
    download.add_argument(
        "--only",
        choices=("all", "train", "test"),
        default="all",
        help="only the train or the test files of an IDX set",
    )
    download.add_argument(
        "--mirror",
        action="append",
        metavar="URL",
        dest="mirrors",
        help="base URL to use instead of the publisher's (repeatable)",
    )
    download.set_defaults(func=cmd_download)


def _source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", help="KIND:PATH or a path (default: the config's)")
    p.add_argument("--config", "-c", dest="data_config", metavar="FILE", help="TOML config")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        dest="data_overrides",
        metavar="SECTION.KEY=VALUE",
        help="override a config value (repeatable)",
    )
    p.add_argument("--size", type=int, help="same as --set data.image_size=N")
    p.add_argument("--channels", type=int, choices=(0, 1, 3), help="data.channels")
    p.add_argument(
        "--task",
        choices=("reconstruct", "denoise", "recolor"),
        help="data.task; denoise needs --set data.noise_sigma=S (e.g. 0.1) and/or "
        "--set data.drop_fraction=F (e.g. 0.05)",
    )
    p.add_argument("--cache-dir", help="data.cache_dir")


def build_config(args: argparse.Namespace) -> Config:
    """The Config from ``--config``, the positional source and the conveniences, then ``--set``."""
    overrides = []
    if args.source:
        overrides.append(f"data.source={json.dumps(args.source)}")
    if args.size is not None:
        overrides.append(f"data.image_size={args.size}")
    if args.channels is not None:
        overrides.append(f"data.channels={args.channels}")
    if args.task is not None:
        overrides.append(f"data.task={json.dumps(args.task)}")
    if args.cache_dir:
        overrides.append(f"data.cache_dir={json.dumps(args.cache_dir)}")
    return load_config(args.data_config, overrides + list(args.data_overrides))


def describe(data: ImageData, cfg: Config) -> dict:
    """The facts ``data info`` shows, JSON-friendly."""
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
        "label_counts": None,
        "attr_names": list(data.attr_names) if data.attr_names else None,
        "cache": data.details.get("cache", {"state": "not used"}),
        "skipped": data.details.get("skipped", 0),
        "skipped_examples": data.details.get("skipped_examples", []),
    }
    if data.labels is not None:
        counts = [int((data.labels == i).sum()) for i in range(len(data.label_names or ()))]
        info["label_counts"] = counts
    if data.attr is not None:
        with_row = int((data.attr != 0).any(axis=1).sum())
        info["attr_rows"] = {"with": with_row, "without": data.count - with_row}
    for key in ("attributes", "partition", "labels_from", "converted_from_channels"):
        if key in data.details:
            info[key] = data.details[key]
    return info


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
    if info["attr_names"]:
        names = info["attr_names"]
        rows = info["attr_rows"]
        text = f"{len(names)} ({', '.join(names[:4])}, ...); "
        if rows["without"]:
            text += (
                f"attributes for {rows['with']} of {info['count']} images, "
                f"{rows['without']} without a row"
            )
        else:
            text += f"attributes for all {info['count']} images"
        lines.append(("attributes", text))
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


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_info(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    info = describe(load_data(cfg.data), cfg)
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from zspace.core.checks import positive
    from zspace.core.fileio import check_writable
    from zspace.data.preview import preview

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

    dataset, folder = download(args.name, Path(args.dir), only=args.only, mirrors=args.mirrors)
    print(f"{dataset.name}: verified in {folder}")
    print(f"licence: {dataset.licence}")
    print(f"use it with: --set data.source={dataset.kind}:{folder}")
    return 0

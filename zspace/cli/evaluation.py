"""``zspace evaluate RUN`` and ``zspace evaluator info|train DATA``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zspace.core.errors import ZspaceError
from zspace.evaluation.nets import TASKS


def _task(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--task",
        choices=("auto", *TASKS),
        default="auto",
        help="evaluator kind: auto (classes with labels, attributes with >= 2000 attributed "
        "images, else rotation), or one of them",
    )


def add_parser(subparsers) -> None:
    """Register ``evaluate`` and ``evaluator`` on the top-level subparsers."""
    from zspace.cli.generation import _floats, _ints
    from zspace.evaluation.metrics import DEFAULT_K, DEFAULT_ROUNDS

    p = subparsers.add_parser(
        "evaluate",
        help="score generated images in an independent evaluator's feature space",
        description="Precision, recall, density, coverage, FD-zspace, KID, confident share "
        "and face rate per sampler against held-out real images, with the real-vs-real "
        "floor first; writes RUN/samples/eval.json. See docs/evaluation.md.",
    )
    p.add_argument("run", help="run folder")
    p.add_argument(
        "--sampler", default="normal,gauss,gmm", help="comma list (default normal,gauss,gmm)"
    )
    p.add_argument("-n", "--count", type=int, default=1000, help="images per sampler (1000)")
    p.add_argument("-k", type=int, default=DEFAULT_K, help=f"k-NN radius (default {DEFAULT_K})")
    p.add_argument("--seed", type=int, help="default: the run's config seed")
    p.add_argument("--limits", type=_floats, help="uniform limits, e.g. 0.5,1,2")
    p.add_argument("--components", type=_ints, help="GMM components (N, list or LO-HI)")
    p.add_argument("--oracle", choices=("auto", "faces", "none"), default="auto",
                   help="face detector: auto (CelebA), faces (any data), none")  # fmt: skip
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="bootstrap rounds")
    p.add_argument("--json", action="store_true", help="print eval.json's rows as JSON")
    p.add_argument("--no-progress", action="store_true")
    _task(p)
    p.set_defaults(func=cmd_evaluate)

    e = subparsers.add_parser(
        "evaluator",
        help="show or build the evaluator of a data set",
        description="The evaluator is trained once per data set, geometry and task and "
        "cached under the data cache root. DATA: KIND:PATH, a config TOML or a run folder.",
    )
    sub = e.add_subparsers(dest="evaluator_command", metavar="{info,train}")
    sub.required = True
    commands = (
        ("info", "where it is and whether it is fresh"),
        ("train", "build it now (reused when fresh unless --force)"),
    )
    for name, help_text in commands:
        s = sub.add_parser(name, help=help_text)
        s.add_argument("data", help="KIND:PATH, a config TOML or a run folder")
        s.add_argument(
            "--set", action="append", default=[], dest="overrides",
            metavar="SECTION.KEY=VALUE", help="override a config value (repeatable)",
        )  # fmt: skip
        s.add_argument("--size", type=int, help="same as --set data.image_size=N")
        s.add_argument("--cache-dir", help="data.cache_dir")
        _task(s)
        if name == "train":
            s.add_argument("--force", action="store_true", help="rebuild even when fresh")
            s.add_argument("--no-progress", action="store_true")
        s.set_defaults(func=cmd_evaluator)


def data_config(args: argparse.Namespace):
    """The Config that DATA names: a TOML file, a run folder's config, or a source."""
    from zspace.config import load_config

    extra = list(args.overrides)
    if args.size is not None:
        extra.append(f"data.image_size={args.size}")
    if args.cache_dir:
        extra.append(f"data.cache_dir={json.dumps(args.cache_dir)}")
    path = Path(args.data)
    if path.is_file() and path.suffix == ".toml":
        return load_config(path, extra)
    if path.is_dir() and (path / "config.toml").is_file():
        return load_config(path / "config.toml", extra)
    return load_config(None, [f"data.source={json.dumps(args.data)}", *extra])


def cmd_evaluator(args: argparse.Namespace) -> int:
    from zspace.data import load_data
    from zspace.evaluation.evaluator import evaluator_info, open_evaluator

    cfg = data_config(args)
    data = load_data(cfg.data)
    where = {"crop": cfg.data.crop, "cache_dir": cfg.data.cache_dir, "task": args.task}
    if args.evaluator_command == "info":
        print(json.dumps(evaluator_info(data, **where), indent=2))
        return 0
    ev = open_evaluator(data, **where, rebuild=args.force, log=print, progress=not args.no_progress)
    print(json.dumps(ev.summary(), indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from zspace.evaluation.api import FD_NAME, evaluate

    if args.k < 1:
        raise ZspaceError(f"-k {args.k}: must be >= 1")
    res = evaluate(
        args.run, args.sampler, n=args.count, k=args.k, seed=args.seed, limits=args.limits,
        components=args.components, oracle=args.oracle, task=args.task, rounds=args.rounds,
        log=print, progress=not args.no_progress,
    )  # fmt: skip
    if args.json:
        print(json.dumps(res["results"], indent=2))
        return 0
    ev = res["evaluator"]
    print(
        f"evaluator {ev['fingerprint']} ({ev['kind']}, held-out accuracy {ev['accuracy']:.3f}, "
        f"reference {ev['reference_size']} images); n = {res['n']}, k = {res['k']}"
    )
    names = ["precision", "recall", "density", "coverage", "fd", "kid"]
    names += [m for m in ("confident_share", "face_rate") if m in res["results"][0]["metrics"]]
    head = ["sampler"] + [FD_NAME if m == "fd" else m for m in names]
    print("  ".join(f"{h:>16}" for h in head))
    for r in res["results"]:
        label = r["sampler"] + (f" {r['params']['limit']:g}" if "limit" in r["params"] else "")
        cells = [f"{r['metrics'][m]:.4g}+-{r['spread'][m]:.2g}" for m in names]
        print("  ".join(f"{c:>16}" for c in [label, *cells]))
    return 0

"""``zspace evaluate RUN`` and ``zspace evaluator info|train DATA``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zspace.cli import common
from zspace.cli.common import opt
from zspace.core.errors import ZspaceError


def add_parser(subparsers) -> None:
    """Register ``evaluate`` and ``evaluator`` on the top-level subparsers."""
    p = subparsers.add_parser(
        "evaluate",
        help="score generated images in an independent evaluator's feature space",
        description="FD-zspace (the headline), vouched precision (the fidelity), precision, "
        "recall, density, coverage, KID, extent, confident share and face rate per sampler "
        "against held-out real images, with the real-vs-real floor first and a flag on every "
        "row not to be read at face value; writes RUN/samples/eval.json. See "
        "docs/evaluation.md.",
    )
    common.run_folder(p)
    common.sampler_options(p, "normal,gauss,gmm")
    common.count(p, 1000, "images per sampler")
    common.evaluation_options(p)
    common.flag(p, "--json", "print eval.json's rows as JSON")
    common.no_progress(p)
    p.set_defaults(func=cmd_evaluate)

    e = subparsers.add_parser(
        "evaluator",
        help="show or build the evaluator of a data set",
        description="The evaluator is trained once per data set, geometry and task and "
        "cached under the data cache root. DATA: KIND:PATH, a config TOML or a run folder.",
    )
    sub = e.add_subparsers(dest="evaluator_command", metavar="{info,train}", required=True)
    for name, what in (
        ("info", "where it is and whether it is fresh"),
        ("train", "build it now (reused when fresh unless --force)"),
    ):
        s = sub.add_parser(name, help=what)
        s.add_argument("data", help="KIND:PATH, a config TOML or a run folder")
        common.config_options(s, file=False)
        common.data_options(s, task=False)
        opt(s, "--task", "auto", common.TASK, metavar="KIND")
        if name == "train":
            common.flag(s, "--force", "rebuild even when fresh")
            common.no_progress(s)
        s.set_defaults(func=cmd_evaluator)


def data_config(args: argparse.Namespace):
    """The Config that DATA names: a TOML file, a run folder's config, or a source."""
    from zspace.config import load_config

    path = Path(args.data)
    if (path / "config.toml").is_file():
        path = path / "config.toml"
    if path.is_file() and path.suffix == ".toml":
        return load_config(path, common.data_overrides(args))
    return load_config(None, common.data_overrides(args, args.data))


def cmd_evaluator(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from zspace.data import load_data
    from zspace.data.arrays import resolve_run_source
    from zspace.evaluation.evaluator import evaluator_info, open_evaluator

    cfg = data_config(args)
    run_dir = Path(args.data) if (Path(args.data) / "config.toml").is_file() else None
    data = load_data(replace(cfg.data, source=resolve_run_source(cfg.data.source, run_dir)))
    where = {"crop": cfg.data.crop, "cache_dir": cfg.data.cache_dir, "task": args.task}
    if args.evaluator_command == "info":
        print(json.dumps(evaluator_info(data, **where), indent=2))
        return 0
    ev = open_evaluator(data, **where, rebuild=args.force, log=print)
    print(json.dumps(ev.summary(), indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from zspace.evaluation.api import evaluate
    from zspace.evaluation.reading import METRICS, ranked
    from zspace.reporting.text import places, pm

    if args.k is not None and args.k < 1:
        raise ZspaceError(f"-k {args.k}: must be >= 1")
    res = evaluate(
        args.run, n=args.count, log=print,
        **common.given(args, *common.SAMPLING),
    )  # fmt: skip
    if args.json:
        print(json.dumps(res["results"], indent=2))
        return 0
    ev = res["evaluator"]
    print(
        f"evaluator {ev['fingerprint']} ({ev['kind']}, held-out accuracy {ev['accuracy']:.3f}, "
        f"reference {ev['reference_size']} images); n = {res['n']}, k = {res['k']}; sorted by "
        f"the headline, {METRICS[res['headline']['metric']]}"
    )
    names = [m for m in METRICS if m in res["results"][0]["metrics"]]
    print("  ".join(f"{h:>16}" for h in ["sampler", *(METRICS[m] for m in names)]))
    flagged = []  # a zero spread takes its column's decimals, as on the pages
    decimals = {m: places([r["spread"][m] for r in res["results"]], 2, zeros=True) for m in names}
    for r in ranked(res["results"], res["headline"]):
        label = r["sampler"] + (f" {r['params']['limit']:g}" if "limit" in r["params"] else "")
        cells = [
            pm(r["metrics"][m], r["spread"][m], decimals[m]).replace("\u00a0", " ") for m in names
        ]
        print("  ".join(f"{c:>16}" for c in [label + " !" * bool(r["flags"]), *cells]))
        flagged += [f"! {label}: {f}" for f in r["flags"]]
    if flagged:
        print("\n".join(flagged))
    return 0

"""CLI verbs of the analysis stage: encode, analyze, report, compare, pipeline."""

from __future__ import annotations

import argparse

from zspace.analysis.runner import SPECS
from zspace.cli.common import deprecated_alias
from zspace.data.dataset import SPLITS


def add_parser(sub) -> None:
    p = sub.add_parser("encode", help="encode a split of a run's data into latents/<split>.npz")
    p.add_argument("run", help="run folder")
    p.add_argument("--split", default="train", choices=SPLITS)
    p.add_argument(
        "--eps-scale", type=float, help="VAE: scale of the sampled eps (default: the model's)"
    )
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_encode)

    names = ", ".join(SPECS)
    p = sub.add_parser(
        "analyze",
        help="analyse a run's latents (radius, axes, pca, ...)",
        description=f"Analyses: {names}. Parameters as NAME.KEY=VALUE, e.g. "
        "--set radius.bin_width=0.05 --set pca.pairs=1-2,1-18 "
        "--set tsne.n=5000; see docs/analysis.md.",
    )
    p.add_argument("run", help="run folder (encode it first)")
    p.add_argument("--split", default="train", choices=SPLITS)
    p.add_argument("--only", help=f"comma-separated subset of: {names}")
    _param_options(p)
    p.add_argument(
        "--set", dest="params", action=deprecated_alias("--param"), help=argparse.SUPPRESS
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_analyze)

    p = sub.add_parser("report", help="write RUN/report.html from the saved results")
    p.add_argument("run", help="run folder")
    p.set_defaults(func=_report)

    p = sub.add_parser("compare", help="put runs side by side in DIR/compare.html")
    p.add_argument("runs", nargs="+", help="two or more run folders")
    p.add_argument("--out", required=True, help="folder for compare.html")
    p.set_defaults(func=_compare)

    p = sub.add_parser("pipeline", help="train -> encode -> analyze -> report in one command")
    p.add_argument("--config", help="TOML file (defaults when omitted)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value",
    )
    _param_options(p)
    p.add_argument(
        "--analysis-set", dest="params", action=deprecated_alias("--param"), help=argparse.SUPPRESS
    )
    p.add_argument("--only", help=f"comma-separated subset of: {names}")
    p.add_argument("--run-dir", help="run folder (default runs/<time>-<ae|vae>)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_pipeline)


def _param_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="analysis parameter, e.g. radius.bin_width=0.05 (repeatable; --set sets config keys)",
    )


def _only(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


def _encode(args: argparse.Namespace) -> int:
    from zspace.latents.encode import encode

    encode(args.run, args.split, args.eps_scale, args.batch_size, log=print)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from zspace.analysis.api import analyze
    from zspace.analysis.runner import parse_sets

    analyze(args.run, args.split, _only(args.only), log=print, **parse_sets(args.params))
    return 0


def _report(args: argparse.Namespace) -> int:
    from zspace.reporting.api import report

    report(args.run, log=print)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from zspace.reporting.api import compare

    compare(args.runs, args.out, log=print)
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    from zspace.analysis.runner import parse_sets
    from zspace.flow.pipeline import pipeline

    pipeline(
        args.config,
        args.overrides,
        args.run_dir,
        analysis=parse_sets(args.params),
        only=_only(args.only),
        progress=not args.no_progress,
    )
    return 0

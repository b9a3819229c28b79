"""CLI verbs of the latents, analysis and reporting stages: encode, analyze, report, compare."""

from __future__ import annotations

import argparse

from zspace.analysis.runner import ANALYSES
from zspace.cli.common import analyses, no_progress, opt, out, params, run_folder, split


def add_parser(sub) -> None:
    p = sub.add_parser("encode", help="encode a split of a run's data into latents/<split>.npz")
    run_folder(p)
    split(p)
    opt(p, "--eps-scale", None, "VAE: scale of the sampled eps (default: the model's)", type=float)
    opt(p, "--batch-size", 512, "images per batch")
    no_progress(p)
    p.set_defaults(func=_encode)

    names = ", ".join(ANALYSES)
    p = sub.add_parser(
        "analyze",
        help="analyse a run's latents (radius, axes, pca, ...)",
        description=f"Analyses: {names}. Parameters as NAME.KEY=VALUE, e.g. --param "
        "radius.bin_width=0.05 --param pca.pairs=1-2,1-18 --param tsne.n=5000; see "
        "docs/analysis.md.",
    )
    run_folder(p, "run folder (encode it first)")
    split(p)
    analyses(p, f"comma-separated subset of: {names}", "--only")
    params(p, "--set")
    no_progress(p)
    p.set_defaults(func=_analyze)

    p = sub.add_parser("report", help="write RUN/report.html from the saved results")
    run_folder(p)
    p.set_defaults(func=_report)

    p = sub.add_parser("compare", help="put runs side by side in DIR/compare.html")
    p.add_argument("runs", nargs="+", help="two or more run folders")
    out(p, "", "folder for compare.html", required=True)
    p.set_defaults(func=_compare)


def _encode(args: argparse.Namespace) -> int:
    from zspace.latents.encode import encode

    encode(args.run, args.split, eps_scale=args.eps_scale, batch_size=args.batch_size, log=print)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from zspace.analysis.api import analyze
    from zspace.analysis.runner import parse_sets

    analyze(args.run, split=args.split, only=args.analyses, log=print, **parse_sets(args.params))
    return 0


def _report(args: argparse.Namespace) -> int:
    from zspace.reporting.api import report

    report(args.run, log=print)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from zspace.reporting.api import compare

    compare(args.runs, args.out, log=print)
    return 0

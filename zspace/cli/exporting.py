"""``zspace export RUN --format projector|safetensors|onnx``."""

from __future__ import annotations

import argparse

from zspace.cli.common import count, opt, out, run_folder, split
from zspace.exporting.api import FORMATS


def add_parser(subparsers) -> None:
    """Register ``export`` on the top-level subparsers."""
    p = subparsers.add_parser(
        "export",
        help="write a run for other tools: TensorBoard Projector, safetensors, ONNX",
        description="Write RUN's model or latents in another tool's format, by default into "
        "RUN/export/<format>/. See docs/export.md.",
    )
    run_folder(p, "run folder (or a safetensors bundle)")
    opt(p, "--format", None, "what to write", required=True, choices=FORMATS)
    out(p, "", "output folder (default RUN/export/<format>)")
    opt(p, "--checkpoint", "best", "best, last or an epoch number")
    split(p, None, "projector: split to show (default train)")
    count(p, None, "projector: points, a seeded subsample (default 10000; 0 = all)", "--n")
    what = "projector: metadata column to put first (label, an attribute, index, radius)"
    opt(p, "--colour-by --color-by", None, what, metavar="COLUMN")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from zspace.exporting.api import export

    export(
        args.run,
        args.format,
        args.out,
        split=args.split,
        n=args.count,
        colour_by=args.colour_by,
        checkpoint=args.checkpoint,
        log=print,
    )
    return 0

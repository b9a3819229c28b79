"""``zspace export RUN --format projector|safetensors|onnx``."""

from __future__ import annotations

import argparse

from zspace.exporting.api import FORMATS


def add_parser(subparsers) -> None:
    """Register ``export`` on the top-level subparsers."""
    p = subparsers.add_parser(
        "export",
        help="write a run for other tools: TensorBoard Projector, safetensors, ONNX",
        description="Write RUN's model or latents in another tool's format, by default into "
        "RUN/export/<format>/. See docs/export.md.",
    )
    p.add_argument("run", help="run folder (or a safetensors bundle)")
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("--out", help="output folder (default RUN/export/<format>)")
    p.add_argument(
        "--checkpoint", default="best", help="best, last or an epoch number (default best)"
    )
    p.add_argument("--split", help="projector: split to show (default train)")
    p.add_argument(
        "--n", type=int, help="projector: points, a seeded subsample (default 10000; 0 = all)"
    )
    p.add_argument(
        "--colour-by", "--color-by", dest="colour_by", metavar="COLUMN",
        help="projector: metadata column to put first (label, an attribute, index, radius)",
    )  # fmt: skip
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from zspace.exporting.api import export

    export(
        args.run, args.format, args.out, split=args.split, n=args.n,
        colour_by=args.colour_by, checkpoint=args.checkpoint, log=print,
    )  # fmt: skip
    return 0

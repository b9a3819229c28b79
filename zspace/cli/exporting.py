"""``zspace export RUN --format projector|safetensors|onnx`` and ``zspace explore RUN`` (the
local interactive page, served until Ctrl-C): the verbs of the exporting and explorer stage."""

from __future__ import annotations

import argparse
import sys

from zspace.cli.common import count, flag, opt, out, run_folder, split
from zspace.core.errors import ZspaceError
from zspace.exporting.api import FORMATS


def add_parser(sub) -> None:
    p = sub.add_parser(
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

    p = sub.add_parser(
        "explore",
        help="interactive latent-space page in the browser (local server)",
        description="Serve a local page that maps the encoded points, decodes any point "
        "as you move sliders, draws from the samplers and interpolates between points. "
        "Needs `zspace encode RUN` first. See docs/explore.md.",
    )
    run_folder(p, "run folder (encoded)")
    opt(p, "--port", 0, "port (default 0: a free one)")
    opt(p, "--host", "127.0.0.1", "address to bind (default 127.0.0.1, loopback only)")
    split(p, help="which encoded split to map")
    count(p, 30_000, "points on the map", "--max-points")
    opt(p, "--threads", None, "torch threads (default: torch's own)", type=int)
    flag(p, "--log-requests", "print every request")
    p.set_defaults(func=_explore)


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


def _explore(args: argparse.Namespace) -> int:
    from zspace.explorer.server import explore

    if not 0 <= args.port <= 65535:
        raise ZspaceError(f"--port {args.port}: must be 0..65535 (0 picks a free one)")
    handle = explore(
        args.run,
        port=args.port,
        host=args.host,
        split=args.split,
        max_points=args.count,
        threads=args.threads,
        log=lambda s: print(s, file=sys.stderr, flush=True),
        log_requests=args.log_requests,
    )
    print(f"zspace explore: {handle.url}  (Ctrl-C stops)", flush=True)
    try:
        handle.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    print("zspace explore: stopped", flush=True)
    return 0

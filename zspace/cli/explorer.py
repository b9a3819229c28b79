"""``zspace explore RUN``: serve the interactive page until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from zspace.cli.common import count, flag, opt, run_folder, split
from zspace.core.errors import ZspaceError


def add_parser(sub) -> None:
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

"""``zspace explore RUN``: serve the interactive page until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from zspace.core.errors import ZspaceError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "explore",
        help="interactive latent-space page in the browser (local server)",
        description="Serve a local page that maps the encoded points, decodes any point "
        "as you move sliders, draws from the samplers and interpolates between points. "
        "Needs `zspace encode RUN` first. See docs/explore.md.",
    )
    p.add_argument("run", help="run folder (encoded)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)"
    )
    p.add_argument("--split", default="train", choices=("train", "valid", "test"))
    p.add_argument(
        "--max-points", type=int, default=30_000, help="points on the map (default 30000)"
    )
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    p.add_argument("--log-requests", action="store_true", help="print every request")
    p.set_defaults(func=_explore)


def _explore(args: argparse.Namespace) -> int:
    from zspace.explorer.server import explore

    if not 0 <= args.port <= 65535:
        raise ZspaceError(f"--port {args.port}: must be 0..65535 (0 picks a free one)")
    err = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    handle = explore(
        args.run, port=args.port, host=args.host, split=args.split, max_points=args.max_points,
        threads=args.threads, log=err, log_requests=args.log_requests,
    )  # fmt: skip
    print(f"zspace explore: {handle.url}  (Ctrl-C stops)", flush=True)
    try:
        handle.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    print("zspace explore: stopped", flush=True)
    return 0

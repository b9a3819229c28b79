"""``zspace config``: the defaults, or a run's resolved configuration, as TOML."""

from __future__ import annotations

import argparse

from zspace.cli import common


def add_parser(sub) -> None:
    p = sub.add_parser(
        "config",
        help="print the default configuration or a run's, as resolved TOML",
        description="Print a resolved configuration as TOML: --defaults (with a comment on "
        "every key; it is what a run without a config file uses), --show RUN (a run's "
        "config.toml, each changed value followed by its default), or FILE (a config file "
        "with --set applied, validated).",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--defaults", action="store_true", help="the defaults, with comments")
    what.add_argument("--show", metavar="RUN", help="a run folder's resolved configuration")
    what.add_argument("file", nargs="?", help="a TOML config file to resolve and check")
    common.config_options(p, file=False)
    p.set_defaults(func=_config)


def _config(args: argparse.Namespace) -> int:
    from zspace.config.docs import annotated_toml, defaults
    from zspace.config.parse import load_config
    from zspace.core.errors import ZspaceError

    if args.overrides and not args.file:
        raise ZspaceError("--set applies to a config FILE: zspace config FILE --set KEY=VALUE")
    if args.defaults:
        print(annotated_toml(defaults()), end="")
    elif args.show:
        from zspace.runs.folder import read_config  # torch: only for a run
        from zspace.runs.run import run_path

        print(annotated_toml(read_config(run_path(args.show)), against=defaults()), end="")
    else:
        print(annotated_toml(load_config(args.file, args.overrides), against=defaults()), end="")
    return 0

"""Command line: argument parsing and friendly errors; the logic lives in the modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from zspace._version import __version__
from zspace.errors import ZspaceError

_warned: set[str] = set()


def deprecated_alias(new: str) -> type[argparse.Action]:
    """An argparse action for an old spelling: stores into the new option's dest and
    warns once per process on stderr, so scripts keep working while they migrate."""

    class Alias(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            if option_string not in _warned:
                _warned.add(str(option_string))
                print(f"zspace: warning: {option_string} is deprecated; use {new}", file=sys.stderr)
            if isinstance(getattr(namespace, self.dest, None), list):
                getattr(namespace, self.dest).append(values)
            else:
                setattr(namespace, self.dest, values)

    return Alias


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train an AE or VAE into a run folder")
    p.add_argument("--config", help="TOML file (defaults when omitted)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one config value (repeatable)",
    )  # fmt: skip
    p.add_argument("--run-dir", help="run folder (default runs/<time>-<ae|vae>)")
    p.add_argument(
        "--resume", nargs="?", const="last", default=None, metavar="EPOCH",
        help="continue --run-dir from its last checkpoint or from EPOCH",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from zspace.flow.training import train

    resume: bool | str = False
    if args.resume is not None:
        resume = True if args.resume == "last" else args.resume
        if resume is not True and not str(resume).isdigit():
            raise ZspaceError(f"--resume {args.resume!r}: expected an epoch number")
    run = train(
        args.config, run_dir=args.run_dir, resume=resume, overrides=args.overrides,
        progress=not args.no_progress,
    )  # fmt: skip
    print(f"run folder: {run.path}")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="train a small AE and VAE on the built-in digits")
    p.add_argument("--out", default="runs/demo", help="folder for the demo runs")
    p.add_argument("--epochs", type=int, help="epochs per model (default 12)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from zspace.flow.demo import demo

    if args.epochs is not None and args.epochs < 1:
        raise ZspaceError(f"--epochs {args.epochs}: must be >= 1")
    demo(args.out, epochs=args.epochs, progress=not args.no_progress)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zspace",
        description="Train conv autoencoders / VAEs on images and look inside their latent space.",
    )
    parser.add_argument("--version", action="version", version=f"zspace {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_demo(sub)
    for module in (
        "zspace.data.cli", "zspace.analysis.cli", "zspace.generation.cli", "zspace.perceptron.cli",
        "zspace.exporting.cli",
        "zspace.explorer.cli",
        "zspace.flow.cli",
    ):  # fmt: skip
        _register_optional(module, sub)
    return parser


def _register_optional(module: str, sub) -> None:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:  # a part not installed in this build
        if not exc.name or not module.startswith(exc.name):
            raise
        return
    mod.add_parser(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ZspaceError as exc:
        print(f"zspace: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zspace: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

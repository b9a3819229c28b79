"""Command line: argument parsing and friendly errors; the logic lives in the modules.

The error contract (README, "Errors"): a user error is one line on stderr,
``zspace: error: ...``, and exit code 2; a bug is a traceback and exit code 1. User
errors are ``ZspaceError``s raised where the input is read; what the operating
system refuses is turned into one at the I/O layer (``zspace.core.fileio``), and the few
environment failures no layer can foresee (a full disk or a refused permission in a
library's own write, running out of memory) are caught here by their kind. Batch
commands run inside ``fileio.undo_on_error()``, so a failing one leaves no file
behind.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from zspace._version import __version__
from zspace.cli import (
    analysis,
    config,
    data,
    evaluation,
    exporting,
    flow,
    generation,
    perceptron,
)
from zspace.cli.common import rank
from zspace.core.errors import ZspaceError, first_line
from zspace.core.fileio import ENVIRONMENT_ERRNOS, undo_on_error
from zspace.core.resources import keep_freed_memory

NEGATIVE = re.compile(r"-\.?\d")  # -3, -0.5, -.5, -3,0,3, -1e-4: a value, not an option


class Parser(argparse.ArgumentParser):
    """argparse with the error contract: one line ``zspace: error: ...``, exit 2 (argparse's
    usage block is left out; ``--help`` shows it), and negative numbers as values:
    ``--strengths -3,0,3`` (argparse takes ``-3,0,3`` for an option; no zspace option
    starts with a digit)."""

    def _parse_optional(self, arg_string: str) -> Any:
        return None if NEGATIVE.match(arg_string) else super()._parse_optional(arg_string)

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("zspace").strip()
        head = f"{where}: " if where else ""
        hint = f"zspace {where} --help" if where else "zspace --help"
        text = " ".join(message.split())
        self.exit(2, f"zspace: error: {head}{text} (see {hint})\n")


# Commands whose output is all-or-nothing (fileio.undo_on_error): they write a few
# files from inputs read first. Training commits each epoch on purpose (a crash
# resumes), and long-lived commands (explore) must not undo a session's files.
UNDOABLE = frozenset(
    {"data", "encode", "analyze", "generate", "report", "compare", "export", "perceptron"}
)
# Commands that run networks on batches: their process keeps freed memory
# (core.resources.keep_freed_memory); analyze and explore keep glibc's defaults.
NETWORK_VERBS = frozenset(
    {"train", "demo", "pipeline", "recipe", "sweep", "encode", "generate", "evaluate", "evaluator"}
)


VERBS = (flow, config, data, analysis, generation, evaluation, perceptron, exporting)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="zspace",
        description="Train conv autoencoders / VAEs on images and look inside their latent space.",
    )
    parser.add_argument("--version", action="version", version=f"zspace {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for verbs in VERBS:
        verbs.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from zspace.core.progress import progress

    if args.command in NETWORK_VERBS:
        keep_freed_memory()

    with warnings.catch_warnings():  # restored for a caller that runs main in its process
        warnings.showwarning = _warn
        try:
            world = os.environ.get("WORLD_SIZE", "1")
            if args.command != "train" and world not in ("", "0", "1"):
                error = ZspaceError(
                    f"only 'zspace train' runs under torchrun (WORLD_SIZE={world}); "
                    f"run 'zspace {args.command}' as one process"
                )
                error.quiet = rank() != 0  # every process refuses; one says so
                raise error
            with progress(False if getattr(args, "no_progress", False) else None):
                if args.command in UNDOABLE and getattr(args, "data_command", None) != "download":
                    with undo_on_error():
                        return int(args.func(args) or 0)
                return int(args.func(args) or 0)
        except ZspaceError as exc:
            return 2 if exc.quiet else _fail(str(exc))  # quiet: another process says it
        except OSError as exc:
            if exc.errno not in ENVIRONMENT_ERRNOS:
                raise  # a path zspace got wrong is a bug: keep the traceback
            where = f"{exc.filename}: " if exc.filename else ""
            return _fail(f"{where}{exc.strerror or exc}")
        except MemoryError:
            return _fail("out of memory; try a smaller model, image size or batch size")
        except KeyboardInterrupt as exc:  # training says which epoch is saved
            if rank() == 0:
                print(" ".join(("zspace: interrupted", *map(str, exc.args))), file=sys.stderr)
            return 130
        except RuntimeError as exc:
            torch = sys.modules.get("torch")
            if torch is None or not isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
                raise
            return _fail(
                f"out of device memory: {first_line(exc)}; try a smaller batch size or model"
            )


def _warn(message: Warning | str, category: type[Warning], *_args: Any, **_kw: Any) -> None:
    """A warning as one stderr line (Python's default adds the file and the source line
    that raised it, e.g. Pillow's for a very large image)."""
    kind = "" if category is UserWarning else f"{category.__name__}: "
    print(f"zspace: warning: {kind}{' '.join(str(message).split())}", file=sys.stderr)


def _fail(message: str) -> int:
    """Print a user error as exactly one line and return exit code 2."""
    text = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"zspace: error: {text or 'failed'}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

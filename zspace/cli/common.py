"""What the verbs' parsers share."""

from __future__ import annotations

import argparse
import sys

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

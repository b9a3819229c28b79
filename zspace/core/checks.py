"""The checks for numbers, shared by the config, analyses and generation, and for the
types of the public functions' arguments."""

from __future__ import annotations

import math
import os
import reprlib
from typing import Any

from zspace.core.errors import ZspaceError

PATH = (str, os.PathLike)  # what a file or folder argument may be


def check_type(name: str, value: Any, kinds: Any, expected: str, *, each: Any = None) -> None:
    """A public function's argument of the wrong type is a TypeError naming it, raised
    before any work instead of a library's traceback from deep inside. ``kinds``: a
    type or tuple of types (``type(None)`` allows None; a bool is no number unless
    ``bool`` is named); ``each``: the type of every item of a list or tuple."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    ok = isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))
    if ok and each is not None and isinstance(value, list | tuple):
        ok = all(isinstance(v, each) for v in value)
    if not ok:
        raise TypeError(f"{name} = {reprlib.repr(value)}: expected {expected}")


def check_hooks(log: Any, progress: Any = None) -> None:
    """The ``log`` and ``progress`` arguments every public function takes."""
    if log is not None and not callable(log):
        raise TypeError(f"log = {reprlib.repr(log)}: expected a function taking one str, or None")
    check_type("progress", progress, (bool, type(None)), "True, False or None")


def positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Refuse a value that is not > 0 (>= 0 with ``allow_zero``) or not finite.

    The message names the value and the bound, ``NAME = VALUE: must be > 0``; for
    integers the bound reads ``>= 1``, which is what a count means."""
    try:
        ok = (value >= 0 if allow_zero else value > 0) and math.isfinite(value)
    except (TypeError, OverflowError):
        ok = False
    if ok:
        return
    integer = isinstance(value, int) and not isinstance(value, bool)
    bound = ">= 0" if allow_zero else (">= 1" if integer else "> 0")
    raise ZspaceError(f"{name} = {value!r}: must be {bound}")


FLOAT32_MAX = 3.4028234663852886e38


def finite_float32(name: str, value: float) -> float:
    """Refuse NaN, inf and magnitudes float32 cannot hold (the dtype of z and images),
    which would otherwise turn into NaN pictures without a word."""
    try:
        ok = math.isfinite(value) and abs(value) <= FLOAT32_MAX
    except (TypeError, OverflowError):
        ok = False
    if not ok:
        raise ZspaceError(f"{name} = {value!r}: must be a finite number within float32's range")
    return float(value)

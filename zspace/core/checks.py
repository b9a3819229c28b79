"""The checks for numbers, shared by the config, analyses and generation, and for the
types of the public functions' arguments."""

from __future__ import annotations

import importlib
import math
import os
import reprlib
from types import ModuleType
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


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional dependency or raise the one-line error naming its extra."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        name = exc.name or module
        raise ZspaceError(
            f"{what} needs the {name.split('.')[0]} package: pip install 'zspace[{extra}]'"
        ) from None


def misfit(value: Any, shape: Any, at: str = "") -> str | None:
    """Where ``value`` (read JSON) departs from ``shape``, or None when it fits. A shape is
    a type or tuple of types (a bool is no number), ``[shape]`` for a list of such,
    ``{key: shape}`` for a dict holding those keys (``"?key"``: may be absent or null;
    others may be there too), ``{str: shape}`` for a dict of any keys."""
    if isinstance(shape, list | dict) and not isinstance(value, type(shape)):
        return at or "the top level"
    if isinstance(shape, list):
        found = (misfit(v, shape[0], f"{at}[{i}]") for i, v in enumerate(value))
    elif isinstance(shape, dict):
        shape = dict.fromkeys(value, shape[str]) if str in shape else shape
        keys = [(k.lstrip("?"), s) for k, s in shape.items()
                if k[:1] != "?" or value.get(k[1:]) is not None]  # fmt: skip
        found = (misfit(value.get(k), s, f"{at}.{k}".lstrip(".")) for k, s in keys)
    else:
        return None if isinstance(value, shape) and not isinstance(value, bool) else at
    return next((m for m in found if m is not None), None)

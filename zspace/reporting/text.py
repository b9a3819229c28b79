"""How the pages write numbers, parameter lines and captions: one rule each.

- ``num``: every number on a page, in one format (4 significant digits, 2 for a
  ± spread, thousands separators from 1,000 on, ``1e-5`` rather than ``1e-05``,
  ``—`` where none was measured); a table's column of numbers shares its decimals
  (``places``, ``html.table``); ``value ± spread`` is rounded where the spread's
  second significant digit is (``pm``; a zero spread takes its column's decimals).
- ``used_parameters``: an analysis's parameters as they were used, read from its
  result where the result knows better (``n=9,000 of 20,000 asked``, ``r_max=12.5
  (auto)``), never ``None``.
- Captions: a generated grid's caption lives in ``samples/index.json`` and appears
  once, under the image; it is not drawn into the PNG.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

# parameter name -> the result field that holds the value actually used
USED_AS: dict[str, dict[str, str]] = {
    "kmeans": {"sample": "n"},
    "pca": {"max_points": "n_shown"},
}
# what a parameter's special value means, when the result does not say
MEANING: dict[tuple[str, str, Any], str] = {
    ("tsne", "pca_components", 0): "off",
    ("tsne", "n_jobs", 0): "all cores",
}


def num(x: Any, digits: int = 4) -> str:
    """One number format for every page: 4 significant digits (2 for a spread);
    whole numbers and numbers from 1,000 on with thousands separators; None and NaN
    as ``—``; booleans and text as they are."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if isinstance(x, int) or (x.is_integer() and abs(x) < 1e15) or 1e3 <= abs(x) < 1e15:
        return f"{x:,.0f}"
    mant, e, exp = f"{x:.{digits}g}".partition("e")
    return f"{mant}e{int(exp)}" if e else mant


def places(values: Iterable[Any], digits: int = 4, *, zeros: bool = False) -> int | None:
    """Decimals for numbers shown together: the most any fractional one needs at
    ``digits`` significant digits (trailing zeros dropped unless ``zeros``), so they
    line up; None (``num`` each) when none is fractional or one would need more than 6."""
    most = 0
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            continue
        if not float(v).is_integer():
            d = max(0, digits - 1 - math.floor(math.log10(abs(v))))
            text = f"{abs(v):.{d}f}"
            most = max(most, len((text if zeros else text.rstrip("0")).partition(".")[2]))
    return most if 0 < most <= 6 else None


def pm(value: float, spread: float | None, decimals: int | None = None) -> str:
    """``value ± spread`` (a line breaks after the ± only) to the decimals that show
    the spread to 2 significant digits; ``decimals`` where the spread is 0 or None
    (``num`` if None as well)."""
    decimals = places([spread], 2, zeros=True) or decimals
    if decimals is None:
        return num(value) + ("" if spread is None else f"\u00a0± {num(spread, 2)}")
    text = f"{value:,.{decimals}f}"
    return text if spread is None else f"{text}\u00a0± {spread:,.{decimals}f}"


def value_text(v: Any) -> str:
    """A parameter value: pairs as ``1-2, 1-18``, lists comma-separated, numbers by ``num``."""
    if isinstance(v, list | tuple):
        if v and all(isinstance(p, list | tuple) and len(p) == 2 for p in v):
            return ", ".join(f"{p[0]}-{p[1]}" for p in v)
        return ", ".join(value_text(x) for x in v)
    return num(v) if isinstance(v, int | float) and not isinstance(v, bool) else str(v)


def used_parameters(name: str, params: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """``key=value`` for each parameter, with the value the analysis used: ``(auto)`` for
    a value it chose, ``(asked X)`` where it used less or other than asked."""
    out = []
    alias = USED_AS.get(name, {})
    for key, asked in params.items():
        field = alias.get(key, key)
        used = result.get(field, asked) if isinstance(result, dict) else asked
        if used is None:  # the analysis chose nothing (e.g. no labels to colour by)
            text = "none (auto)" if asked in (None, "auto") else value_text(asked)
        elif asked is None or asked == "auto":
            text = f"{value_text(used)} (auto)"
        elif _differs(used, asked):
            text = f"{value_text(used)} (asked {value_text(asked)})"
        else:
            text = value_text(used)
        value = used if used is not None else asked
        meaning = MEANING.get((name, key, value)) if isinstance(value, int | float | str) else None
        if meaning and "(" not in text:
            text += f" ({meaning})"
        out.append(f"{key}={text}")
    return out


def _differs(used: Any, asked: Any) -> bool:
    if isinstance(used, int | float) and isinstance(asked, int | float):
        return abs(float(used) - float(asked)) > 1e-9 * max(1.0, abs(float(asked)))
    return listed(used) != listed(asked)


def listed(v: Any) -> Any:
    """Tuples as lists, all the way down, so that a value read from a config (tuples)
    equals the same value read from JSON or TOML (lists)."""
    return [listed(x) for x in v] if isinstance(v, list | tuple) else v

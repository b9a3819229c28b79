"""The CLI's vocabulary: one flag name per idea, defined here and used by every verb
(docs/cli.md lists it). Older spellings are synonyms: they parse into the same place,
silently (the error contract is one stderr line) and hidden from --help. Parsers import
nothing heavy: each verb's handler imports what it runs."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from typing import Any

from zspace.config.parse import coerce, toml_value
from zspace.config.schema import SPLITS, TASKS
from zspace.core.errors import ZspaceError

Parser = argparse.ArgumentParser


def opt(p: Parser, names: str, default: Any = None, help: str = "", **kw: Any) -> None:
    """One option. ``names``: its name, then the older spellings it also accepts
    ("--count -n"). A number default sets the type (a tuple of numbers: the type and
    how many values); a default is added to the help unless the help speaks of it. A
    required option takes no synonyms."""
    name, *synonyms = names.split()
    if isinstance(default, tuple):
        kw.setdefault("nargs", len(default))
    kind = type(default[0] if isinstance(default, tuple) else default)
    if kind in (int, float):
        kw.setdefault("type", kind)
    if default is not None and not isinstance(default, (bool, list)) and "default" not in help:
        help += f" (default {default})"
    kw["dest"] = p.add_argument(name, default=default, help=help, **kw).dest
    kw.pop("required", None)
    for old in synonyms:
        p.add_argument(old, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kw)


def flag(p: Parser, names: str, help: str) -> None:
    opt(p, names, False, help, action="store_true")


def numbers(kind: type) -> Callable[[str], list]:
    """An argparse type: numbers as TOML (``[0.5,1]``) or ``0.5,1,2``; integers also LO-HI."""
    what = "integers: N, N,M,... or LO-HI" if kind is int else "finite numbers (float32)"

    def parse(text: str) -> list:
        if kind is int and re.fullmatch(r"\s*\d+-\d+\s*", text):
            lo, hi = (int(x) for x in text.split("-"))
            return list(range(lo, hi + 1))
        try:
            return list(coerce(text, text, tuple[kind, ...]))  # type: ignore[valid-type]
        except ZspaceError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}") from None

    return parse


def names(text: str) -> list[str]:
    """``"radius, pca"`` -> ["radius", "pca"]."""
    return [s.strip() for s in text.split(",") if s.strip()]


def run_folder(p: Parser, help: str = "run folder") -> None:
    p.add_argument("run", help=help)


def out(p: Parser, names: str, help: str, **kw: Any) -> None:
    """``--out``: where the verb writes (a folder, or the file it names)."""
    opt(p, f"--out {names}", help=help, **{"metavar": "DIR", **kw})


def count(p: Parser, default: int | None, help: str, synonyms: str = "") -> None:
    """``--count N`` (``-n``): how many images, points or samples."""
    opt(p, f"--count -n {synonyms}", default, help, type=int, metavar="N")


def split(p: Parser, default: str | None = "train", help: str = "split") -> None:
    opt(p, "--split", default, help, choices=SPLITS)


def no_progress(p: Parser) -> None:
    flag(p, "--no-progress", "no progress bars")


def config_options(p: Parser, *, file: bool = True) -> None:
    """``--config FILE`` and ``--set SECTION.KEY=TOML`` (repeatable)."""
    if file:
        opt(p, "--config -c", None, "TOML config file (defaults when omitted)", metavar="FILE")
    what = "override a config value, read as TOML: 32, 1e-4, true, [8,16] (repeatable)"
    opt(p, "--set", [], what, dest="overrides", action="append", metavar="SECTION.KEY=TOML")


def data_options(p: Parser, *, task: bool = True) -> None:
    """The data shortcuts: ``--size``, ``--cache-dir`` (and ``--channels``, ``--task``)."""
    opt(p, "--size", None, "data.image_size", type=int)
    if task:
        opt(p, "--channels", None, "data.channels", type=int, choices=(0, 1, 3))
        what = "data.task (denoise needs --set data.noise_sigma=S)"
        opt(p, "--task", None, what, choices=TASKS, dest="data_task")
    opt(p, "--cache-dir", None, "data.cache_dir", metavar="DIR")


def data_overrides(args: argparse.Namespace, source: str | None = None) -> list[str]:
    """The data shortcuts (and a source) as ``--set`` items, before the explicit ones."""
    given = {
        "source": source,
        "image_size": args.size,
        "channels": getattr(args, "channels", None),
        "task": getattr(args, "data_task", None),
        "cache_dir": args.cache_dir or None,
    }
    sets = [f"data.{k}={toml_value(v)}" for k, v in given.items() if v is not None]
    return sets + list(args.overrides)


def params(p: Parser, synonyms: str = "") -> None:
    what = "analysis parameter, e.g. tsne.n=5000 (repeatable; NAME also reaches NAME@...)"
    kw = {"dest": "params", "action": "append", "metavar": "NAME.KEY=VALUE"}
    opt(p, f"--param {synonyms}", [], what, **kw)


def analyses(p: Parser, help: str, synonyms: str = "") -> None:
    opt(p, f"--analyses {synonyms}", None, help, type=names, metavar="A,B")


def sampler_options(p: Parser, default: str | None, said: str = "") -> None:
    """What generate and evaluate share: samplers, seed, uniform limits, GMM components."""
    opt(p, "--sampler", default, "normal, uniform, gauss, gmm, or a comma list" + said)
    opt(p, "--seed", None, "default: the run's config seed", type=int)
    what = "uniform limits, e.g. 0.5,1,2 (default 0.5,1,1.5,2,2.5,3,3.5,5,8)"
    opt(p, "--limits", None, what, type=numbers(float))
    what = "GMM components: N, a list or LO-HI (BIC picks; default 1,2,4,8,16, doubled on "
    what += "while BIC picks the largest, up to 64)"
    opt(p, "--components", None, what, type=numbers(int))


TASK = (
    "evaluator kind: auto (classes with labels, attributes with >= 2000 attributed images, "
    "else rotation), classes, attributes or rotation"
)


def evaluation_options(p: Parser) -> None:
    """What evaluate and stage_options share besides the samplers (None: the default)."""
    opt(p, "-k", None, "k-NN radius (default 5)", type=int)
    opt(p, "--rounds", None, "bootstrap rounds (default 50)", type=int)
    what = "face detector: auto (CelebA), faces (any data), none (default auto)"
    opt(p, "--oracle", None, what, choices=("auto", "faces", "none"))
    opt(p, "--task", None, TASK + " (default auto)", metavar="KIND")


# what evaluate and pipeline hand on as given: sampler_options and evaluation_options
SAMPLING = ("sampler", "seed", "limits", "components", "k", "rounds", "oracle", "task")


def stage_options(p: Parser) -> None:
    """What pipeline, sweep and recipe run hand on to every run's stages (``SAMPLING``
    and ``--count`` as ``n``: ``flow.stages.with_options``); not given: the plan's."""
    sampler_options(p, None, " (default normal,gauss,gmm, or the recipe's)")
    what = "images per sampler for the rates and the evaluation (default 1000, or the recipe's)"
    count(p, None, what)
    evaluation_options(p)


def given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options of ``names`` given on the command line (the others keep their defaults)."""
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def rank() -> int:
    """This process's rank under torchrun (0 otherwise): only rank 0 prints."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0

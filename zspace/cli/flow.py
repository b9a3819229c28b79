"""CLI verbs of the flow: ``zspace recipe list|show|run`` and ``zspace sweep``."""

from __future__ import annotations

import argparse

from zspace.core.errors import ZspaceError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value (repeatable)",
    )
    p.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="analysis parameter, e.g. tsne.n=5000 (NAME also reaches its variants NAME@...)",
    )
    p.add_argument("--jobs", type=int, default=1, help="sweep runs at once (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _sweep_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", type=int, metavar="I", help="run only run I (0-based, --list order)")
    p.add_argument("--list", action="store_true", help="list the runs with their status")
    p.add_argument("--page", action="store_true", help="only build DIR/sweep.html")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "recipe",
        help="the reference's experiments, bundled: list, show, run",
        description="Recipes reproduce the reference's experiments with its settings and "
        "show its published numbers beside the run's (docs/recipes.md).",
    )
    rsub = p.add_subparsers(dest="recipe_cmd", required=True, metavar="ACTION")
    q = rsub.add_parser("list", help="name, what it is, data it needs, expected time")
    q.set_defaults(func=_list)
    q = rsub.add_parser("show", help="print a recipe's TOML")
    q.add_argument("name")
    q.set_defaults(func=_show)
    q = rsub.add_parser("run", help="train -> encode -> analyze -> generate -> evaluate -> report")
    q.add_argument("name", help="a recipe name (zspace recipe list) or a recipe .toml file")
    q.add_argument("--data", help="the data set the recipe needs (a path)")
    q.add_argument("--run-dir", help="run folder, or the sweep's folder (default runs/NAME)")
    q.add_argument("--analyses", metavar="A,B", help="run these analyses (and their variants) only")
    q.add_argument(
        "--quick",
        action="store_true",
        help="shrink analyses and generation for a smoke test (said in the report)",
    )
    _sweep_options(q)
    _common(q)
    q.set_defaults(func=_run)

    p = sub.add_parser(
        "sweep",
        help="one run per value of a config key; DIR/sweep.html shows the transition",
        description="Runs live in DIR/<key>=<value>/ (both keys for a grid). Complete runs "
        "are skipped, an interrupted one resumes. --only I with --list spreads a sweep over "
        "a cluster's job array (docs/recipes.md).",
    )
    p.add_argument("--config", help="base TOML config (defaults when omitted)")
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="a config key and its values (repeat for a grid of two or more keys)",
    )
    p.add_argument("--out", required=True, help="the sweep's folder")
    _sweep_options(p)
    p.add_argument(
        "--analyses",
        metavar="A,B",
        help="analyses per run (default all; the page needs radius,vae)",
    )
    _common(p)
    p.set_defaults(func=_sweep)


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [a.strip() for a in text.split(",") if a.strip()]


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _list(args: argparse.Namespace) -> int:
    from zspace.flow.recipes import list_recipes

    recipes = list_recipes()
    width = max(len(r.name) for r in recipes)
    print(f"{'name':{width}s}  {'data':7s}  {'CPU':>7s}  {'GPU':>7s}  what")
    for r in recipes:
        t = r.expected_seconds()
        print(
            f"{r.name:{width}s}  {r.data:7s}  {_time(t['cpu']):>7s}  {_time(t['gpu']):>7s}  "
            f"{r.summary}"
        )
    print(
        "\nTimes: training only, for the recipe as written (the reference's images and epochs, "
        "every run of a sweep). CPU: one epoch of each model measured on the small real sets "
        "(AMD EPYC: one thread's CPU time, times 2 cores, the rate of an idle 2-core machine) "
        "and extrapolated per image; GPU: the reference's own timing (120 s per CelebA epoch "
        "of 170,000 images, 7 s per MNIST epoch of 60,000), not measured here. `zspace recipe "
        "show NAME` says which (cpu_source, gpu_source)."
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from zspace.flow.recipes import load_recipe

    print(load_recipe(args.name).text, end="")
    return 0


def _run(args: argparse.Namespace) -> int:
    from zspace.flow.recipes import run_recipe

    path = run_recipe(
        args.name,
        args.data,
        overrides=args.overrides,
        params=args.params,
        run_dir=args.run_dir,
        quick=args.quick,
        analyses=_names(args.analyses),
        jobs=args.jobs,
        only=args.only,
        list_only=args.list,
        page_only=args.page,
        progress=not args.no_progress,
    )
    if not args.list:
        print(f"page: {path}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from zspace.flow.stages import plan_from
    from zspace.flow.sweeps import sweep

    if not args.vary:
        raise ZspaceError("sweep: give at least one --vary KEY=V1,V2,...")
    only = _names(args.analyses)
    path = sweep(
        args.config,
        args.vary,
        args.out,
        overrides=args.overrides,
        plan=plan_from(args.params, only),
        jobs=args.jobs,
        only=args.only,
        list_only=args.list,
        page_only=args.page,
        progress=not args.no_progress,
    )
    if not args.list:
        print(f"page: {path}")
    return 0

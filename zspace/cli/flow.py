"""CLI verbs of the flow: train, demo, pipeline, ``recipe list|show|run`` and sweep."""

from __future__ import annotations

import argparse

from zspace.cli import common
from zspace.cli.common import (
    analyses,
    config_options,
    data_options,
    data_overrides,
    flag,
    no_progress,
    opt,
    out,
    params,
    rank,
)
from zspace.core.errors import ZspaceError

_RUN_OUT = "run folder (default runs/<time>-<ae|vae>)"


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train an AE or VAE into a run folder")
    config_options(p)
    out(p, "--run-dir", _RUN_OUT)
    what = "continue the run in --out from its last checkpoint or from EPOCH"
    opt(p, "--resume", None, what, nargs="?", const="last", metavar="EPOCH")
    no_progress(p)
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "import",
        help="make a run folder of your own model (docs/models.md)",
        description="FACTORY (MODULE:FUNCTION or path/file.py:FUNCTION) is called without "
        "arguments and returns an nn.Module with encode/decode or an (encoder, decoder) pair; "
        "--pythae and --diffusers read a saved model folder (nothing is downloaded).",
    )
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--factory", metavar="FACTORY", help="code that builds the model")
    model.add_argument("--pythae", metavar="DIR", help="a folder pythae's model.save() wrote")
    model.add_argument(
        "--diffusers", metavar="DIR", help="an AutoencoderKL folder (save_pretrained)"
    )
    flag(p, "--allow-pickle", "--pythae: unpickle its custom networks (runs their code)")
    opt(p, "--weights", None, "a .safetensors file to load into it", metavar="FILE")
    opt(p, "--data", None, "the data source (as data.source)", required=True, metavar="SOURCE")
    out(p, "--run-dir", "the new run folder (required)")
    config_options(p, file=False)
    data_options(p, task=False)
    no_progress(p)
    p.set_defaults(func=_import)

    p = sub.add_parser("demo", help="train a small AE and VAE on the built-in digits")
    out(p, "", "folder for the demo runs", default="runs/demo")
    opt(p, "--epochs", None, "epochs per model (default 12)", type=int)
    no_progress(p)
    p.set_defaults(func=_demo)

    what = "train -> encode -> analyze -> generate -> evaluate -> report in one command"
    p = sub.add_parser("pipeline", help=what)
    config_options(p)
    out(p, "--run-dir", _RUN_OUT)
    analyses(p, "run these analyses only (default all)", "--only")
    params(p, "--analysis-set")
    common.stage_options(p)
    no_progress(p)
    p.set_defaults(func=_pipeline)

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
    opt(q, "--data", None, "the data set the recipe needs (a path)")
    out(q, "--run-dir", "run folder, or the sweep's folder (default runs/NAME)")
    flag(q, "--quick", "shrink analyses and generation for a smoke test (said in the report)")
    config_options(q, file=False)
    _sweep_options(q)
    q.set_defaults(func=_sweep)

    p = sub.add_parser(
        "sweep",
        help="one run per value of a config key; DIR/sweep.html shows the transition",
        description="Runs live in DIR/<key>=<value>/ (both keys for a grid). Complete runs "
        "are skipped, an interrupted one resumes. --index I with --list spreads a sweep "
        "over a cluster's job array (docs/recipes.md).",
    )
    config_options(p)
    what = "a config key and its values (repeat for a grid of two or more keys)"
    opt(p, "--vary", [], what, action="append", metavar="KEY=V1,V2,...")
    out(p, "", "the sweep's folder", required=True)
    _sweep_options(p)
    p.set_defaults(func=_sweep)


def _sweep_options(p: argparse.ArgumentParser) -> None:
    """What recipe run and sweep share: the analyses, the stages' options, a sweep's runs."""
    analyses(p, "run these analyses (and their variants) only")
    params(p)
    common.stage_options(p)
    opt(p, "--jobs", 1, "sweep runs at once")
    opt(p, "--index --only", None, "run only run I (0-based, --list order)", type=int, metavar="I")
    flag(p, "--list", "list the runs with their status")
    flag(p, "--page", "only build DIR/sweep.html")
    no_progress(p)


def _train(args: argparse.Namespace) -> int:
    from zspace.flow.training import train

    resume: bool | str = args.resume is not None
    if args.resume not in (None, "last"):
        if not args.resume.isdigit():
            raise ZspaceError(f"--resume {args.resume!r}: expected an epoch number")
        resume = args.resume
    run = train(
        args.config,
        run_dir=args.out,
        resume=resume,
        overrides=args.overrides,
    )
    if rank() == 0:
        print(f"run folder: {run.path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from zspace.runs.imported import build
    from zspace.runs.model_folders import load_diffusers, load_pythae
    from zspace.runs.wrap import wrap

    if args.out is None:
        raise ZspaceError("import needs --out RUN: the new run folder")
    if args.pythae is not None:
        model = load_pythae(args.pythae, allow_pickle=args.allow_pickle)
    elif args.diffusers is not None:
        model = load_diffusers(args.diffusers)
    else:
        model = build(args.factory)
    run = wrap(
        model, data=args.data, run_dir=args.out, factory=args.factory, weights=args.weights,
        overrides=data_overrides(args),
    )  # fmt: skip
    print(f"run folder: {run.path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from zspace.flow.demo import demo

    if args.epochs is not None and args.epochs < 1:
        raise ZspaceError(f"--epochs {args.epochs}: must be >= 1")
    demo(args.out, epochs=args.epochs)
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    from zspace.analysis.runner import parse_sets
    from zspace.flow.pipeline import pipeline

    pipeline(
        args.config,
        args.overrides,
        args.out,
        analysis=parse_sets(args.params),
        only=args.analyses,
        n=args.count,
        **common.given(args, *common.SAMPLING),
    )
    return 0


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


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


def _sweep(args: argparse.Namespace) -> int:
    """``recipe run`` and ``sweep``: a recipe's run or sweep, or any config's sweep."""
    from zspace.flow.recipes import run_recipe
    from zspace.flow.stages import plan_from
    from zspace.flow.sweeps import sweep

    shared = {
        "overrides": args.overrides,
        "jobs": args.jobs,
        "only": args.index,
        "list_only": args.list,
        "page_only": args.page,
        "n": args.count,
        **common.given(args, *common.SAMPLING),
    }
    if args.command == "sweep":  # each logs the page it wrote
        plan = plan_from(args.params, args.analyses)
        sweep(args.config, args.vary, args.out, plan=plan, **shared)
    else:
        run_recipe(
            args.name,
            args.data,
            params=args.params,
            run_dir=args.out,
            quick=args.quick,
            analyses=args.analyses,
            **shared,
        )
    return 0

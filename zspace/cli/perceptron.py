"""`zspace perceptron`: run the study for one scaling, print the tables, write the page."""

from __future__ import annotations

import argparse
from pathlib import Path

from zspace.cli.common import flag, opt, out
from zspace.perceptron.scaling import SCALINGS, check_scaling_name


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``perceptron`` sub-command (its handler is ``run``)."""
    p = subparsers.add_parser(
        "perceptron",
        help="single-neuron sigmoid perceptron: input scaling vs. cost surface and descent",
        description=(
            "Side study: one sigmoid neuron on 14 two-feature samples. Scales the inputs, "
            "maps the cost over a (w1, w2) mesh, runs stochastic and batch gradient descent, "
            "prints the result tables and writes figures plus an HTML page."
        ),
    )
    opt(p, "--scaling", None, "one of: " + ", ".join(SCALINGS), required=True, metavar="NAME")
    what = "start weights (default: -0.2 0.25)"
    opt(p, "--start", (-0.2, 0.25), what, metavar=("W1", "W2"))
    opt(p, "--eta", 0.2, "learning rate")
    opt(p, "--steps", 2500, "descent steps")
    opt(p, "--decrease", 0.0, "learning-rate decrease: step j uses eta / (1 + decrease*j)")
    what = "weight axis arange(START, STOP, STEP) for w1 and w2 (default: -5.5 5.5 0.002)"
    opt(p, "--mesh", (-5.5, 5.5, 0.002), what, metavar=("START", "STOP", "STEP"))
    flag(p, "--no-mesh", "skip the cost surface")
    opt(p, "--threads", None, "threads for the cost surface", type=int)
    out(p, "", "folder for figures and index.html (default: ./perceptron-<scaling>)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the study from parsed arguments; ZspaceError propagates to the caller."""
    from zspace.perceptron.study import perceptron_study  # heavy: only when the verb runs
    from zspace.perceptron.tables import report_text

    name = check_scaling_name(args.scaling)
    out = Path(args.out or f"perceptron-{name}")
    result = perceptron_study(
        name,
        start=tuple(args.start),
        eta=args.eta,
        steps=args.steps,
        decrease=args.decrease,
        out=out,
        mesh=None if args.no_mesh else tuple(args.mesh),
        threads=args.threads,
    )
    print(report_text(result))
    print(f"\nwrote {out / 'index.html'} (figures and results.json beside it)")
    return 0

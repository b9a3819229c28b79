"""`zspace perceptron`: run the study for one scaling, print the tables, write the page."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    p.add_argument(
        "--scaling",
        required=True,
        metavar="NAME",
        help="one of: " + ", ".join(SCALINGS),
    )
    p.add_argument(
        "--start",
        nargs=2,
        type=float,
        default=(-0.2, 0.25),
        metavar=("W1", "W2"),
        help="start weights (default: -0.2 0.25)",
    )
    p.add_argument("--eta", type=float, default=0.2, help="learning rate (default: 0.2)")
    p.add_argument("--steps", type=int, default=2500, help="descent steps (default: 2500)")
    p.add_argument(
        "--decrease",
        type=float,
        default=0.0,
        help="learning-rate decrease: step j uses eta / (1 + decrease*j) (default: 0)",
    )
    p.add_argument(
        "--mesh",
        nargs=3,
        type=float,
        default=(-5.5, 5.5, 0.002),
        metavar=("START", "STOP", "STEP"),
        help="weight axis arange(START, STOP, STEP) for w1 and w2 (default: -5.5 5.5 0.002)",
    )
    p.add_argument("--no-mesh", action="store_true", help="skip the cost surface")
    p.add_argument("--threads", type=int, default=None, help="threads for the cost surface")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for figures and index.html (default: ./perceptron-<scaling>)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the study from parsed arguments; ZspaceError propagates to the caller."""
    from zspace.perceptron.study import perceptron_study  # heavy: only when the verb runs
    from zspace.perceptron.tables import report_text

    name = check_scaling_name(args.scaling)
    out = args.out if args.out is not None else Path(f"perceptron-{name}")
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

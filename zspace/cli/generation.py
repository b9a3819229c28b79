"""``zspace generate RUN``: grids from samplers, reconstructions, paths and the rate."""

from __future__ import annotations

import argparse
import math
from typing import Any

from zspace.core.checks import FLOAT32_MAX
from zspace.core.errors import ZspaceError


def _floats(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        msg = f"{text!r}: expected numbers separated by commas"
        raise argparse.ArgumentTypeError(msg) from None
    if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected finite numbers (float32)")
    return values


def _ints(text: str) -> list[int]:
    """'5' or '1,2,4' or '1-8' (a range)."""
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            return list(range(lo, hi + 1))
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N, N,M,... or LO-HI") from None


def add_parser(subparsers) -> None:
    """Register ``generate`` on the top-level subparsers."""
    p = subparsers.add_parser(
        "generate",
        help="decode random z-points, reconstructions, paths; meaningful-point rate",
        description="Write PNG grids under RUN/samples/ (listed in samples/index.json) and, "
        "with --rate, samples/rates.json. See docs/generation.md.",
    )
    p.add_argument("run", help="run folder")
    p.add_argument(
        "--sampler",
        default="normal",
        help="normal, uniform, gauss, gmm, or a comma list (default normal)",
    )
    p.add_argument("-n", "--count", type=int, default=64, help="points per grid (default 64)")
    p.add_argument("--cols", type=int, default=8, help="images per grid row (default 8)")
    p.add_argument("--seed", type=int, help="default: the run's config seed")
    p.add_argument(
        "--limits",
        type=_floats,
        help="uniform limits, e.g. 0.5,1,2 (default 0.5,1,1.5,2,2.5,3,3.5,5,8)",
    )
    p.add_argument("--sharpen", type=_floats, help="Pillow sharpness factors, e.g. 0,3,6,7")
    p.add_argument(
        "--components",
        type=_ints,
        help="GMM components: N, list or LO-HI (BIC picks; default 1,2,4,8,16)",
    )
    p.add_argument(
        "--subsample",
        type=int,
        default=20_000,
        help="latents the GMM and the rate's reference use (default 20000)",
    )
    p.add_argument("--refit", action="store_true", help="refit gauss/gmm even if saved")
    p.add_argument("--no-grids", action="store_true", help="skip the sampler grids")
    p.add_argument("--rate", action="store_true", help="meaningful-point rate per sampler")
    p.add_argument("--rate-n", type=int, default=1000, help="points per rate (default 1000)")
    p.add_argument("--recon", action="store_true", help="reconstructions + loss/PSNR/SSIM")
    p.add_argument(
        "--recon-n",
        type=int,
        default=16,
        help="images of the split to show with --recon (default 16)",
    )
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="FILE",
        help="also reconstruct this image file (repeatable; implies --recon)",
    )
    p.add_argument("--split", help="split for reconstructions/paths (default test, else valid)")
    p.add_argument(
        "--interpolate",
        nargs=2,
        metavar=("A", "B"),
        help="interpolate between two images: positions in --split or files",
    )
    p.add_argument("--steps", type=int, default=10, help="interpolation steps (default 10)")
    p.add_argument(
        "--traverse",
        metavar="axis:K|pca:K",
        help="move along original axis K (0-based) or PCA direction K (1-based)",
    )
    p.add_argument("--attribute", metavar="NAME", help="add an attribute vector (CelebA)")
    p.add_argument(
        "--strengths",
        type=_floats,
        help="strengths for --traverse (default -3..3 stds) / --attribute (default 0 up to "
        "3 stds of the latents along the vector, at least 0..2)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from zspace.core.checks import positive
    from zspace.generation import api

    run = api.as_run(args.run)
    # Everything that can be checked without computing is checked before the first grid
    # is written (the CLI also undoes a failed command's files: fileio.undo_on_error).
    api.parse_samplers(args.sampler)
    for name in ("count", "cols", "subsample", "rate_n", "recon_n"):
        positive(f"--{name.replace('_', '-')}", getattr(args, name))
    for path in args.image:
        api.load_image_file(path, run)
    if args.traverse:
        kind, _, k = args.traverse.partition(":")
        if kind not in ("axis", "pca") or not k.lstrip("-").isdigit():
            raise ZspaceError(f"--traverse {args.traverse!r}: expected axis:K or pca:K")
    opts = {"seed": args.seed, "log": print}
    if not args.no_grids:
        api.generate(
            run,
            args.sampler,
            n=args.count,
            cols=args.cols,
            limits=args.limits,
            sharpen=args.sharpen,
            components=args.components,
            subsample=args.subsample,
            refit=args.refit,
            **opts,
        )
    if args.recon or args.image:
        api.reconstructions(
            run, n=args.recon_n, split=args.split, images=args.image, cols=args.cols, **opts
        )
    if args.interpolate:
        api.interpolate(run, *args.interpolate, steps=args.steps, split=args.split, **opts)
    if args.traverse:
        kind, _, k = args.traverse.partition(":")
        extra = {"strengths": args.strengths} if args.strengths else {}
        along: dict[str, Any] = {kind: int(k)}  # axis=K or pca=K
        api.traverse(run, **along, split=args.split, **extra, **opts)
    if args.attribute:
        extra = {"strengths": args.strengths} if args.strengths else {}
        api.attribute(run, args.attribute, split=args.split, **extra, **opts)
    if args.rate:
        res = api.meaningful_rates(
            run,
            args.sampler,
            n=args.rate_n,
            limits=args.limits,
            components=args.components,
            reference_size=args.subsample,
            subsample=args.subsample,
            **opts,
        )
        print(
            f"rates: {len(res.results)} rows against threshold {res.threshold:.4g} "
            f"({res.reference_size} reference points in {res.space}) -> "
            f"{run.path / 'samples' / 'rates.json'}"
        )
        if res.warning:
            print(f"warning: {res.warning}")
    return 0

"""``zspace generate RUN``: grids from samplers, reconstructions, paths and the rate."""

from __future__ import annotations

import argparse

from zspace.cli.common import (
    count,
    flag,
    no_progress,
    numbers,
    opt,
    run_folder,
    sampler_options,
    split,
)
from zspace.core.errors import ZspaceError


def add_parser(subparsers) -> None:
    """Register ``generate`` on the top-level subparsers."""
    p = subparsers.add_parser(
        "generate",
        help="decode random z-points, reconstructions, paths; meaningful-point rate",
        description="Write PNG grids under RUN/samples/ (listed in samples/index.json) and, "
        "with --rate, samples/rates.json. See docs/generation.md.",
    )
    run_folder(p)
    sampler_options(p, "normal")
    count(p, 64, "points per grid")
    opt(p, "--cols", 8, "images per grid row")
    opt(p, "--sharpen", None, "Pillow sharpness factors, e.g. 0,3,6,7", type=numbers(float))
    opt(p, "--subsample", 20_000, "latents the GMM and the rate's reference use")
    flag(p, "--refit", "refit gauss/gmm even if saved")
    flag(p, "--no-grids", "skip the sampler grids")
    flag(p, "--rate", "meaningful-point rate per sampler")
    opt(p, "--rate-count --rate-n", 1000, "points per rate", metavar="N")
    flag(p, "--recon", "reconstructions + loss/PSNR/SSIM")
    opt(p, "--recon-count --recon-n", 16, "images of the split to show with --recon", metavar="N")
    what = "also reconstruct this image file (repeatable; implies --recon)"
    opt(p, "--image", [], what, action="append", metavar="FILE")
    split(p, None, "split for reconstructions and paths (default test, else valid)")
    what = "interpolate between two images: positions in --split or files"
    opt(p, "--interpolate", None, what, nargs=2, metavar=("A", "B"))
    opt(p, "--steps", 10, "interpolation steps")
    what = "move along original axis K (0-based) or PCA direction K (1-based)"
    opt(p, "--traverse", None, what, metavar="axis:K|pca:K")
    opt(p, "--attribute", None, "add an attribute vector (CelebA)", metavar="NAME")
    what = (
        "strengths for --traverse (default -3..3 stds) / --attribute (default 0 up to 3 stds "
        "of the latents along the vector, at least 0..2)"
    )
    opt(p, "--strengths", None, what, type=numbers(float))
    no_progress(p)
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from zspace.core.checks import positive
    from zspace.generation import api

    run = api.as_run(args.run)
    # Everything that can be checked without computing is checked before the first grid
    # is written (the CLI also undoes a failed command's files: fileio.undo_on_error).
    api.parse_samplers(args.sampler)
    for name in ("count", "cols", "subsample", "rate_count", "recon_count"):
        positive(f"--{name.replace('_', '-')}", getattr(args, name))
    for path in args.image:
        api.load_image_file(path, run)
    kind, _, k = (args.traverse or "").partition(":")
    if args.traverse and (kind not in ("axis", "pca") or not k.lstrip("-").isdigit()):
        raise ZspaceError(f"--traverse {args.traverse!r}: expected axis:K or pca:K")
    opts = {"seed": args.seed, "log": print}
    strengths = {"strengths": args.strengths} if args.strengths else {}
    sampling = {"limits": args.limits, "components": args.components, "subsample": args.subsample}
    if not args.no_grids:
        grid = {"n": args.count, "cols": args.cols, "sharpen": args.sharpen, "refit": args.refit}
        api.generate(run, args.sampler, **grid, **sampling, **opts)
    if args.recon or args.image:
        api.reconstructions(
            run, n=args.recon_count, split=args.split, images=args.image, cols=args.cols, **opts
        )
    if args.interpolate:
        api.interpolate(run, *args.interpolate, steps=args.steps, split=args.split, **opts)
    if args.traverse:
        along = {kind: int(k)}  # axis=K or pca=K
        api.traverse(run, **along, split=args.split, **strengths, **opts)  # type: ignore[arg-type]
    if args.attribute:
        api.attribute(run, args.attribute, split=args.split, **strengths, **opts)
    if args.rate:
        size = args.subsample
        res = api.meaningful_rates(
            run, args.sampler, n=args.rate_count, reference_size=size, **sampling, **opts
        )
        print(
            f"rates: {len(res.results)} rows against threshold {res.threshold:.4g} "
            f"({res.reference_size} reference points in {res.space}) -> "
            f"{run.path / 'samples' / 'rates.json'}"
        )
        if res.warning:
            print(f"warning: {res.warning}")
    return 0

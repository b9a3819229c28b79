"""``zspace data info | preview | download`` through the argparse wiring the main CLI uses."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from zspace.cli.data import add_parser
from zspace.core.errors import ZspaceError


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="zspace")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def pets(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSPACE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "pets"
    for cls, colours in (("cat", [(250, 0, 0), (200, 0, 0)]), ("dog", [(0, 0, 250)] * 3)):
        (root / cls).mkdir(parents=True)
        for i, c in enumerate(colours):
            Image.new("RGB", (16, 16), c).save(root / cls / f"{i}.png")
    return root


def test_info_text(pets, tmp_path, capsys):
    assert run("data", "info", f"folder:{pets}", "--set", "data.valid_fraction=0.2") == 0
    out = capsys.readouterr().out.splitlines()
    data_file = next((tmp_path / "cache").glob("*.npy"))
    assert out == [
        f"source         folder:{pets}",
        "reader         folder: any folder (recursive) or zip of images; sub-folders are class "
        "labels",
        "images         5 of 16x16x3 uint8 (0.0 MB)",
        "labels         2 classes: cat 2, dog 3",
        "duplicates     2 exact copies of 1 image (3 identical: images 2, 3, 4)",  # the blue dogs
        "near-constant  5 images with pixel std <= 4 of 255 (images 0, 1, 2, 3, 4)",  # one colour
        "splits         train 4, valid 1 (seeded data.valid_fraction)",
        "task           reconstruct",
        out[8],
    ]
    assert out[8].startswith(f"cache          built: {data_file} (0.0 MB, decoded in ")


def test_info_json_and_conveniences(pets, capsys):
    assert run("data", "info", str(pets), "--size", "8", "--channels", "1", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [8, 8, 1] and info["count"] == 5
    assert info["label_counts"] == [2, 3] and info["cache"]["state"] == "built"
    assert info["duplicates"] == {"copies": 2, "images": 1, "largest": [2, 3, 4], "largest_size": 3}
    assert info["near_constant"]["count"] == 5 and info["near_constant"]["std_at_most"] == 4


def test_image_checks_count_exact_copies_and_blank_images_only(monkeypatch):
    """Planted copies and blank images are counted; near-copies (one pixel off), a dot on
    black and a colliding hash do not fool it."""
    from zspace.data import quality

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (400, 16, 16, 3), dtype=np.uint8)
    x[10:139] = x[5]  # 129 copies of image 5
    x[200:203] = x[199]  # 3 copies of image 199
    x[300] = x[301]
    x[300, 0, 0, 0] ^= 1  # one bit off: not a copy
    x[310:312] = np.clip(128 + rng.normal(0, 1, (2, 16, 16, 3)), 0, 255)  # grey with noise
    x[320] = 0
    x[320, 7:9, 7:9] = 255  # a dot on black: content
    found = quality.image_checks(np.lib.stride_tricks.as_strided(x))  # a read-only view
    assert found["duplicates"] == {
        "copies": 132, "images": 2, "largest": [5, 10, 11, 12, 13], "largest_size": 130,
    }  # fmt: skip
    assert found["near_constant"] == {"count": 2, "examples": [310, 311], "std_at_most": 4.0}
    monkeypatch.setattr(quality, "hash", lambda _: 0, raising=False)  # every row collides
    assert quality.image_checks(x)["duplicates"]["copies"] == 0  # row 0 has no copy: none claimed


def test_preview_png(pets, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert (
        run(
            "data",
            "preview",
            f"folder:{pets}",
            "-o",
            str(out),
            "--count",
            "4",
            "--task",
            "denoise",
            "--set",
            "data.drop_fraction=0.5",
        )
        == 0
    )
    assert capsys.readouterr().out == f"wrote {out}: 4 train images at 16x16x3, task denoise\n"
    with Image.open(out) as img:
        grid = np.asarray(img)
    # 16 px enlarged to 64, 2 px gaps, and a 12 px line with each image's label under it
    assert grid.shape == (2 * 66 + 2 + 12, 4 * 66 + 2, 3)
    assert (grid[134:146] < 100).any() and (grid[134:146] > 200).any()  # dark text on white
    clean_row = grid[68:132, 2:66]
    noisy_row = grid[2:66, 2:66]
    assert len(np.unique(clean_row.reshape(-1, 3), axis=0)) == 1  # a solid colour
    assert (noisy_row == 0).all(axis=2).mean() > 0.3  # about half the pixels dropped


def test_user_errors_raise_zspace_error(tmp_path):
    with pytest.raises(ZspaceError, match="unknown kind 'nope'"):
        run("data", "info", "nope:thing")
    with pytest.raises(ZspaceError, match="CelebA cannot be downloaded automatically"):
        run("data", "download", "celeba", "--dir", str(tmp_path))

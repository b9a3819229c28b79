"""Generation on a tiny trained run: grids, index.json, reconstructions, paths, the
rate and the CLI verb."""

import argparse
import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from zspace.cli.generation import add_parser
from zspace.core.errors import ZspaceError
from zspace.generation import api
from zspace.training import train_run as train


@pytest.fixture(scope="module")
def run(tiny_runs, tmp_path_factory):
    """A copy of the shared tiny VAE (trained with TINY, training split encoded)."""
    from conftest import copy_run

    import zspace

    return zspace.load_run(copy_run(tiny_runs["vae"], tmp_path_factory.mktemp("gen") / "ae"))


def cli(argv):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["generate", *argv])
    return args.func(args)


def png(path):
    with Image.open(path) as img:
        return np.asarray(img)


def index_of(run):
    return json.loads((run.path / "samples" / "index.json").read_text())


def test_grids_reproduce_byte_for_byte_and_are_listed(run):
    first = api.generate(run, "normal,uniform", n=12, cols=4, seed=3, limits=[0.5, 5])
    files = [e["file"] for e in first]
    assert files == [
        "grid-normal-n12-seed3.png",
        "grid-uniform-limit0.5-n12-seed3.png",
        "grid-uniform-limit5-n12-seed3.png",
    ]
    before = {f: (run.path / "samples" / f).read_bytes() for f in files}
    api.generate(run, "normal,uniform", n=12, cols=4, seed=3, limits=[0.5, 5])
    assert {f: (run.path / "samples" / f).read_bytes() for f in files} == before
    api.generate(run, "normal", n=12, cols=4, seed=4)
    assert (run.path / "samples" / "grid-normal-n12-seed4.png").read_bytes() != before[files[0]]
    listed = [e["file"] for e in index_of(run)]
    assert len(listed) == len(set(listed))  # regenerating replaces, never duplicates
    e = next(e for e in index_of(run) if e["file"] == files[2])
    assert e["kind"] == "grid" and e["sampler"] == "uniform" and e["params"]["limit"] == 5
    assert "mean radius" in e["caption"]
    # uniform(-5, 5) in 4 dims: mean radius near 5 * sqrt(4/3) = 5.77
    assert 4.5 < e["params"]["mean_radius"] < 7.0
    with Image.open(run.path / "samples" / files[0]) as img:
        assert img.size[0] == 4 * (64 + 2) + 2  # 16 px digits enlarged x4, 4 columns


def test_fitted_samplers_save_their_fit(run):
    entries = api.generate(run, "gauss,gmm", n=8, components=[1, 2], seed=0)
    assert [e["sampler"] for e in entries] == ["gauss", "gmm"]
    with np.load(run.path / "samplers" / "gauss.npz", allow_pickle=False) as f:
        assert f["mean"].shape == (4,) and f["cov"].shape == (4, 4)
    meta = json.loads((run.path / "samplers" / "gmm.json").read_text())
    assert meta["n_components"] in (1, 2) and set(meta["bic"]) == {"1", "2"}
    before = [(run.path / "samples" / e["file"]).read_bytes() for e in entries]
    api.generate(run, "gauss,gmm", n=8, components=[1, 2], seed=0)  # same seed, same bytes
    assert [(run.path / "samples" / e["file"]).read_bytes() for e in entries] == before


def test_sharpening_writes_one_grid_per_factor(run):
    entries = api.generate(run, "normal", n=8, sharpen=[0, 7], seed=0)
    a, b = (png(run.path / "samples" / e["file"]) for e in entries)
    assert [e["params"]["sharpen"] for e in entries] == [0, 7]
    assert not np.array_equal(a, b)


def test_reconstructions_metrics_and_image_file(run, tmp_path):
    png = tmp_path / "mine.png"
    Image.fromarray((np.random.default_rng(0).random((40, 30)) * 255).astype(np.uint8)).save(png)
    res = api.reconstructions(run, n=6, images=[png])
    m = res["metrics"]
    assert m["split"] == "valid" and m["n"] > 100
    assert m["loss"] > 0 and 0 < m["psnr"] < 60 and -1 <= m["ssim"] <= 1
    assert json.loads((run.path / "samples" / "reconstruction.json").read_text())["metrics"] == m
    kinds = {e["file"]: e["kind"] for e in index_of(run)}
    assert kinds["recon-files-mine.png"] == "reconstruction"
    assert kinds[f"recon-valid-n6-seed{run.config.seed}.png"] == "reconstruction"


def test_image_file_is_centre_cropped_and_resized_like_the_data(run, tmp_path):
    from zspace.generation.images import load_image_file

    assert run.config.data.crop == "center"
    tall = np.full((40, 30), 255, np.uint8)
    tall[5:35] = 0  # white bands above and below a black 30x30 centre
    Image.fromarray(tall).save(tmp_path / "tall.png")
    got = load_image_file(tmp_path / "tall.png", run)
    assert got.shape == (16, 16, 1) and got.dtype == np.uint8
    assert got.max() == 0  # the bands were cropped away, not squeezed in
    Image.fromarray(np.full((40, 30, 3), 200, np.uint8)).save(tmp_path / "rgb.png")
    assert load_image_file(tmp_path / "rgb.png", run).shape == (16, 16, 1)  # to grey


def test_denoise_grids_show_the_noisy_input_first(tmp_path):
    from conftest import TINY

    from zspace.generation.reconstructions import reconstruct_rows

    run = train(
        None,
        run_dir=tmp_path / "dn",
        progress=False,
        log=lambda s: None,
        overrides=[*TINY, "train.epochs=1", 'data.task="denoise"', "data.noise_sigma=0.3"],
    )
    digits = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 1), dtype=np.uint8)
    first = reconstruct_rows(run, digits, seed=1)
    assert len(first) == 3  # input, original, reconstruction
    np.testing.assert_array_equal(first[1][..., 0], digits[..., 0])
    assert np.abs(first[0].astype(int) - digits).mean() > 10  # noisy input differs
    again = reconstruct_rows(run, digits, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_bad_image_files_are_user_errors(run, tmp_path):
    with pytest.raises(ZspaceError, match="image file not found"):
        api.reconstructions(run, n=2, images=[tmp_path / "nope.png"], metrics=False)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ZspaceError, match="does not decode"):
        api.reconstructions(run, n=2, images=[junk], metrics=False)


def test_paths_write_their_grids(run):
    e = api.interpolate(run, 0, 1, steps=6)
    assert e["kind"] == "interpolation" and e["params"]["split"] == "valid"
    assert "valid image 0 -> valid image 1 (positions in the valid split)" in e["caption"]
    strip = png(run.path / "samples" / e["file"])
    assert strip.shape[1] == (6 + 2) * 66 + 2  # A, 6 decoded steps, B
    data, splits = run.data()
    a, b = (data.images[splits["valid"][i]][..., 0].repeat(4, 0).repeat(4, 1) for i in (0, 1))
    for line in (0, 1):  # both rows start at the real image A and end at the real B
        top = 2 + line * 66
        np.testing.assert_array_equal(strip[top : top + 64, 2:66], a)
        np.testing.assert_array_equal(strip[top : top + 64, 2 + 7 * 66 : 66 + 7 * 66], b)
    t = api.traverse(run, pca=1, strengths=[-2, 0, 2], count=2)
    assert t["kind"] == "traversal" and (run.path / "samples" / t["file"]).is_file()
    # one line per image, its strengths across: at strength 0 everywhere, every tile of
    # a line is the same image and the two lines differ
    t = api.traverse(run, pca=1, strengths=[0, 0, 0], count=2)
    grid = png(run.path / "samples" / t["file"])
    cell = 64 + 2  # 16 px digits enlarged x4, 2 px padding

    def tile(line, col):
        return grid[2 + line * cell : line * cell + cell, 2 + col * cell : col * cell + cell]

    for line in (0, 1):
        assert all(np.array_equal(tile(line, 0), tile(line, c)) for c in (1, 2))
    assert not np.array_equal(tile(0, 0), tile(1, 0))
    with pytest.raises(ZspaceError, match="exactly one"):
        api.traverse(run)
    with pytest.raises(ZspaceError, match="no attributes"):
        api.attribute(run, "Smiling")


def test_rates_are_written_per_sampler_and_limit(run):
    res = api.meaningful_rates(
        run, "normal,uniform,gauss", n=200, limits=[1, 50], reference_size=1000
    )
    rates = {(r["sampler"], r["params"].get("limit")): r["rate"] for r in res["results"]}
    assert set(rates) == {
        ("data", None),
        ("normal", None),
        ("uniform", 1.0),
        ("uniform", 50.0),
        ("gauss", None),
    }
    assert all(0 <= v <= 1 for v in rates.values())
    control = res["results"][0]
    assert control["params"] == {"control": "valid images, encoded"}  # held out
    assert control["n"] == 180 and control["rate"] >= 0.8  # all 180 valid digits
    saved = json.loads((run.path / "samples" / "rates.json").read_text())
    assert saved["reference_size"] == 1000
    assert saved["space"] == ("mu" if run.variational else "z")
    assert 0 < saved["threshold"]
    # another sampler against the same reference: earlier rows are kept, control first
    api.meaningful_rates(run, "gmm", n=50, reference_size=1000, components=[1])
    saved = json.loads((run.path / "samples" / "rates.json").read_text())
    assert [r["sampler"] for r in saved["results"]] == [
        "data",
        "normal",
        "uniform",
        "uniform",
        "gauss",
        "gmm",
    ]
    # another reference (size): rows measured against the old threshold are dropped
    api.meaningful_rates(run, "normal", n=50, reference_size=300)
    saved = json.loads((run.path / "samples" / "rates.json").read_text())
    assert saved["reference_size"] == 300
    assert [r["sampler"] for r in saved["results"]] == ["data", "normal"]


def test_bad_counts_and_seeds_are_one_line_errors(run):
    with pytest.raises(ZspaceError, match="seed -1: must be >= 0"):
        api.generate(run, "normal", n=4, seed=-1)
    with pytest.raises(ZspaceError, match="cols = 0: must be >= 1"):
        api.reconstructions(run, cols=0)
    with pytest.raises(ZspaceError, match="n = 0: must be >= 1"):
        api.reconstructions(run, n=0)
    with pytest.raises(ZspaceError, match="count = 0: must be >= 1"):
        api.traverse(run, pca=1, count=0)
    with pytest.raises(ZspaceError, match="strengths = 0: must be >= 1"):
        api.traverse(run, axis=0, strengths=[])
    with pytest.raises(ZspaceError, match="no sharpening factors"):
        api.generate(run, "normal", n=4, sharpen=[])


def test_fits_use_the_run_seed_and_warn_at_the_range_edge(run, monkeypatch):
    from zspace.generation import samplers

    logged = []
    api.generate(run, "gmm", n=4, components=[1, 2], seed=0, refit=True, log=logged.append)
    calls = []
    real = samplers.Fitted.fit
    monkeypatch.setattr(samplers.Fitted, "fit", lambda *a, **k: calls.append(k) or real(*a, **k))
    api.generate(run, "gmm", n=4, components=[1, 2], seed=7)  # another drawing seed
    assert calls == []  # the saved fit is reused, not refitted under seed 7
    meta = json.loads((run.path / "samplers" / "gmm.json").read_text())
    assert meta["seed"] == run.config.seed
    if meta["n_components"] == 2:  # BIC took the largest count tried: said so
        assert "largest count tried" in meta["warning"]
        assert any("largest count tried" in line for line in logged)
    else:
        assert meta["warning"] is None
    # a json that does not describe its npz (a cut-short write) counts as no fit
    (run.path / "samplers" / "gmm.json").write_text(json.dumps({**meta, "npz_sha256": "0"}))
    api.generate(run, "gmm", n=4, components=[1, 2], seed=7)
    assert len(calls) == 1


def test_missing_latents_asks_for_encode(run, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(run.path, bare, ignore=shutil.ignore_patterns("latents", "samplers"))
    with pytest.raises(ZspaceError, match="zspace encode"):
        api.generate(bare, "gauss", n=4)
    with pytest.raises(ZspaceError, match="zspace encode"):
        api.meaningful_rates(bare, "normal", n=4)


def test_caption_survives_non_latin1_file_names(run, tmp_path):
    digit = np.asarray(Image.new("L", (16, 16), 128))
    path = tmp_path / "写真.png"
    Image.fromarray(digit).save(path)
    res = api.reconstructions(run, n=2, images=[path], metrics=False)
    assert res["entries"][1]["params"]["files"] == [str(path)]
    name = res["entries"][1]["file"]
    assert name.startswith("recon-files-") and (run.path / "samples" / name).is_file()


def test_cli_verb(run, capsys):
    assert cli([str(run.path), "--sampler", "normal", "-n", "4", "--seed", "9"]) == 0
    assert (run.path / "samples" / "grid-normal-n4-seed9.png").is_file()
    assert "grid-normal-n4-seed9.png" in capsys.readouterr().out
    with pytest.raises(ZspaceError, match="unknown sampler 'bogus'; choose one of normal"):
        cli([str(run.path), "--sampler", "normal,bogus"])
    with pytest.raises(ZspaceError, match="> 0"):
        cli([str(run.path), "--sampler", "uniform", "--limits", "1,-2", "-n", "2"])
    with pytest.raises(ZspaceError, match="axis:K or pca:K"):
        cli([str(run.path), "--no-grids", "--traverse", "foo"])
    with pytest.raises(ZspaceError, match="run folder not found"):
        cli([str(run.path / "missing")])
    assert cli([str(run.path), "--no-grids", "--recon", "--recon-n", "3"]) == 0
    assert "3 valid images" in capsys.readouterr().out
    from zspace.cli.main import main  # the zspace parser: negative numbers are values

    traverse = ["--no-grids", "--traverse", "pca:1", "--strengths", "-3,0,3", "-n", "2"]
    assert main(["generate", str(run.path), *traverse]) == 0
    assert "at -3, 0, 3 x its std" in capsys.readouterr().out
    assert main(["generate", str(run.path), "--sampler", "uniform", "--limits", "-1,2"]) == 2
    assert "uniform limit -1: must be a finite number > 0" in capsys.readouterr().err


def test_results_read_like_dicts_and_show_in_a_notebook(run):
    from matplotlib.figure import Figure

    grids = api.generate(run, "normal", n=4, cols=2, seed=5)
    first = grids[0]
    assert first["file"] == first.file == "grid-normal-n4-seed5.png" and first["kind"] == "grid"
    assert dict(first)["params"]["n"] == 4 and "folder" not in dict(first)
    assert first.path.is_file() and "data:image/png;base64," in grids._repr_html_()
    assert isinstance(first.figure(), Figure)
    rec = api.reconstructions(run, n=4, metrics=True)
    assert rec["metrics"]["n"] == rec.metrics["n"] > 0
    assert "PSNR" in rec._repr_html_() and rec["entries"][0]["kind"] == "reconstruction"
    rates = api.meaningful_rates(run, "normal", n=20)
    assert rates["results"][0]["sampler"] == "data" and "<table>" in rates._repr_html_()
    assert set(rates) >= {"threshold", "results", "warning"}


def test_generated_files_keep_their_parameters_in_the_name(run, tmp_path):
    """Two calls with other strengths (limits, sharpening) keep both grids; an input
    file contributes its stem, so no name carries a second extension."""
    one = api.traverse(run, pca=1, strengths=[-1, 0, 1], count=2, seed=0)
    two = api.traverse(run, pca=1, strengths=[-3, 0, 3], count=2, seed=0)
    assert one["file"] != two["file"]
    listed = {e["file"]: e for e in index_of(run)}
    for e in (one, two):
        assert (run.path / "samples" / e["file"]).is_file() and e["file"] in listed
    assert listed[two["file"]]["params"]["strengths"] == [-3, 0, 3]
    a = api.generate(run, "uniform", n=4, limits=[1], seed=0)[0]
    b = api.generate(run, "uniform", n=4, limits=[2], sharpen=3, seed=0)[0]
    assert a["file"] == "grid-uniform-limit1-n4-seed0.png"
    assert b["file"] == "grid-uniform-limit2-sharp3-n4-seed0.png"
    assert (run.path / "samples" / a["file"]).is_file() and b["file"] in {
        e["file"] for e in index_of(run)
    }
    again = api.traverse(run, pca=1, strengths=[-1, 0, 1], count=2, seed=0)
    assert again["file"] == one["file"]  # the same call replaces its own file
    assert [e["file"] for e in index_of(run)].count(one["file"]) == 1
    face = tmp_path / "my.face.png"
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(face)
    e = api.interpolate(run, str(face), 1, steps=3)
    assert e["file"].startswith("interp-my_face-1-valid-steps3") and e["file"].count(".") == 1
    assert "my.face.png -> valid image 1" in e["caption"]


def test_encode_converts_uint8_and_refuses_0_255_floats(run):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (3, 16, 16, 1), dtype=np.uint8)
    floats = torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255

    def code(x):  # mu for a VAE: deterministic
        z, mu, _ = run.encode(x)
        return z if mu is None else mu

    z_float = code(floats)
    torch.testing.assert_close(code(u8), z_float)  # uint8 NHWC, as stored
    torch.testing.assert_close(code(torch.from_numpy(u8).permute(0, 3, 1, 2)), z_float)
    torch.testing.assert_close(code(u8[0]), z_float[:1])  # one image without N
    grey = u8[..., 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read-only arrays: no torch "not writable" warning
        frozen = np.frombuffer(grey.tobytes(), np.uint8).reshape(grey.shape)
        for same in (grey, frozen, grey.astype(np.float32) / 255, grey[:, None]):
            torch.testing.assert_close(code(same), z_float)  # (N, H, W) as train(data=) takes
    with pytest.raises(ZspaceError, match=r"shape \(3, 1, 16, 16\) have values up to 2\d\d"):
        run.encode(floats * 255)  # floats in 0..255: refused, not silently saturated
    with pytest.raises(ZspaceError, match=r"images of shape \(3, 16, 16, 1\): .*permute"):
        run.encode(floats.permute(0, 2, 3, 1))  # float NHWC: the shape as given, and a hint
    with pytest.raises(ZspaceError, match=r"uint8 images of shape \(3, 32, 32, 1\)"):
        run.encode(np.zeros((3, 32, 32, 1), np.uint8))
    with pytest.raises(ZspaceError, match="dtype int64"):
        run.encode(np.zeros((3, 1, 16, 16), np.int64))

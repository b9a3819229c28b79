"""zspace export: Projector files, safetensors bundles, ONNX graphs, their errors and CLI."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from PIL import Image

import zspace
from zspace.cli.main import main
from zspace.exporting.projector import SPRITE_LIMIT, sprite_layout
from zspace.latents.store import load_latents


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A 1-epoch AE and a VAE with batch norm and dropout (eval mode must drop them)."""
    root = tmp_path_factory.mktemp("export-runs")
    out = {}
    for kind, extra in (
        ("ae", ["model.variational=false"]),
        ("vae", ["model.variational=true", "model.batch_norm=true", "model.dropout=0.1"]),
    ):
        cfg = zspace.load_config(None, [*TINY, *extra, "train.epochs=1"])
        run = zspace.train(cfg, run_dir=root / kind, log=lambda s: None, progress=False)
        out[kind] = run.path
    zspace.encode(out["vae"])  # the AE is left without latents: export encodes it
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / run.name
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns("export"))
    return dst


# ---------------------------------------------------------------- projector


def _read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_projector_files_parse_and_match_the_latents(runs):
    out = zspace.export(runs["vae"], "projector", n=300, colour_by="radius")
    assert out == runs["vae"] / "export" / "projector"
    lat = load_latents(runs["vae"])
    tensors = np.loadtxt(out / "tensors.tsv", delimiter="\t", dtype=np.float32)
    assert tensors.shape == (300, lat.z_dim)
    meta = _read_tsv(out / "metadata.tsv")
    header, rows = meta[0], meta[1:]
    assert header == ["radius", "label", "index"] and len(rows) == 300
    assert all(len(r) == len(header) for r in rows)
    # each line is the mu of the data row its index names (a VAE exports mu, not z)
    pos = {int(i): k for k, i in enumerate(lat.index)}
    picked = np.array([pos[int(r[2])] for r in rows])
    assert np.all(np.diff(picked) > 0)  # a subsample, in order
    np.testing.assert_allclose(tensors, lat.mu[picked], rtol=1e-6, atol=1e-7)
    assert not np.allclose(tensors, lat.z[picked])
    radius = np.array([float(r[0]) for r in rows])
    np.testing.assert_allclose(radius, np.linalg.norm(lat.mu[picked], axis=1), rtol=1e-3)
    assert [r[1] for r in rows] == [str(int(v)) for v in lat.label[picked]]
    # sprite: ceil(sqrt(300)) = 18 columns of 16 px tiles, each tile the image of its row
    cfgtext = (out / "projector_config.pbtxt").read_text()
    assert 'tensor_path: "tensors.tsv"' in cfgtext and 'image_path: "sprite.png"' in cfgtext
    assert cfgtext.count("single_image_dim: 16") == 2
    with Image.open(out / "sprite.png") as im:
        assert im.size == (18 * 16, 17 * 16) and im.mode == "L"
        sprite = np.asarray(im)
    images = zspace.load_run(runs["vae"]).data()[0].images
    for k in (0, 17, 18, 299):
        tile = sprite[(k // 18) * 16 : (k // 18 + 1) * 16, (k % 18) * 16 : (k % 18 + 1) * 16]
        assert np.array_equal(tile, images[int(rows[k][2])][..., 0])
    assert not sprite[16 * 16 :, 300 % 18 * 16 :].any()  # unused tiles stay black


def test_projector_subsample_is_seeded_and_tensorboard_reads_it(runs, tmp_path):
    a = zspace.export(runs["vae"], "projector", tmp_path / "a", n=50)
    b = zspace.export(runs["vae"], "projector", tmp_path / "b", n=50)
    assert (a / "tensors.tsv").read_bytes() == (b / "tensors.tsv").read_bytes()
    assert (a / "sprite.png").read_bytes() == (b / "sprite.png").read_bytes()
    # TensorBoard's own parser reads the config and the tensors
    pytest.importorskip("tensorboard")
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_plugin
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    cfg = text_format.Parse((a / "projector_config.pbtxt").read_text(), ProjectorConfig())
    emb = cfg.embeddings[0]
    assert emb.tensor_name == "vae mu (train, epoch 1)"
    assert list(emb.sprite.single_image_dim) == [16, 16]
    tensor = projector_plugin._read_tensor_tsv_file(str(a / emb.tensor_path))
    assert tensor.shape == (50, 4)


def test_projector_encodes_missing_latents_and_takes_a_split(runs, tmp_path):
    run = _copy(runs["ae"], tmp_path)
    assert not (run / "latents").exists()
    lines = []
    out = zspace.export(run, "projector", split="valid", n=0, log=lines.append)
    lat = load_latents(run, "valid")  # written as `zspace encode --split valid` would
    assert "encoding it first" in lines[0]
    tensors = np.loadtxt(out / "tensors.tsv", delimiter="\t", dtype=np.float32, ndmin=2)
    np.testing.assert_allclose(tensors, lat.z, rtol=1e-6, atol=1e-7)  # an AE exports z
    assert len(_read_tsv(out / "metadata.tsv")) == len(lat) + 1


def test_projector_refuses_latents_of_another_checkpoint(runs, tmp_path):
    from dataclasses import replace

    from zspace.latents.store import latents_path, save_latents

    run = _copy(runs["vae"], tmp_path)
    lat = load_latents(run)
    save_latents(latents_path(run), replace(lat, mu=lat.mu + 0.05))  # as an older model would
    with pytest.raises(zspace.ZspaceError, match="do not match the model of epoch 1"):
        zspace.export(run, "projector", n=20)
    assert not (run / "export").exists()


def test_sprite_layout_stays_within_the_limit():
    assert sprite_layout(10_000, 28) == sprite_layout(10_000, 28, SPRITE_LIMIT)
    lay = sprite_layout(10_000, 28)
    assert (lay.columns, lay.rows, lay.tile) == (100, 100, 28)
    lay = sprite_layout(162_770, 96)  # all of CelebA's training split
    assert lay.columns * lay.rows >= 162_770 and max(lay.size) <= SPRITE_LIMIT
    assert lay.tile == SPRITE_LIMIT // 404
    with pytest.raises(zspace.ZspaceError, match="lower --count"):
        sprite_layout(8193**2, 28)


def test_projector_errors_leave_nothing_behind(runs, tmp_path):
    out = tmp_path / "p"
    with pytest.raises(zspace.ZspaceError, match=r"no such column; choose from label, index"):
        zspace.export(runs["vae"], "projector", out, colour_by="smile")
    with pytest.raises(zspace.ZspaceError, match="--count -1: must be >= 0"):
        zspace.export(runs["vae"], "projector", out, n=-1)
    with pytest.raises(zspace.ZspaceError, match="split 'test' does not exist"):
        zspace.export(runs["vae"], "projector", out, split="test")
    with pytest.raises(zspace.ZspaceError, match="--colour-by applies to --format projector"):
        zspace.export(runs["vae"], "onnx", out, colour_by="label")
    with pytest.raises(zspace.ZspaceError, match="expected one of projector, safetensors, onnx"):
        zspace.export(runs["vae"], "tflite", out)
    with pytest.raises(zspace.ZspaceError, match="is a run folder"):
        zspace.export(runs["vae"], "projector", runs["ae"])
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


# ---------------------------------------------------------------- safetensors


def test_safetensors_bundle_round_trips_through_load_run(runs, tmp_path):
    run = zspace.load_run(runs["vae"])
    out = zspace.export(run, "safetensors", tmp_path / "bundle")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.toml", "history.jsonl", "meta.json", "model.safetensors",
    ]  # fmt: skip
    assert not list(out.rglob("*.pt"))  # no pickle anywhere
    bundle = zspace.load_run(out)
    assert bundle.epoch == run.epoch and bundle.config == run.config
    assert bundle.history == run.history
    meta = json.loads((out / "meta.json").read_text())
    assert meta["bundle"]["checkpoint"] == "best" and meta["input_shape"] == run.meta["input_shape"]
    z = torch.randn(9, run.config.model.z_dim, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(bundle.decode(z), run.decode(z), rtol=0, atol=1e-6)
    x = run.decode(z)
    _, mu_a, lv_a = bundle.encode(x)
    _, mu_b, lv_b = run.encode(x)
    torch.testing.assert_close(mu_a, mu_b, rtol=0, atol=1e-6)
    torch.testing.assert_close(lv_a, lv_b, rtol=0, atol=1e-6)
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        assert fh.metadata()["format"] == "zspace-bundle" and fh.metadata()["kind"] == "vae"


def test_bundle_errors(runs, tmp_path):
    out = zspace.export(runs["ae"], "safetensors", tmp_path / "b")
    with pytest.raises(zspace.ZspaceError, match=r"bundle of one checkpoint \(best, epoch 1\)"):
        zspace.load_run(out, checkpoint=7)
    assert zspace.load_run(out, checkpoint=1).epoch == 1
    bad = tmp_path / "mismatch"
    shutil.copytree(out, bad)
    text = (bad / "config.toml").read_text().replace("z_dim = 4", "z_dim = 5")
    (bad / "config.toml").write_text(text)
    with pytest.raises(zspace.ZspaceError, match="does not fit the model of its config.toml"):
        zspace.load_run(bad)
    (bad / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(zspace.ZspaceError, match="unreadable or corrupt"):
        zspace.load_run(bad)


# ---------------------------------------------------------------- ONNX


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_onnx_graphs_match_run_encode_and_decode(runs, kind, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    run = zspace.load_run(runs[kind])
    out = zspace.export(run, "onnx", tmp_path / "onnx")
    enc = ort.InferenceSession(str(out / "encoder.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(out / "decoder.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = enc.get_inputs()
    assert inp.name == "images" and inp.shape[1:] == [1, 16, 16]  # plain NCHW
    assert isinstance(inp.shape[0], str)  # a dynamic batch axis
    names = [o.name for o in enc.get_outputs()]
    assert names == (["mu", "logvar"] if kind == "vae" else ["z"])
    assert [i.name for i in dec.get_inputs()] == ["z"] and dec.get_outputs()[0].name == "images"
    images = run.data()[0].images
    for batch in (1, 7):
        x = run.as_batch(images[:batch])
        got = enc.run(None, {"images": x.numpy()})
        z, mu, logvar = run.encode(x)
        want = [mu, logvar] if kind == "vae" else [z]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w.numpy(), rtol=0, atol=1e-4)
        code = torch.randn(batch, 4, generator=torch.Generator().manual_seed(batch))
        (pix,) = dec.run(None, {"z": code.numpy()})
        np.testing.assert_allclose(pix, run.decode(code).numpy(), rtol=0, atol=1e-4)
        assert pix.shape == (batch, 1, 16, 16) and 0 <= pix.min() and pix.max() <= 1


def test_missing_extra_is_one_line_naming_it(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import fails as if not installed
    with pytest.raises(zspace.ZspaceError, match=r"pip install 'zspace\[onnx\]'"):
        zspace.export(runs["ae"], "onnx", tmp_path / "o")
    assert main(["export", str(runs["ae"]), "--format", "onnx", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zspace: error: --format onnx needs the onnx")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- CLI


def test_cli_export(runs, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["export", str(runs["vae"]), "--format", "safetensors", "--out", str(out)]) == 0
    assert "exported safetensors to" in capsys.readouterr().out
    assert zspace.load_run(out).epoch == 1
    assert main(["export", str(tmp_path / "nope"), "--format", "onnx"]) == 2
    assert "zspace: error: run folder not found" in capsys.readouterr().err
    cmd = ["export", str(runs["vae"]), "--format", "projector", "--out", str(tmp_path / "p")]
    assert main([*cmd, "--n", "20", "--colour-by", "index"]) == 0
    header = (tmp_path / "p" / "metadata.tsv").read_text().splitlines()[0]
    assert header.split("\t")[0] == "index"
    with pytest.raises(SystemExit) as exc:
        main(["export", str(runs["vae"]), "--format", "tflite"])
    assert exc.value.code == 2


def test_projector_on_celeba_has_attribute_columns_and_rgb_sprites(shared_data_dir, tmp_path):
    zip_path = shared_data_dir / "celeba-558" / "img_align_celeba.zip"
    if not zip_path.is_file():
        pytest.skip(f"test data absent: {zip_path}")
    sets = [
        f'data.source="celeba:{zip_path}"', f'data.cache_dir="{tmp_path / "cache"}"',
        "data.image_size=16", "model.z_dim=4", "model.encoder_filters=[8, 16]",
        "model.encoder_strides=[2, 2]", "train.epochs=1", "train.threads=1",
    ]  # fmt: skip
    run = zspace.train(zspace.load_config(None, sets), run_dir=tmp_path / "run", progress=False,
                       log=lambda s: None)  # fmt: skip
    out = zspace.export(run, "projector", colour_by="Smiling")
    meta = _read_tsv(out / "metadata.tsv")
    lat = load_latents(run)
    assert meta[0][0] == "Smiling" and len(meta[0]) == 40 + 2  # 40 attributes, index, radius
    assert "label" not in meta[0] and len(meta) == len(lat) + 1
    j = list(lat.attr_names).index("Smiling")
    assert [r[0] for r in meta[1:]] == [str(int(v)) for v in lat.attr[:, j]]
    assert {r[0] for r in meta[1:]} <= {"-1", "0", "1"}
    with Image.open(out / "sprite.png") as im:
        assert im.mode == "RGB" and im.size[0] == int(np.ceil(np.sqrt(len(lat)))) * 16

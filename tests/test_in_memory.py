"""zspace.train on images in memory (a notebook's arrays or tensors)."""

import numpy as np
import pytest
import torch

import zspace
from zspace.config import load_config
from zspace.core.errors import ZspaceError

QUIET = {"log": lambda _m: None, "progress": False}
SMALL = [
    "model.z_dim=3",
    "model.encoder_filters=[4, 8]",
    "model.encoder_strides=[2, 2]",
    "train.epochs=1",
    "train.threads=1",
]


def _images(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 16, 16), np.uint8)
    labels = rng.integers(0, 3, n)
    for i, k in enumerate(labels):  # three classes: a bar in one of three rows
        x[i, 4 * k + 2 : 4 * k + 5, 2:14] = 200 + rng.integers(0, 50)
    return x, labels


def test_train_on_arrays_then_every_stage_reads_the_run(tmp_path):
    x, labels = _images()
    cfg = load_config(None, SMALL)
    run = zspace.train(cfg, run_dir=tmp_path / "run", data=x, labels=labels, **QUIET)
    assert run.config.data.source == "run:data"
    assert (tmp_path / "run" / "data" / "images.npy").is_file()
    again = zspace.load_run(tmp_path / "run")
    data, splits = again.data()
    assert data.images.shape == (60, 16, 16, 1) and np.array_equal(data.images[..., 0], x)
    assert np.array_equal(data.labels, labels) and data.label_names == ("0", "1", "2")
    assert sum(len(v) for v in splits.values()) == 60
    zspace.encode(again)
    lat = zspace.load_run(tmp_path / "run")
    from zspace.latents.store import load_latents

    assert np.array_equal(load_latents(lat).label, labels[splits["train"]])
    zspace.generate(again, "normal", n=4)
    assert zspace.report(again).is_file()
    resumed = zspace.train(
        run_dir=tmp_path / "run", resume=True, overrides=["train.epochs=2"], **QUIET
    )
    assert [r["epoch"] for r in resumed.history] == [1, 2]


def test_float_tensors_are_scaled_and_match_uint8(tmp_path):
    x, _ = _images(seed=1)
    as_float = torch.from_numpy(x[:, None].astype(np.float32) / 255.0)
    cfg = load_config(None, SMALL)
    a = zspace.train(cfg, run_dir=tmp_path / "a", data=x, **QUIET)
    b = zspace.train(cfg, run_dir=tmp_path / "b", data=as_float, **QUIET)
    assert np.array_equal(a.data()[0].images, b.data()[0].images)
    assert a.history[0]["total"] == b.history[0]["total"]


def test_every_layout_reads_to_the_same_images():
    """train(data=...) and run.encode share one rule (data.arrays.image_layout): uint8
    NHW, NHWC, NCHW, read-only included, and floats NCHW, NHW give the same images."""
    import warnings

    from zspace.data.arrays import as_image_data

    x, _ = _images(n=4)
    frozen = np.frombuffer(x.tobytes(), np.uint8).reshape(x.shape)
    floats = x.astype(np.float32) / 255
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torch "not writable" warning, no layout tie
        for given in (x, x[..., None], x[:, None], frozen, floats, floats[:, None]):
            assert np.array_equal(as_image_data(given).images, x[..., None])
        assert np.array_equal(as_image_data(torch.from_numpy(x[:, None])).images, x[..., None])
    rgb = np.arange(4 * 27, dtype=np.uint8).reshape(4, 3, 3, 3)  # NHWC or NCHW: a tie
    with pytest.warns(UserWarning, match=r"\(4, 3, 3, 3\) .* read as \(N, H, W, C\), as stored"):
        assert np.array_equal(as_image_data(rgb).images, rgb)


@pytest.mark.parametrize(
    "data, labels, message",
    [
        (np.zeros((10, 16, 16, 2), np.uint8), None, r"uint8 .* \(10, 16, 16, 2\): expected \(N, H"),
        (np.zeros((10, 16, 16, 1), np.float32), None, r"\(N, H, W, C\): use x.permute"),
        (
            np.full((10, 1, 16, 16), 3.0, np.float32),
            None,
            "must lie in \\[0, 1\\]; got 3..3 \\(uint8-like",
        ),
        (np.full((10, 1, 16, 16), np.nan, np.float32), None, "NaN or inf"),
        (np.zeros((10, 16, 16), np.int32), None, "dtype int32"),
        (np.zeros((10, 16, 16), np.uint8), np.zeros(9, np.int64), "labels: shape"),
        (np.zeros((10, 16, 16), np.uint8), -np.ones(10, np.int64), "non-negative integers"),
        (np.zeros((1, 16, 16), np.uint8), None, "at least 2"),
    ],
)
def test_bad_arrays_get_one_line_and_no_folder(tmp_path, data, labels, message):
    with pytest.raises(ZspaceError, match=message):
        zspace.train(
            load_config(None, SMALL), run_dir=tmp_path / "run", data=data, labels=labels, **QUIET
        )
    assert not (tmp_path / "run").exists()


def test_labels_without_data_and_data_on_resume_are_refused(tmp_path):
    with pytest.raises(ZspaceError, match="needs data="):
        zspace.train(load_config(None, SMALL), run_dir=tmp_path / "r", labels=[0, 1], **QUIET)
    with pytest.raises(ZspaceError, match="starts a new run"):
        zspace.train(
            run_dir=tmp_path / "r", resume=True, data=np.zeros((4, 16, 16), np.uint8), **QUIET
        )


def test_class_names_and_duplicates_reach_meta_latents_and_the_projector(tmp_path):
    import json

    from zspace.latents.store import load_latents

    x, labels = _images()
    x[50:] = 0  # ten blank images: 9 copies of one, all near-constant
    cfg = load_config(None, [*SMALL, "data.class_names=top,middle,bottom"])
    run = zspace.train(cfg, run_dir=tmp_path / "run", data=x, labels=labels, **QUIET)
    names = ["top", "middle", "bottom"]
    meta = json.loads((run.path / "meta.json").read_text())["data"]
    assert meta["label_names"] == names
    _, counts = np.unique(x.reshape(60, -1), axis=0, return_counts=True)
    assert meta["duplicates"]["copies"] == int((counts - 1).sum()) >= 9
    assert meta["near_constant"]["count"] == 10 and meta["near_constant"]["examples"][0] == 50
    zspace.encode(run, log=None)
    assert load_latents(run).label_names == tuple(names)
    out = zspace.export(run, "projector", log=None)
    rows = (out / "metadata.tsv").read_text().splitlines()[1:]
    assert {r.split("\t")[0] for r in rows} == set(names)
    with pytest.raises(ZspaceError, match=r"^label_names: 2 class names for labels 0..2$"):
        zspace.train(cfg, run_dir=tmp_path / "r2", data=x, labels=labels, label_names="ab", **QUIET)

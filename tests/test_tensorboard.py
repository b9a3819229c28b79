"""train.log = ["tensorboard"]: event files under RUN/tb/, read back with TensorBoard's reader."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from PIL import Image

import zspace

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

LOG = 'train.log=["tensorboard"]'
QUIET = {"log": lambda s: None, "progress": False}


def _events(run: Path) -> EventAccumulator:
    acc = EventAccumulator(
        str(run / "tb"), size_guidance={"scalars": 0, "images": 0, "histograms": 0}
    )
    acc.Reload()
    return acc


def _numeric(row: dict) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in row.items()
        if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tb")
    cfg = zspace.load_config(None, [*TINY, LOG, "model.variational=true"])
    return zspace.train(cfg, run_dir=root / "vae", **QUIET).path


def test_every_history_scalar_per_epoch(vae_run):
    acc = _events(vae_run)
    history = zspace.load_run(vae_run).history
    keys = set(_numeric(history[0]))
    assert {"total", "reco", "kl", "kl_raw", "val_total", "lr", "seconds"} <= keys
    assert keys <= set(acc.Tags()["scalars"])
    for key in keys:
        events = acc.Scalars(key)
        assert [e.step for e in events] == [1, 2], key
        want = [_numeric(r)[key] for r in history]
        np.testing.assert_allclose([e.value for e in events], want, rtol=1e-6, err_msg=key)


def test_reconstruction_grid_and_histograms(vae_run):
    acc = _events(vae_run)
    images = acc.Images("reconstructions")
    assert [e.step for e in images] == [1, 2]
    grid = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)))
    # 16 fixed validation images, 8 per line, each line over its reconstructions; 16 px
    # images enlarged x4 to 64 px cells with 2 px gaps
    assert grid.shape[:2] == (2 * 2 * 66 + 2, 8 * 66 + 2)
    run = zspace.load_run(vae_run)
    data, splits = run.data()
    first = data.images[np.sort(splits["valid"])[0]][..., 0]
    cell = grid[2:66, 2:66, 0]  # TensorBoard stores grey as RGB
    assert np.array_equal(cell, first.repeat(4, 0).repeat(4, 1))
    tags = acc.Tags()["histograms"]
    assert set(tags) == {"radius", "radius_mu", "logvar"}
    n_valid = len(splits["valid"])
    radius = acc.Histograms("radius")
    assert [h.step for h in radius] == [1, 2] and radius[0].histogram_value.num == n_valid
    logvar = acc.Histograms("logvar")[-1].histogram_value
    assert logvar.num == n_valid * run.config.model.z_dim


def test_logging_does_not_change_training(vae_run, tmp_path):
    cfg = zspace.load_config(None, [*TINY, "model.variational=true"])
    plain = zspace.train(cfg, run_dir=tmp_path / "plain", **QUIET)
    assert not (plain.path / "tb").exists()  # off by default
    logged = zspace.load_run(vae_run).history
    for a, b in zip(plain.history, logged, strict=True):
        assert {k: a[k] for k in ("total", "reco", "kl", "val_total")} == {
            k: b[k] for k in ("total", "reco", "kl", "val_total")
        }


def test_resume_turns_logging_on_and_off_and_redoes_epochs(tmp_path):
    run = tmp_path / "ae"
    extra = ["model.variational=false", "data.task=denoise", "data.noise_sigma=0.2"]
    zspace.train(zspace.load_config(None, [*TINY, *extra]), run_dir=run, **QUIET)
    assert not (run / "tb").exists()

    def resume(epochs: int, *, at: int | bool = True) -> EventAccumulator:
        zspace.train(run_dir=run, resume=at, overrides=[f"train.epochs={epochs}", LOG], **QUIET)
        acc = _events(run)
        history = zspace.load_run(run).history
        events = acc.Scalars("total")  # exactly one value per epoch, the history's
        assert [e.step for e in events] == list(range(1, epochs + 1))
        np.testing.assert_allclose([e.value for e in events], [r["total"] for r in history], 1e-6)
        return acc

    acc = resume(3)  # on from epoch 3: epochs 1-2 come from the history
    assert [e.step for e in acc.Images("reconstructions")] == [3]
    assert set(acc.Tags()["histograms"]) == {"radius"}  # an AE has no mu or logvar
    png = acc.Images("reconstructions")[0].encoded_image_string
    assert np.asarray(Image.open(io.BytesIO(png))).shape[0] == 2 * 3 * 66 + 2  # noisy row too
    acc = resume(4, at=2)  # redo epochs 3-4 from epoch 2: the old epoch 3 is purged
    assert [e.step for e in acc.Images("reconstructions")] == [3, 4]
    zspace.train(run_dir=run, resume=True, overrides=["train.epochs=5", "train.log=[]"], **QUIET)
    assert [e.step for e in _events(run).Scalars("total")] == [1, 2, 3, 4]
    acc = resume(6)  # the epoch trained without logging is filled in from the history
    assert [e.step for e in acc.Images("reconstructions")] == [3, 4, 6]


def test_missing_tensorboard_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import fails as if not installed
    cfg = zspace.load_config(None, [*TINY, LOG])
    with pytest.raises(zspace.ZspaceError, match=r"pip install 'zspace\[tensorboard\]'"):
        zspace.train(cfg, run_dir=tmp_path / "r", **QUIET)
    assert not (tmp_path / "r").exists()

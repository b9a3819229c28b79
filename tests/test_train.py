import html
import json
import pickle

import pytest
import torch
from conftest import copy_run

import zspace
from zspace.config import load_config
from zspace.core.errors import ZspaceError
from zspace.models.losses import vae_loss as real_vae_loss
from zspace.runs.checkpoint import load_checkpoint
from zspace.runs.folder import HISTORY_KEYS


class Payload:
    """Any class: a checkpoint holding one needs the full unpickler."""


QUIET = {"log": lambda _msg: None, "progress": False}


def _history_without_time(run):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in run.history]


def test_run_folder_history_and_api(tmp_path, tiny_overrides):
    cfg = load_config(None, tiny_overrides + ["model.fact=2.0", "model.fact_warmup_epochs=2"])
    run = zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)
    assert (run.path / "config.toml").is_file()
    meta = json.loads((run.path / "meta.json").read_text())
    assert meta["format"] == 1 and meta["input_shape"] == [1, 16, 16]
    assert meta["data"]["count"] == 1797 and meta["splits"] == {"train": 1617, "valid": 180}
    rows = run.history
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert set(HISTORY_KEYS) <= set(row)
        assert row["total"] == row["reco"] + row["kl"]
        assert row["val_total"] == row["val_reco"] + row["val_kl"]
    assert [r["fact"] for r in rows] == [1.0, 2.0]  # warm-up
    assert rows[0]["kl"] == pytest.approx(rows[0]["kl_raw"] * 1.0)
    assert rows[1]["kl"] == pytest.approx(rows[1]["kl_raw"] * 2.0)
    x = torch.rand(5, 1, 16, 16)
    z, mu, logvar = run.encode(x)
    assert z.shape == (5, 4) and mu.shape == (5, 4) and logvar.shape == (5, 4)
    images = run.decode(z)
    assert images.shape == (5, 1, 16, 16)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    loaded = zspace.load_run(run.path, checkpoint="last")
    assert not loaded.model.training and loaded.epoch == 2
    assert repr(loaded) == f"Run({str(run.path)!r}, vae z=4, epoch 2/2, last)"
    assert (
        repr(zspace.load_run(run.path, checkpoint=1))
        == f"Run({str(run.path)!r}, vae z=4, epoch 1/2)"
    )
    best = min(rows, key=lambda r: r["val_total"])
    summary = loaded.summary().splitlines()
    assert summary[0] == repr(loaded) and len(summary) == 4
    assert "VAE, z_dim 4, input 1x16x16, filters [8, 16]" in summary[1]
    assert "1797 images (train 1617, valid 180), 10 classes: 0, 1, 2" in summary[2]
    assert f"best val_total {best['val_total']:.6g} at epoch {best['epoch']}" in summary[3]
    assert loaded._repr_html_() == "<pre>" + html.escape(loaded.summary()) + "</pre>"
    expects = r"shape \(2, 3, 16, 16\): expected .* this model takes \(C, H, W\) = \(1, 16, 16\)"
    with pytest.raises(ZspaceError, match=expects):
        loaded.encode(torch.rand(2, 3, 16, 16))
    with pytest.raises(ZspaceError, match="not empty"):
        zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)


def test_same_seed_same_history(tmp_path, tiny_overrides):
    cfg = load_config(None, tiny_overrides + ["model.dropout=0.1"])
    a = zspace.train(cfg, run_dir=tmp_path / "a", **QUIET)
    b = zspace.train(cfg, run_dir=tmp_path / "b", **QUIET)
    assert _history_without_time(a) == _history_without_time(b)
    other = load_config(None, tiny_overrides + ["model.dropout=0.1", "seed=1"])
    c = zspace.train(other, run_dir=tmp_path / "c", **QUIET)
    assert _history_without_time(a) != _history_without_time(c)


def test_train_threads_hold_only_while_training(tmp_path, tiny_overrides):
    import torch

    before = torch.get_num_threads()
    seen = []

    from zspace.training import Callback

    class Spy(Callback):
        def on_epoch_end(self, trainer, row):
            seen.append(torch.get_num_threads())

    torch.set_num_threads(2)
    try:
        cfg = load_config(None, tiny_overrides + ["train.epochs=1", "train.threads=1"])
        zspace.train(cfg, run_dir=tmp_path / "a", callbacks=[Spy()], **QUIET)
        assert seen == [1]  # the config's count while training
        assert torch.get_num_threads() == 2  # the caller's count afterwards (a notebook's)
    finally:
        torch.set_num_threads(before)


def test_resume_equals_straight_run_and_retention(tmp_path, tiny_overrides):
    base = tiny_overrides + [
        "model.dropout=0.1",
        "train.keep_checkpoints=2",
        "train.lr_decay_every=1",
        "train.lr_decay_factor=0.5",
    ]
    straight = zspace.train(
        load_config(None, base + ["train.epochs=4"]), run_dir=tmp_path / "straight", **QUIET
    )
    zspace.train(
        load_config(None, base + ["train.epochs=2"]), run_dir=tmp_path / "resumed", **QUIET
    )
    resumed = zspace.train(
        run_dir=tmp_path / "resumed", resume=True, overrides=["train.epochs=4"], **QUIET
    )
    assert _history_without_time(resumed) == _history_without_time(straight)
    assert [r["lr"] for r in straight.history] == [5e-4, 2.5e-4, 1.25e-4, 6.25e-5]
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    names = sorted(p.name for p in (tmp_path / "straight" / "checkpoints").iterdir())
    assert names == ["best.pt", "epoch-0003.pt", "epoch-0004.pt", "last.pt"]

    # resuming from an earlier epoch drops the later history and recomputes it identically
    again = zspace.train(run_dir=tmp_path / "straight", resume=3, **QUIET)
    assert _history_without_time(again) == _history_without_time(straight)
    with pytest.raises(ZspaceError, match=r"no checkpoint for epoch 1 .*epochs kept: 3, 4"):
        zspace.train(run_dir=tmp_path / "straight", resume=1, **QUIET)
    with pytest.raises(ZspaceError, match="cannot resume .* with a changed model.z_dim"):
        zspace.train(
            run_dir=tmp_path / "straight",
            resume=True,
            overrides=["model.z_dim=5", "train.epochs=6"],
            **QUIET,
        )
    with pytest.raises(ZspaceError, match="already has 4 epochs"):
        zspace.train(run_dir=tmp_path / "straight", resume=True, **QUIET)


def test_nan_stops_training_and_keeps_last_checkpoint(tmp_path, tiny_overrides, monkeypatch):
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real_vae_loss(*args, **kwargs)
        calls["n"] += 1
        # epoch 1 has 13 training + 2 validation batches; poison epoch 2, batch 3
        if calls["n"] == 15 + 3:
            return type(terms)(
                terms.total * float("nan"), terms.reco * float("nan"), terms.kl, terms.kl_raw
            )
        return terms

    monkeypatch.setattr("zspace.training.trainer.vae_loss", poisoned)
    cfg = load_config(None, tiny_overrides + ["train.epochs=3"])
    with pytest.raises(ZspaceError) as info:
        zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)
    assert str(info.value).startswith(
        "non-finite loss (NaN or inf) in epoch 2, training batch 3: training stopped"
    )
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert len(zspace.load_run(tmp_path / "run").history) == 1


def test_pickled_checkpoint_is_refused(tmp_path, tiny_runs):
    run = zspace.load_run(copy_run(tiny_runs["vae"], tmp_path / "run"))
    evil = run.path / "checkpoints" / "best.pt"

    evil.write_bytes(pickle.dumps({"format": 1, "model": Payload()}))  # a raw pickle
    with pytest.raises(ZspaceError, match="unreadable or corrupt|refused"):
        zspace.load_run(run.path)
    obj = run.path / "checkpoints" / "last.pt"
    torch.save({"format": 1, "epoch": 1, "model": Payload()}, obj)
    with pytest.raises(ZspaceError, match="holds pickled Python objects.*refused"):
        zspace.load_run(run.path, checkpoint="last")
    (run.path / "checkpoints" / "epoch-0001.pt").write_bytes(b"garbage")
    with pytest.raises(ZspaceError, match="unreadable or corrupt"):
        zspace.load_run(run.path, checkpoint=1)


def test_bad_config_leaves_no_run_folder(tmp_path):
    cfg = load_config(None, ["data.image_size=28", "model.encoder_strides=[2, 2, 2]"])
    with pytest.raises(ZspaceError, match="does not divide the size 7"):
        zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)
    assert not (tmp_path / "run").exists()


def test_bf16_refused_without_native_support(tmp_path, tiny_overrides, monkeypatch):
    monkeypatch.setattr("zspace.core.device.cpu_flags", lambda: {"avx2"})
    cfg = load_config(None, tiny_overrides + ["train.precision=bf16"])
    with pytest.raises(ZspaceError, match="no native BF16"):
        zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)
    assert not (tmp_path / "run").exists()


def test_bf16_tracks_fp32(tmp_path, tiny_overrides, monkeypatch):
    # Force the bf16 path (emulated where the CPU lacks BF16): the numbers must still agree.
    monkeypatch.setattr("zspace.core.device.native_bf16", lambda device: True)
    fp32 = zspace.train(load_config(None, tiny_overrides), run_dir=tmp_path / "a", **QUIET)
    bf16 = zspace.train(
        load_config(None, tiny_overrides + ["train.precision=bf16"]),
        run_dir=tmp_path / "b",
        **QUIET,
    )
    for a, b in zip(fp32.history, bf16.history, strict=True):
        assert b["total"] == pytest.approx(a["total"], rel=0.03)


def test_saved_config_reproduces_the_run(tmp_path, tiny_runs):
    first = zspace.load_run(tiny_runs["vae"])
    again = zspace.train(first.path / "config.toml", run_dir=tmp_path / "b", **QUIET)
    assert _history_without_time(again) == _history_without_time(first)


def test_device_auto_prefers_cuda_then_mps(monkeypatch):
    from zspace.core.device import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto").type == "cpu"
    with pytest.raises(ZspaceError, match="no CUDA device is available"):
        pick_device("cuda")

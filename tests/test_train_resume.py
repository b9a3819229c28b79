"""Resume and crash-window guarantees of the training loop (issues 12 and 18)."""

import json

import pytest
import torch

import zspace
from zspace.config import load_config
from zspace.core.errors import ZspaceError
from zspace.runs.checkpoint import load_checkpoint
from zspace.training import AutoencoderObjective, Callback
from zspace.training import loop as loop_module

QUIET = {"log": lambda _msg: None, "progress": False}


def _rows(run_dir):
    rows = [json.loads(x) for x in (run_dir / "history.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _weights(path):
    return load_checkpoint(path)["model"]


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_to_an_earlier_epoch_rebuilds_best(tmp_path, tiny_overrides, monkeypatch):
    """Validation 10, 12, 5: best is epoch 3. Resumed to epoch 1 and trained to 2, the
    history holds 1-2 and best.pt (what load_run opens) must be epoch 1, not 3."""
    scripted = {1: 10.0, 2: 12.0, 3: 5.0}
    real_row = AutoencoderObjective.row

    def row(self, epoch, train, valid):
        out = real_row(self, epoch, train, valid)
        out["val_total"] = scripted[epoch]
        return out

    monkeypatch.setattr(AutoencoderObjective, "row", row)
    cfg = load_config(None, tiny_overrides + ["train.epochs=3"])
    run = tmp_path / "run"
    zspace.train(cfg, run_dir=run, **QUIET)
    assert load_checkpoint(run / "checkpoints" / "best.pt")["epoch"] == 3
    again = zspace.train(run_dir=run, resume=1, overrides=["train.epochs=2"], **QUIET)
    assert [r["epoch"] for r in again.history] == [1, 2]
    assert load_checkpoint(run / "checkpoints" / "best.pt")["epoch"] == 1
    assert zspace.load_run(run).epoch == 1
    assert _same(
        _weights(run / "checkpoints" / "best.pt"), _weights(run / "checkpoints" / "epoch-0001.pt")
    )


def test_resume_with_a_config_object_applies_overrides(tmp_path, tiny_overrides):
    cfg = load_config(None, tiny_overrides + ["train.epochs=1"])
    run = tmp_path / "run"
    zspace.train(cfg, run_dir=run, **QUIET)
    resumed = zspace.train(cfg, run_dir=run, resume=True, overrides=["train.epochs=2"], **QUIET)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    fresh = zspace.train(cfg, run_dir=tmp_path / "b", overrides=["train.epochs=2"], **QUIET)
    assert fresh.config.train.epochs == 2


def test_hand_edited_config_is_caught_against_the_checkpoint(tmp_path, tiny_overrides):
    cfg = load_config(None, tiny_overrides + ["train.epochs=1", "model.fact=1.0"])
    run = tmp_path / "run"
    zspace.train(cfg, run_dir=run, **QUIET)
    path = run / "config.toml"
    path.write_text(path.read_text().replace("fact = 1.0", "fact = 0.5"))
    with pytest.raises(
        ZspaceError, match=r"changed model.fact \(1.0 in the checkpoint, 0.5 in config.toml\)"
    ):
        zspace.train(run_dir=run, resume=True, overrides=["train.epochs=2"], **QUIET)


@pytest.mark.parametrize("window", ["after-epoch-file", "after-best", "after-checkpoints"])
def test_a_crash_in_any_write_of_an_epoch_still_resumes(
    tmp_path, tiny_overrides, monkeypatch, window
):
    """Kill the write sequence of epoch 2 at each step; --resume then finishes the run
    with the same weights and history as an uninterrupted one."""
    base = tiny_overrides + ["train.epochs=3", "model.dropout=0.1"]
    straight = tmp_path / "straight"
    zspace.train(load_config(None, base), run_dir=straight, **QUIET)

    class Killed(BaseException):
        pass

    import zspace.runs.checkpoint as ckpt
    from zspace.core import fileio

    real_write = fileio.atomic_write_bytes
    real_history = loop_module.write_history
    calls = {"n": 0}

    def write_bytes(path, data):
        name = path.name
        if calls["epoch"] == 2 and (
            (window == "after-epoch-file" and name in ("best.pt", "last.pt"))
            or (window == "after-best" and name == "last.pt")
        ):
            raise Killed
        return real_write(path, data)

    def history(path, rows):
        if window == "after-checkpoints" and rows and rows[-1]["epoch"] == 2:
            raise Killed
        return real_history(path, rows)

    real_save = ckpt.save_checkpoint

    def save(folder, state, *, epoch, keep, is_best):
        calls["epoch"] = epoch
        return real_save(folder, state, epoch=epoch, keep=keep, is_best=True)

    monkeypatch.setattr(ckpt, "atomic_write_bytes", write_bytes)
    monkeypatch.setattr(loop_module, "save_checkpoint", save)
    monkeypatch.setattr(loop_module, "write_history", history)
    calls["epoch"] = 0
    run = tmp_path / "run"
    with pytest.raises(Killed):
        zspace.train(load_config(None, base), run_dir=run, **QUIET)
    monkeypatch.undo()
    resumed = zspace.train(run_dir=run, resume=True, **QUIET)
    assert _rows(run) == _rows(straight)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert _same(
        _weights(run / "checkpoints" / "last.pt"), _weights(straight / "checkpoints" / "last.pt")
    )


def test_a_run_failing_in_its_first_epoch_leaves_nothing(tmp_path, tiny_overrides, monkeypatch):
    def boom(*_a, **_k):
        raise ZspaceError("stop")

    monkeypatch.setattr(AutoencoderObjective, "__call__", boom)
    with pytest.raises(ZspaceError, match="stop"):
        zspace.train(load_config(None, tiny_overrides), run_dir=tmp_path / "run", **QUIET)
    assert not (tmp_path / "run").exists()


def test_callbacks_see_each_epoch_and_a_fixed_batch(tmp_path, tiny_overrides):
    seen = []

    class Spy(Callback):
        def on_train_start(self, trainer):
            seen.append(("start", trainer.is_main, trainer.run_dir.name))

        def on_epoch_end(self, trainer, row):
            x, target = trainer.fixed_batch(4)
            seen.append(("epoch", row["epoch"], tuple(x.shape), float(target.sum())))

        def on_train_end(self, trainer):
            seen.append(("end", len(trainer.history)))

    zspace.train(
        load_config(None, tiny_overrides), run_dir=tmp_path / "run", callbacks=[Spy()], **QUIET
    )
    assert seen[0] == ("start", True, "run") and seen[-1] == ("end", 2)
    (_, e1, shape, s1), (_, e2, _, s2) = seen[1:3]
    assert (e1, e2) == (1, 2) and shape == (4, 1, 16, 16) and s1 == s2 > 0


def test_new_cpu_runs_use_fused_adam_and_older_runs_resume_exactly(
    tmp_path, tiny_overrides, monkeypatch
):
    """A new CPU run's Adam is the fused kernel; a run begun before (unfused Adam in its
    checkpoint) resumes unfused and ends bit-equal to the same run never interrupted."""
    real_adam = torch.optim.Adam

    def older_adam(params, lr, fused=None):  # what the trainer built before
        return real_adam(params, lr=lr)

    def fused_in(run):
        state = load_checkpoint(run / "checkpoints" / "last.pt")["optimizer"]
        return [group["fused"] for group in state["param_groups"]]

    cfg = load_config(None, tiny_overrides + ["train.epochs=2"])
    new = tmp_path / "new"
    zspace.train(cfg, run_dir=new, **QUIET)
    assert fused_in(new) == [True]
    monkeypatch.setattr(torch.optim, "Adam", older_adam)
    whole, part = tmp_path / "whole", tmp_path / "part"
    zspace.train(cfg, run_dir=whole, **QUIET)
    zspace.train(cfg, run_dir=part, overrides=["train.epochs=1"], **QUIET)
    monkeypatch.undo()
    zspace.train(run_dir=part, resume=True, overrides=["train.epochs=2"], **QUIET)
    assert fused_in(whole) == fused_in(part) == [None]
    assert _same(
        _weights(part / "checkpoints" / "last.pt"), _weights(whole / "checkpoints" / "last.pt")
    )
    assert not _same(
        _weights(new / "checkpoints" / "last.pt"), _weights(whole / "checkpoints" / "last.pt")
    )

"""Mixed precision (issue 14) without a GPU: fp16 (autocast + GradScaler) runs on the
CPU once its CUDA-only check is monkeypatched away, bf16 likewise; TF32 is chosen
from a faked compute capability. tests/test_cuda.py runs the same paths on a GPU."""

import pytest
import torch

import zspace
from zspace.cli.main import main
from zspace.config import load_config
from zspace.core.device import autocast, set_tf32
from zspace.core.errors import ZspaceError
from zspace.runs.checkpoint import load_checkpoint

QUIET = {"log": lambda _msg: None, "progress": False}


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    monkeypatch.setattr("zspace.core.device.fp16_supported", lambda device: True)


def _rows(run):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in run.history]


def test_fp16_is_refused_on_cpu_with_one_line(tmp_path, tiny_overrides, capsys):
    on_cpu = tiny_overrides + ["train.precision=fp16", "train.device=cpu"]
    cfg = load_config(None, on_cpu)
    with pytest.raises(ZspaceError, match=r"train.precision = 'fp16' needs a CUDA device"):
        zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)
    assert not (tmp_path / "run").exists()
    sets = [a for o in on_cpu for a in ("--set", o)]
    assert main(["train", "--run-dir", str(tmp_path / "run"), *sets]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("zspace: error: train.precision = 'fp16' needs")
    with pytest.raises(ZspaceError, match="expected one of fp32, bf16, fp16"):
        load_config(None, ["train.precision=fp8"])


def test_fp16_counts_skipped_steps_and_checkpoints_the_scaler(
    tmp_path, tiny_overrides, fp16_on_cpu
):
    """GradScaler starts at 2**16; the first steps overflow in fp16, are skipped and
    halve the scale. Every skip must show in the history and in the optimiser's own
    step count, and the scale must be in the checkpoint."""
    run = zspace.train(
        load_config(None, tiny_overrides + ["train.precision=fp16"]),
        run_dir=tmp_path / "fp16",
        **QUIET,
    )
    skipped = [r["skipped_steps"] for r in run.history]
    assert skipped[0] >= 1 and all(isinstance(s, int) for s in skipped)
    state = load_checkpoint(run.path / "checkpoints" / "last.pt")
    steps = 2 * 13  # 1617 training images in batches of 128
    assert int(state["optimizer"]["state"][0]["step"]) == steps - sum(skipped)
    assert state["scaler"]["scale"] == 2.0**16 * 0.5 ** sum(skipped)
    for row in run.history:
        assert row["total"] == row["reco"] + row["kl"]
    fp32 = zspace.train(load_config(None, tiny_overrides), run_dir=tmp_path / "fp32", **QUIET)
    for a, b in zip(fp32.history, run.history, strict=True):
        assert b["total"] == pytest.approx(a["total"], rel=0.03)
    assert "skipped_steps" not in fp32.history[0]


def test_fp16_resume_restores_the_scaler(tmp_path, tiny_overrides, fp16_on_cpu):
    base = tiny_overrides + ["train.precision=fp16", "model.dropout=0.1"]
    straight = zspace.train(load_config(None, base), run_dir=tmp_path / "straight", **QUIET)
    zspace.train(load_config(None, base + ["train.epochs=1"]), run_dir=tmp_path / "r", **QUIET)
    first = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["scaler"]
    assert first["scale"] < 2.0**16  # the run skipped steps before it stopped
    resumed = zspace.train(
        run_dir=tmp_path / "r", resume=True, overrides=["train.epochs=2"], **QUIET
    )
    assert _rows(resumed) == _rows(straight)
    a = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    assert a["scaler"] == b["scaler"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_fp16_nan_loss_still_stops_training(tmp_path, tiny_overrides, fp16_on_cpu, monkeypatch):
    """The scaler skips steps with inf/NaN gradients; a non-finite loss is not one of
    them: it stops training as in fp32, keeping the last good checkpoint."""
    from zspace.models.losses import vae_loss as real

    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 15 + 2:
            return type(terms)(
                terms.total * float("inf"), terms.reco * float("inf"), *([terms.kl] * 2)
            )
        return terms

    monkeypatch.setattr("zspace.training.trainer.vae_loss", poisoned)
    cfg = load_config(None, tiny_overrides + ["train.precision=fp16", "train.epochs=3"])
    with pytest.raises(ZspaceError, match="non-finite loss .* epoch 2, training batch 2"):
        zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["epoch"] == 1


def test_autocast_dtypes():
    cpu = torch.device("cpu")
    x = torch.rand(2, 4)
    w = torch.rand(4, 3)
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        with autocast(precision, cpu):
            assert (x @ w).dtype == dtype
    with autocast("fp16", cpu):
        assert (x @ w).dtype == torch.float16


def test_tf32_only_where_the_gpu_has_it(monkeypatch):
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    saved = matmul.fp32_precision, conv.fp32_precision
    cuda = torch.device("cuda", 0)
    try:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
        assert set_tf32(cuda, True) is True
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
        assert set_tf32(cuda, False) is False  # train.tf32 = false: IEEE fp32
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
        assert set_tf32(cuda, True) is False  # Turing: no TF32 tensor cores
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
        assert set_tf32(torch.device("cpu"), True) is False
    finally:
        matmul.fp32_precision, conv.fp32_precision = saved
    assert load_config(None, ["train.tf32=false"]).train.tf32 is False
    with pytest.raises(ZspaceError, match="expected true or false"):
        load_config(None, ["train.tf32=1"])

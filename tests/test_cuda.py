"""The CUDA paths of issue 14 on a real GPU: fp32 with TF32, bf16, fp16 with its
GradScaler, the DDP wrapper on NCCL, and two GPUs against one where there are two.

Marked ``cuda``: skipped on machines without a GPU (tests/conftest.py);
``benchmarks/gpu_check.sh`` runs them. GPU kernels (cuDNN's convolution backward)
are not bitwise deterministic, so runs are compared to 1e-4, not bit for bit.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zspace
from zspace.config import load_config
from zspace.runs.checkpoint import load_checkpoint

pytestmark = pytest.mark.cuda

QUIET = {"log": lambda _msg: None, "progress": False}
CLOSE = 1e-4


@pytest.fixture
def tiny_overrides(tiny_overrides):
    return [*tiny_overrides, "train.device=cuda"]


def _rows(run_dir):
    rows = [json.loads(x) for x in (Path(run_dir) / "history.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _assert_rows_close(a, b, rel=CLOSE):
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        for k, v in rb.items():
            if isinstance(v, float):
                assert ra[k] == pytest.approx(v, rel=rel, abs=1e-9), (ra["epoch"], k)


def _assert_weights_close(a, b, rel=CLOSE):
    for k in b:
        x, y = a[k].double(), b[k].double()
        if y.norm() > 0:
            assert float((x - y).norm() / y.norm()) <= rel, k


def test_cuda_precisions_train_and_checkpoint(tmp_path, tiny_overrides):
    fp32 = zspace.train(load_config(None, tiny_overrides), run_dir=tmp_path / "fp32", **QUIET)
    assert fp32.device.type == "cuda"
    if torch.cuda.get_device_capability()[0] >= 8:
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    precisions = ["fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    for precision in precisions:
        run = zspace.train(
            load_config(None, tiny_overrides + [f"train.precision={precision}"]),
            run_dir=tmp_path / precision,
            **QUIET,
        )
        for a, b in zip(fp32.history, run.history, strict=True):
            assert b["total"] == pytest.approx(a["total"], rel=0.03)
            assert b["total"] == b["reco"] + b["kl"]
        state = load_checkpoint(run.path / "checkpoints" / "last.pt")
        if precision == "fp16":
            skipped = sum(r["skipped_steps"] for r in run.history)
            assert int(state["optimizer"]["state"][0]["step"]) == 2 * 13 - skipped
            assert state["scaler"]["scale"] == 2.0**16 * 0.5**skipped
        else:
            assert "scaler" not in state and "skipped_steps" not in run.history[0]


def test_cuda_fp16_resume_restores_the_scaler(tmp_path, tiny_overrides):
    base = tiny_overrides + ["train.precision=fp16"]
    straight = zspace.train(load_config(None, base), run_dir=tmp_path / "straight", **QUIET)
    zspace.train(load_config(None, base + ["train.epochs=1"]), run_dir=tmp_path / "r", **QUIET)
    zspace.train(run_dir=tmp_path / "r", resume=True, overrides=["train.epochs=2"], **QUIET)
    _assert_rows_close(_rows(tmp_path / "r"), _rows(straight.path))
    a = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    b = load_checkpoint(straight.path / "checkpoints" / "last.pt")
    assert a["scaler"] == b["scaler"]
    _assert_weights_close(a["model"], b["model"])


def _python(script: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
        cwd=cwd, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]


def test_cuda_ddp_wrapper_on_nccl_in_a_group_of_one(tmp_path, tiny_overrides):
    """A caller-opened process group of one (NCCL for CUDA tensors): the model is
    wrapped in DDP with SyncBatchNorm and must train as the plain run does."""
    cfg = tiny_overrides + ["model.batch_norm=true", "data.valid_fraction=0"]
    ddp = tmp_path / "ddp"
    _python(
        "import torch.distributed as dist, zspace\n"
        "from zspace.config import load_config\n"
        "from ddp_launch import free_port\n"
        "import os\n"
        "os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()))\n"
        "dist.init_process_group('cpu:gloo,cuda:nccl', rank=0, world_size=1)\n"
        f"run = zspace.train(load_config(None, {cfg!r}), run_dir={str(ddp)!r}, progress=False)\n"
        "assert run.device.type == 'cuda'\n"
        "dist.destroy_process_group()\n",
        Path(__file__).parent,
    )
    plain = zspace.train(load_config(None, cfg), run_dir=tmp_path / "plain", **QUIET)
    _assert_rows_close(_rows(ddp), _rows(plain.path))
    state = load_checkpoint(ddp / "checkpoints" / "last.pt")
    assert (
        state["model"].keys()
        == load_checkpoint(plain.path / "checkpoints" / "last.pt")["model"].keys()
    )


def test_cuda_two_gpus_equal_one(tmp_path, tiny_overrides):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA GPUs")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None
    for name, extra in {
        "vae": ["train.batch_size=808", "data.task=denoise", "data.noise_sigma=0.2"],
        "bn": ["model.batch_norm=true", "data.valid_fraction=0"],
    }.items():
        cfg = tiny_overrides + extra
        ddp = tmp_path / name
        sets = [a for o in cfg for a in ("--set", o)]
        done = subprocess.run(
            [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "zspace", "train",
             "--no-progress", "--run-dir", str(ddp), *sets],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
        assert "processes: 2" in done.stdout
        one = zspace.train(load_config(None, cfg), run_dir=tmp_path / f"{name}-one", **QUIET)
        _assert_rows_close(_rows(ddp), _rows(one.path))
        if name == "vae":
            _assert_weights_close(
                load_checkpoint(ddp / "checkpoints" / "last.pt")["model"],
                load_checkpoint(one.path / "checkpoints" / "last.pt")["model"],
            )

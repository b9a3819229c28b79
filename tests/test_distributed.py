"""DDP on CPU (issue 14): two gloo processes against one process.

The processes are started by ``ddp_launch`` (forked, with torchrun's environment) so
each test costs seconds; ``test_torchrun_end_to_end`` runs the real launcher once.
Equality is to float tolerance: the per-process sums are added in a different order
than one process adds them.
"""

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ddp_launch import launch, run

import zspace
from zspace.config import load_config
from zspace.data.loader import part_bounds
from zspace.runs.checkpoint import load_checkpoint

QUIET = {"log": lambda _msg: None, "progress": False}
REL = 1e-5


@pytest.fixture
def tiny_overrides(tiny_overrides):
    """gloo on CPU even where a GPU exists (forked children must not touch CUDA)."""
    return [*tiny_overrides, "train.device=cpu"]


def _argv(run_dir, overrides, *extra):
    sets = [a for o in overrides for a in ("--set", o)]
    return ["train", "--no-progress", "--run-dir", str(run_dir), *sets, *extra]


def _rows(run_dir):
    rows = [json.loads(x) for x in (Path(run_dir) / "history.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _assert_rows_close(a, b, rel=REL):
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k, v in rb.items():
            if isinstance(v, float):
                assert ra[k] == pytest.approx(v, rel=rel, abs=1e-12), (ra["epoch"], k)
            else:
                assert ra[k] == v, (ra["epoch"], k)
        if ra.get("total") is not None:
            assert ra["total"] == ra["reco"] + ra["kl"]


def _weights(run_dir):
    return load_checkpoint(Path(run_dir) / "checkpoints" / "last.pt")["model"]


def _rel_error(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm()) if b.norm() > 0 else float(a.norm())


def _assert_weights_close(a, b, skip=()):
    assert a.keys() == b.keys()
    errors = {k: _rel_error(a[k], b[k]) for k in a if k not in skip}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= REL, (worst, errors[worst])


def _audit_writes(folder: Path, log_path: Path, rank: int, audited: int = 1):
    """On rank ``audited``: an audit hook that logs every write, rename, mkdir or
    delete under ``folder``."""
    if rank != audited:
        return
    log = open(log_path, "w")  # noqa: SIM115 - opened before the hook, never audited
    root = str(folder)
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if not (set(mode or "") & set("wax+") or (flags or 0) & writing):
                return
            paths = [path]
        elif event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.copyfile"):
            paths = list(args[:2]) if event in ("os.rename", "shutil.copyfile") else [args[0]]
        else:
            return
        for p in paths:
            if isinstance(p, (str, os.PathLike)) and os.fspath(p).startswith(root):
                log.write(f"{event} {os.fspath(p)}\n")
                log.flush()

    sys.addaudithook(hook)


def test_part_bounds_split_evenly():
    assert [part_bounds(81, r, 2) for r in range(2)] == [(0, 41), (41, 81)]
    assert [part_bounds(1, r, 2) for r in range(2)] == [(0, 1), (1, 1)]
    assert [part_bounds(10, r, 4) for r in range(4)] == [(0, 3), (3, 6), (6, 8), (8, 10)]
    for total in range(0, 30):
        for world in (1, 2, 3, 7):
            parts = [part_bounds(total, r, world) for r in range(world)]
            sizes = [b - a for a, b in parts]
            assert parts[0][0] == 0 and parts[-1][1] == total
            assert all(parts[i][1] == parts[i + 1][0] for i in range(world - 1))
            assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("task", ["reconstruct", "denoise"])
def test_the_parts_of_three_processes_make_the_one_process_batches(streamed, task):
    """Resident or streamed, clean or noisy: rank r's batches are rows
    part_bounds(...) of the one-process batches, inputs (noise) and targets alike."""
    from zspace.config import DataConfig
    from zspace.data import BatchLoader

    rng = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (61, 4, 4, 3), dtype=torch.uint8, generator=rng).numpy()
    cfg = DataConfig(task=task, noise_sigma=0.3, drop_fraction=0.2 if task == "denoise" else 0)
    index = torch.randperm(61, generator=rng)[:53].numpy()
    budget = {"max_bytes": 0} if streamed else {}

    def batches(rank, world, shuffle):
        loader = BatchLoader(
            images, index, 16, cfg, seed=4, shuffle=shuffle, rank=rank, world_size=world,
            **budget,
        )  # fmt: skip
        assert len(loader) == 4 and loader.count == 53
        return list(loader.epoch(2)), list(loader.parts())

    for shuffle in (True, False):
        whole, _ = batches(0, 1, shuffle)
        parts = [batches(r, 3, shuffle) for r in range(3)]
        for i, (x, target) in enumerate(whole):
            assert len(x) == (16 if i < 3 else 5)
            for rank, (got, bounds) in enumerate(parts):
                first, start, stop, total = bounds[i]
                assert (first, total) == (16 * i, len(x))
                assert (start, stop) == part_bounds(len(x), rank, 3)
                assert torch.equal(got[i][0], x[start:stop])
                assert torch.equal(got[i][1], target[start:stop])
    with pytest.raises(ValueError, match="rank 2 is not in a world of 2"):
        BatchLoader(images, index, 16, cfg, rank=2, world_size=2)


def test_vae_on_two_processes_equals_one_and_only_rank_0_writes(tmp_path, tiny_overrides):
    """Global batch 808 of 1617 training images: batches of 808, 808 and 1, so rank 1
    gets nothing of the last one; 180 validation images in one batch split 90/90;
    denoising noise and dropped pixels must be the global batch's, eps too."""
    cfg = tiny_overrides + [
        "train.batch_size=808", "data.task=denoise", "data.noise_sigma=0.2",
        "data.drop_fraction=0.1", "model.fact=2.0",
    ]  # fmt: skip
    ddp = tmp_path / "ddp"
    ranks = run(
        _argv(ddp, cfg),
        tmp_path / "launch",
        prepare=functools.partial(_audit_writes, tmp_path, tmp_path / "audit1"),
    )
    assert [r.code for r in ranks] == [0, 0], ranks[0].err + ranks[1].err
    one = zspace.train(load_config(None, cfg), run_dir=tmp_path / "one", **QUIET)
    _assert_rows_close(_rows(ddp), _rows(one.path))
    _assert_weights_close(_weights(ddp), _weights(one.path))

    # rank 1 wrote nothing at all, printed nothing; rank 0 logged the run once
    assert (tmp_path / "audit1").read_text() == ""
    assert ranks[1].out == "" and ranks[1].err == ""
    assert ranks[0].out.count("run folder:") == 2 and ranks[0].out.count("epoch 2/2") == 1
    assert "processes: 2 (DDP, global batch 808)" in ranks[0].out
    assert not any(any((tmp_path / "launch" / f"rank{r}" / "cwd").iterdir()) for r in (0, 1))
    listing = sorted(p.relative_to(ddp).as_posix() for p in ddp.rglob("*"))
    assert listing == sorted(p.relative_to(one.path).as_posix() for p in one.path.rglob("*"))
    assert json.loads((ddp / "meta.json").read_text())["processes"] == 2


def test_ae_with_batch_norm_on_two_processes_equals_one(tmp_path, tiny_overrides, monkeypatch):
    """Batch norm over the global batch (GlooSyncBatchNorm on CPU); 1797 images in
    batches of 128 leave 5 for the last one, split 3/2.

    The training history must agree to 1e-5. The weights of a batch-norm net under
    Adam cannot: the biases of the convolutions feeding a batch norm have a true
    gradient of 0, Adam turns its float noise into lr-sized steps, and that walk
    spreads to every weight. One process with the rows of each batch merely
    reordered (streamed instead of resident: the same batches, another summation
    order) moves them as much, so that run is the yardstick: the median tensor must
    move within 5x of that reordering's change, and every tensor within 1e-5 of the
    one-process run or within 100x of the reordering's change.
    No validation split: eval-mode numbers inherit the walk of the running means.
    """
    cfg = tiny_overrides + ["model.variational=false", "model.batch_norm=true"]
    cfg += ["data.valid_fraction=0"]
    ddp = tmp_path / "ddp"
    ranks = run(_argv(ddp, cfg), tmp_path / "launch")
    assert [r.code for r in ranks] == [0, 0], ranks[0].err + ranks[1].err
    one = zspace.train(load_config(None, cfg), run_dir=tmp_path / "one", **QUIET)
    monkeypatch.setattr("zspace.data.loader.memory_budget", lambda device: 0)
    reordered = zspace.train(load_config(None, cfg), run_dir=tmp_path / "reordered", **QUIET)
    monkeypatch.undo()
    rows = _rows(ddp)
    assert rows[0]["val_total"] is None
    _assert_rows_close(rows, _rows(one.path))
    a, b, c = _weights(ddp), _weights(one.path), _weights(reordered.path)
    assert a.keys() == b.keys() == c.keys()
    assert {type(m).__name__ for m in reordered.model.modules()} >= {"BatchNorm2d"}
    # typically within 1-3x of the reordering's change; a tensor whose reordered change
    # happens to be tiny (seen: 25x below its DDP change on an AVX-512 CPU) gets 100x
    ratios = []
    for name in a:
        floor, err = _rel_error(c[name], b[name]), _rel_error(a[name], b[name])
        assert err <= max(REL, 100 * floor), (name, err, floor)
        if floor > REL:
            ratios.append(err / floor)
    assert float(np.median(ratios)) <= 5, sorted(ratios)
    # the walk is real (else the yardstick would be vacuous), and data-driven tensors
    # such as the running variances stay close
    assert _rel_error(c["encoder.convs.0.0.bias"], b["encoder.convs.0.0.bias"]) > 0.1
    assert _rel_error(a["encoder.convs.0.1.running_var"], b["encoder.convs.0.1.running_var"]) < 1e-3
    assert torch.equal(a["encoder.convs.0.1.num_batches_tracked"], torch.tensor(2 * 15))


def _killed_after(epochs, rank, rank_only=None):
    """The trainer's test hook in this child: SIGKILL itself after writing ``epochs``."""
    if rank_only is None or rank == rank_only:
        os.environ["ZSPACE_TEST_KILL_AFTER_EPOCHS"] = str(epochs)


def test_killed_ddp_run_resumes_the_same_history(tmp_path, tiny_overrides):
    """SIGKILL both processes once epoch 2 is written (the trainer's test hook), resume:
    history and weights equal an uninterrupted DDP run bit for bit, dropout included
    (rank 1's RNG stream is in the checkpoint)."""
    cfg = tiny_overrides + ["model.dropout=0.1", "train.batch_size=256"]
    killed = tmp_path / "killed"
    job = launch(_argv(killed, cfg + ["train.epochs=100"]), tmp_path / "launch1",
                 prepare=functools.partial(_killed_after, 2))  # fmt: skip
    ranks = job.wait()
    assert [r.code for r in ranks] == [-9, -9], ranks[0].err + ranks[1].err
    k = int(load_checkpoint(killed / "checkpoints" / "last.pt")["epoch"])
    assert 2 <= k < 100
    before = _rows(killed)[:k]
    resumed = run(_argv(killed, [f"train.epochs={k + 1}"], "--resume"), tmp_path / "launch2")
    assert [r.code for r in resumed] == [0, 0], resumed[0].err + resumed[1].err
    assert f"resuming {killed} from epoch {k}" in resumed[0].out
    straight = tmp_path / "straight"
    ranks = run(_argv(straight, cfg + [f"train.epochs={k + 1}"]), tmp_path / "launch3")
    assert [r.code for r in ranks] == [0, 0]
    rows = _rows(killed)
    assert rows[:k] == before and rows == _rows(straight)
    a, b = _weights(killed), _weights(straight)
    assert all(torch.equal(a[n], b[n]) for n in a)
    state = load_checkpoint(killed / "checkpoints" / "last.pt")
    assert len(state["rng_ranks"]) == 1  # rank 1's RNG beside rank 0's


def test_a_one_process_run_resumes_on_two_and_back(tmp_path, tiny_overrides):
    """The number of processes may change on resume: 1, then 2, then 1 again give the
    numbers of one uninterrupted process."""
    cfg = tiny_overrides + ["train.epochs=3"]
    run_dir = tmp_path / "run"
    zspace.train(load_config(None, cfg), run_dir=run_dir, overrides=["train.epochs=1"], **QUIET)
    ranks = run(_argv(run_dir, ["train.epochs=2"], "--resume"), tmp_path / "launch")
    assert [r.code for r in ranks] == [0, 0], ranks[0].err + ranks[1].err
    zspace.train(run_dir=run_dir, resume=True, overrides=["train.epochs=3"], **QUIET)
    straight = zspace.train(load_config(None, cfg), run_dir=tmp_path / "straight", **QUIET)
    _assert_rows_close(_rows(run_dir), _rows(straight.path))
    _assert_weights_close(_weights(run_dir), _weights(straight.path))


def test_a_killed_peer_ends_the_others_with_one_line(tmp_path, tiny_overrides):
    """A process that dies between agreement points (rank 1, killed by the trainer's
    test hook after epoch 1) cannot say why; the survivor says it lost contact, once,
    instead of a gloo traceback, and exits."""
    run_dir = tmp_path / "run"
    job = launch(_argv(run_dir, tiny_overrides + ["train.epochs=100"]), tmp_path / "launch",
                 prepare=functools.partial(_killed_after, 1, rank_only=1))  # fmt: skip
    ranks = job.wait(timeout=120)
    assert ranks[0].code == 2 and ranks[1].code == -9
    assert ranks[0].err.splitlines() == [
        "zspace: error: lost contact with another process of this run: it stopped (see "
        "its own message or torchrun's report)"
    ]
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] >= 1


def _late_clock(rank):
    """Rank 1's clock a minute ahead: its default run folder would have another name."""
    if rank == 1:
        real = time.strftime
        time.strftime = lambda fmt, t=None: real(fmt, time.localtime(time.time() + 60))


def test_the_default_run_folder_is_rank_0s(tmp_path, tiny_overrides):
    cwd = tmp_path / "work"
    cwd.mkdir()
    argv = _argv("x", tiny_overrides + ["train.epochs=1"])
    argv = argv[:2] + argv[4:]  # no --run-dir
    ranks = run(argv, tmp_path / "launch", prepare=_late_clock, cwd=cwd)
    assert [r.code for r in ranks] == [0, 0], ranks[0].err + ranks[1].err
    (folder,) = (cwd / "runs").iterdir()
    assert (folder / "checkpoints" / "last.pt").is_file()


def test_a_bad_config_on_one_rank_ends_all_ranks_with_one_line(tmp_path, tiny_overrides):
    run_dir = tmp_path / "run"

    def argv(rank):
        return _argv(run_dir, tiny_overrides + (["model.z_dim=0"] if rank == 1 else []))

    ranks = run(argv, tmp_path / "launch")
    assert [r.code for r in ranks] == [2, 2]
    assert ranks[0].err.splitlines() == [
        "zspace: error: rank 1: config: model.z_dim = 0: must be >= 1"
    ]
    assert ranks[1].err == "" and ranks[1].out == "" and ranks[0].out == ""
    assert not run_dir.exists()

    # the same user error on every rank is still printed once
    ranks = run(_argv(run_dir, tiny_overrides + ["train.batch_size=1"]), tmp_path / "again")
    assert [r.code for r in ranks] == [2, 2]
    assert ranks[0].err.splitlines() == [
        "zspace: error: train.batch_size = 1 is the global batch, split over 2 processes: "
        "it must be at least 2"
    ]
    assert ranks[1].err == ""
    assert not run_dir.exists()


def _poison_rank_1(rank):
    if rank != 1:
        return
    import zspace.training.trainer as trainer

    real = trainer.vae_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 7 + 1 + 3:  # epoch 1: 7 training + 1 validation batches
            nan = torch.tensor(float("nan"))
            return type(terms)(terms.total * nan, terms.reco * nan, terms.kl, terms.kl_raw)
        return terms

    trainer.vae_loss = poisoned


def test_a_nan_on_one_rank_stops_all_ranks_at_the_same_batch(tmp_path, tiny_overrides):
    run_dir = tmp_path / "run"
    cfg = tiny_overrides + ["train.batch_size=256", "train.epochs=3"]
    ranks = run(_argv(run_dir, cfg), tmp_path / "launch", prepare=_poison_rank_1)
    assert [r.code for r in ranks] == [2, 2]
    lines = ranks[0].err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "zspace: error: non-finite loss (NaN or inf) in epoch 2, training batch 3: "
        "training stopped; the last good checkpoint is"
    )
    assert ranks[1].err == ""
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 1
    assert [r["epoch"] for r in _rows(run_dir)] == [1]


def test_other_commands_refuse_to_run_under_torchrun(tmp_path):
    ranks = run(["encode", str(tmp_path / "nothing")], tmp_path / "launch")
    assert [r.code for r in ranks] == [2, 2]
    assert ranks[0].err.splitlines() == [
        "zspace: error: only 'zspace train' runs under torchrun (WORLD_SIZE=2); "
        "run 'zspace encode' as one process"
    ]
    assert ranks[1].err == ""


@pytest.mark.slow  # three Python processes importing torch: 10 s idle, 45 s on a busy machine
def test_torchrun_end_to_end(tmp_path, tiny_overrides):
    """The real launcher: ``torchrun --standalone --nproc-per-node 2 -m zspace train``."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    cfg = tiny_overrides + ["train.epochs=1", "model.variational=false"]
    ddp = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "zspace", *_argv(ddp, cfg)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(f"run folder: {ddp}") == 2  # rank 0 only: announce + final line
    assert "processes: 2" in done.stdout and "zspace: error" not in done.stderr
    one = zspace.train(load_config(None, cfg), run_dir=tmp_path / "one", **QUIET)
    _assert_rows_close(_rows(ddp), _rows(one.path))
    _assert_weights_close(_weights(ddp), _weights(one.path))


def test_each_process_takes_its_own_gpu(monkeypatch):
    """torchrun's LOCAL_RANK picks the GPU (set as the current device); more processes
    than GPUs on a node, or MPS, are refused in one line."""
    from zspace.core.errors import ZspaceError
    from zspace.training.distributed import SINGLE, Dist

    chosen = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    cuda = torch.device("cuda")
    assert Dist(3, 4, 1, enabled=True).device(cuda) == torch.device("cuda", 1)
    assert chosen == [1]
    assert SINGLE.device(cuda) == cuda and chosen == [1]  # one plain process: untouched
    with pytest.raises(ZspaceError, match=r"LOCAL_RANK 2 but this node has 2 CUDA device"):
        Dist(2, 4, 2, enabled=True).device(cuda)
    with pytest.raises(ZspaceError, match="runs on CUDA .NCCL. or CPU .gloo."):
        Dist(0, 2, 0, enabled=True).device(torch.device("mps"))
    assert Dist(1, 2, 1, enabled=True).device(torch.device("cpu")) == torch.device("cpu")


def test_session_reads_torchrun_env_and_picks_nccl_beside_gloo(monkeypatch):
    import torch.distributed as torch_dist

    from zspace.core.errors import ZspaceError
    from zspace.training import distributed

    calls = []
    monkeypatch.setattr(torch_dist, "init_process_group", lambda **kw: calls.append(kw))
    monkeypatch.setattr(torch_dist, "destroy_process_group", lambda: calls.append("destroy"))
    monkeypatch.setattr(torch_dist, "is_initialized", lambda: bool(calls))  # after init
    monkeypatch.setattr(torch_dist, "get_rank", lambda: 1)
    monkeypatch.setattr(torch_dist, "get_world_size", lambda: 2)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with distributed.session() as dist:  # no torchrun: one plain process
        assert dist is distributed.SINGLE and not calls
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ZspaceError, match="RANK, MASTER_ADDR, MASTER_PORT not set: start"):
        with distributed.session():
            pass
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")

    def refuse(**kw):
        raise RuntimeError("The server socket has failed to listen on any local network address.")

    with monkeypatch.context() as m:
        m.setattr(torch_dist, "init_process_group", refuse)
        match = r"cannot open the process group \((gloo|cpu:gloo,cuda:nccl), rank 1 of 2 at "
        with pytest.raises(ZspaceError, match=match + r"127.0.0.1:29500\): The server socket"):
            with distributed.session():
                pass
    for cuda, backend in ((True, "cpu:gloo,cuda:nccl"), (False, "gloo")):
        calls.clear()
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        with distributed.session() as dist:
            assert (dist.rank, dist.world_size, dist.local_rank, dist.enabled) == (1, 2, 1, True)
            assert not dist.is_main
        assert calls == [{"backend": backend}, "destroy"]

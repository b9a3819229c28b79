"""The GPU throughput path (issue 15): compile modes, the CUDA-graphed step, the lr
rule for large batches, no host synchronisation per step. Tests marked ``cuda``
run only on a CUDA machine (benchmarks/gpu_check.sh runs them there)."""

import warnings

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import zspace
from zspace.config import load_config
from zspace.core.errors import ZspaceError
from zspace.data import ImageData
from zspace.training import loop as loop_module
from zspace.training.step import check_graphs, compiled, set_capturable
from zspace.training.trainer import Trainer, scaled_lr

QUIET = {"log": lambda _m: None, "progress": False}
SYNCING = {"item", "tolist", "__bool__", "__float__", "__int__", "numpy", "nonzero", "cpu"}


class HostReads(TorchFunctionMode):
    """Counts the tensor calls that make a GPU wait for the host (on a CPU they cost
    nothing, but they are the same calls). ``host`` tensors live on the CPU on a GPU
    too (Adam's step counters), so reading them waits for nothing."""

    def __init__(self, host=()) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.host = {id(t) for t in host}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNCING and not (args and id(args[0]) in self.host):
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


def _trainer(tmp_path, overrides, n=1000, size=16):
    cfg = load_config(
        None,
        [
            f"data.image_size={size}", "model.z_dim=4", "model.encoder_filters=[8, 16]",
            "model.encoder_strides=[2, 2]", "train.threads=1", "data.valid_fraction=0",
            *overrides,
        ],
    )  # fmt: skip
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, 1), np.uint8)
    data = ImageData(images=images, source="random")
    return Trainer(cfg, data, {"train": np.arange(n)}, tmp_path / "run", log=QUIET["log"])


def test_the_loop_reads_the_device_only_at_its_sync_points(tmp_path):
    trainer = _trainer(tmp_path, ["train.batch_size=8", "train.device=cpu"], n=1000)
    batches = len(trainer.train_loader)  # 125
    trainer.run_epoch(1, train=True)  # Adam's state is made in the first step
    steps = [s["step"] for s in trainer.opt.state.values()]
    assert steps and all(t.device.type == "cpu" for t in steps)
    with HostReads(steps) as reads:
        trainer.run_epoch(2, train=True)
    syncs = -(-batches // loop_module.SYNC_EVERY)  # every SYNC_EVERY batches and the last
    # per sync point: the NaN check (one bool) and the progress means (one tolist);
    # once at the end: the epoch means
    assert len(reads.calls) <= 2 * syncs + 1, reads.calls
    assert len(reads.calls) < batches / 5  # one per batch would be 125


def test_compile_modes_map_to_torch_compile(monkeypatch):
    seen = []
    monkeypatch.setattr(torch, "compile", lambda m, mode: seen.append(mode) or m)
    model = torch.nn.Linear(2, 2)
    assert compiled(model, "off") is model and seen == []
    for mode in ("reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"):
        compiled(model, mode)
        assert seen[-1] == mode
    compiled(model, "on")
    assert seen[-1] == "default"
    with pytest.raises(ZspaceError, match="train.compile = 'fast'"):
        compiled(model, "fast")


def test_config_checks_the_new_train_keys():
    cfg = load_config(None, ["train.compile=reduce-overhead", "train.cuda_graphs=on"])
    assert cfg.train.compile == "reduce-overhead" and cfg.train.cuda_graphs == "on"
    for bad, msg in [
        ("train.compile=fast", "train.compile"),
        ("train.cuda_graphs=yes", "train.cuda_graphs"),
        ("train.lr_scaling=cubic", "train.lr_scaling"),
        ("train.lr_base_batch=0", "train.lr_base_batch"),
    ]:
        with pytest.raises(ZspaceError, match=msg):
            load_config(None, [bad])


def test_lr_rule_for_large_batches():
    base = ["train.lr=0.001", "train.batch_size=512"]
    assert scaled_lr(load_config(None, base)) == pytest.approx(0.001)
    assert scaled_lr(load_config(None, base + ["train.lr_scaling=sqrt"])) == pytest.approx(0.002)
    assert scaled_lr(load_config(None, base + ["train.lr_scaling=linear"])) == pytest.approx(0.004)
    small = load_config(None, ["train.lr=0.001", "train.batch_size=32", "train.lr_scaling=sqrt"])
    assert scaled_lr(small) == pytest.approx(0.0005)


def test_scaled_lr_is_the_optimisers_and_the_historys(tmp_path, tiny_overrides):
    more = ["train.epochs=1", "train.lr_scaling=sqrt", "train.lr_base_batch=32", "train.lr=0.001"]
    cfg = load_config(None, tiny_overrides + more)
    run = zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)
    assert run.history[0]["lr"] == pytest.approx(0.002)  # batch 128 = 4 x 32


def test_cuda_graphs_refused_off_cuda_with_one_line(tmp_path, tiny_overrides):
    cfg = load_config(None, tiny_overrides + ["train.cuda_graphs=on", "train.device=cpu"])
    with pytest.raises(ZspaceError, match="needs a CUDA device"):
        zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)
    assert not (tmp_path / "run").exists()


def test_cuda_graphs_refuse_settings_they_cannot_run_with():
    cuda = torch.device("cuda")
    with pytest.raises(ZspaceError, match="captures CUDA graphs itself"):
        check_graphs(cuda, "fp32", "reduce-overhead", 1)
    with pytest.raises(ZspaceError, match="gradient scaler"):
        check_graphs(cuda, "fp16", "off", 1)
    with pytest.raises(ZspaceError, match="DDP"):
        check_graphs(cuda, "bf16", "on", 2)
    check_graphs(cuda, "bf16", "on", 1)  # fine


def test_a_graphed_runs_checkpoint_resumes_without_graphs():
    """A graphed run saves Adam with capturable=True and its step counters on the GPU;
    loading that into an eager run must turn both back, or Adam refuses to step."""
    p = torch.nn.Parameter(torch.randn(3))
    first = torch.optim.Adam([p], lr=0.1)
    p.grad = torch.ones(3)
    first.step()
    state = first.state_dict()
    state["param_groups"][0]["capturable"] = True  # as a graphed run writes it
    again = torch.optim.Adam([p], lr=0.1)
    again.load_state_dict(state)
    p.grad = torch.ones(3)
    with pytest.raises(AssertionError, match="capturable"):
        again.step()
    set_capturable(again, False)
    again.step()
    assert again.param_groups[0]["capturable"] is False
    assert float(again.state[p]["step"]) == 2.0


# ---------------------------------------------------------------- on a GPU


def _losses(run_dir):
    import json

    return [json.loads(line)["total"] for line in (run_dir / "history.jsonl").open()]


@pytest.mark.cuda
def test_graphed_step_trains_like_the_eager_step(tmp_path, tiny_overrides, monkeypatch):
    """An AE without dropout is deterministic up to kernel rounding: the graphed run
    (1,797 digits, batch 128: an uneven last batch, run eagerly) follows the eager one."""
    base = tiny_overrides + ["train.device=cuda", "train.epochs=3", "model.variational=false"]
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    eager = zspace.train(load_config(None, base), run_dir=tmp_path / "eager", **QUIET)
    graphed = zspace.train(
        load_config(None, base + ["train.cuda_graphs=on"]), run_dir=tmp_path / "graph", **QUIET
    )
    a, b = _losses(eager.path), _losses(graphed.path)
    assert np.allclose(a, b, rtol=1e-4), (a, b)
    assert a[-1] < a[0]


@pytest.mark.cuda
def test_graph_is_captured_again_when_lr_or_kl_weight_change(tmp_path):
    trainer = _trainer(
        tmp_path,
        ["train.device=cuda", "train.cuda_graphs=on", "train.batch_size=100",
         "train.lr_decay_every=2", "model.fact=1.0", "model.fact_warmup_epochs=2",
         "train.epochs=4"],
    )  # fmt: skip
    captures = []
    for epoch in range(1, 5):
        trainer.run_epoch(epoch, train=True)
        trainer.sched.step()
        captures.append(trainer.graph.captures)
    # epoch 1: warm-up + capture (fact 0.5); 2: fact 1; 3: lr halves; 4: nothing changes
    assert captures == [1, 2, 3, 3]


@pytest.mark.cuda
def test_bf16_graphed_vae_trains(tmp_path, tiny_overrides):
    cfg = load_config(
        None, tiny_overrides + ["train.device=cuda", "train.cuda_graphs=on",
                                "train.precision=bf16", "train.epochs=3"]
    )  # fmt: skip
    run = zspace.train(cfg, run_dir=tmp_path / "run", **QUIET)
    losses = _losses(run.path)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


@pytest.mark.cuda
def test_no_host_sync_per_step_on_cuda(tmp_path):
    """torch's sync debug mode warns at every synchronising call: at most the loop's
    sync points, for the eager and for the graphed step."""
    for graphs in ("off", "on"):
        trainer = _trainer(
            tmp_path / graphs,
            ["train.device=cuda", f"train.cuda_graphs={graphs}", "train.batch_size=10"],
        )
        trainer.run_epoch(1, train=True)  # warm-up, capture
        batches = len(trainer.train_loader)
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                trainer.run_epoch(2, train=True)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        syncs = [w for w in caught if "synchroniz" in str(w.message)]
        points = -(-batches // loop_module.SYNC_EVERY)
        assert len(syncs) <= 3 * points + 3, (graphs, len(syncs), batches)


@pytest.mark.cuda
def test_encode_on_cuda_matches_the_cpu(tmp_path, tiny_overrides):
    run = zspace.train(
        load_config(None, tiny_overrides + ["train.epochs=1", "model.variational=false"]),
        run_dir=tmp_path / "run",
        **QUIET,
    )
    cpu = zspace.load_run(run.path, device="cpu")
    gpu = zspace.load_run(run.path, device="cuda")
    from zspace.latents.store import load_latents

    zspace.encode(cpu)
    z_cpu = np.array(load_latents(run.path).z)
    zspace.encode(gpu)
    z_gpu = np.array(load_latents(run.path).z)
    assert np.allclose(z_cpu, z_gpu, atol=1e-3)

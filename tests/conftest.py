"""Shared test set-up: markers, the session cache, and the fixtures every module may use.

Shared fixtures (built once per pytest process, i.e. once per xdist worker; prefer them
to training or building your own):

- ``tiny_runs``: ``{"ae": Path, "vae": Path}``, two runs trained with ``TINY`` (16x16
  built-in digits, z_dim 4, 2 epochs; the AE with ``model.variational=false``), their
  training split encoded (``latents/train.npz``). READ-ONLY: a test that writes into a
  run (analyses, samples, a corrupted checkpoint) works on ``copy_run(src, dest)``;
  the session checks at its end that nobody wrote into them.
- ``digits_evaluator``: the evaluator of the built-in digits at 16x16 (the data of
  ``TINY`` runs), in the session cache, so ``zspace.evaluate`` on any ``TINY`` run
  reuses it instead of training its own feature net.
- ``mnist_evaluator``: the same for MNIST t10k at 16x16 (../shared/data; skips when
  absent).
- ``shared_data_dir``: ../shared/data (or ``$ZSPACE_TEST_DATA``); skips when absent.

Crash tests stop a training at a known point with ``ZSPACE_TEST_KILL_AFTER_EPOCHS=N`` in
the environment of the process (zspace/training/trainer.py: it SIGKILLs itself after
writing its N-th epoch), never by polling files and killing.

The session cache (``$ZSPACE_CACHE``: decoded data sets, evaluators) is one temporary
folder shared by every xdist worker: both caches build under a file lock and commit
atomically, so a second process waits for the first one's build and reuses it.
"""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# One thread per test process (and the processes tests start inherit it): the suite
# runs on 2 cores beside other work, two xdist workers at a time, and OpenMP threads
# spin-waiting for a busy core made torch 10-20x slower there (an evaluator build on
# the digits: 13-17 s on one thread, 150-290 s on two, measured beside other jobs).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


# The longest modules, longest first: under xdist (make test: --dist loadscope, a module
# whole on one worker) they start first and the short ones fill the end.
LONG_FIRST = ("test_sweep.py", "test_recipes.py", "test_cli.py", "test_report.py",
              "test_examples.py", "test_evaluation_mnist.py", "test_export.py")  # fmt: skip


def pytest_collection_modifyitems(config, items):
    """The long modules first (``LONG_FIRST``); tests marked ``cuda`` skip on machines
    without a CUDA GPU."""
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in marked:
        item.add_marker(skip)


def shared_data() -> Path:
    return Path(os.environ.get("ZSPACE_TEST_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data_dir() -> Path:
    path = shared_data()
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path}")
    return path


def data_config(source, tmp_path, *extra):
    """A DataConfig for ``source`` with its cache under ``tmp_path``."""
    from zspace.config import load_config

    return load_config(
        None, [f'data.source="{source}"', f'data.cache_dir="{tmp_path / "cache"}"', *extra]
    ).data


# Small, fast settings for training tests: 16x16 digits, a two-layer net.
TINY = [
    "data.source=builtin:digits",
    "data.image_size=16",
    "model.z_dim=4",
    "model.encoder_filters=[8, 16]",
    "model.encoder_strides=[2, 2]",
    "train.batch_size=128",
    "train.epochs=2",
    "train.threads=1",
]


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)


@pytest.fixture(scope="session", autouse=True)
def _cache_in_tmp(tmp_path_factory):
    """Caches the tests build (evaluators, decoded data) go to a temporary folder, never
    into the user's ~/.cache (tests that need another root set their own); under xdist
    one folder for all workers (the base temp folder's parent is theirs in common)."""
    base = tmp_path_factory.getbasetemp()
    cache = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "zspace-cache"
    cache.mkdir(exist_ok=True)
    old = os.environ.get("ZSPACE_CACHE")
    os.environ["ZSPACE_CACHE"] = str(cache)
    yield
    if old is None:
        os.environ.pop("ZSPACE_CACHE", None)
    else:
        os.environ["ZSPACE_CACHE"] = old


def copy_run(src: Path, dest: Path, ignore: tuple[str, ...] = ()) -> Path:
    """A writable copy of a (shared) run folder, leaving out the ``ignore`` patterns."""
    return Path(shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*ignore)))


def check_onnx(run, x) -> None:
    """``zspace export RUN --format onnx``, then the graphs in onnxruntime on ``x`` (a
    batch of another size than the export's): the run's own mu and logvar (or z), and
    its images of them."""
    import numpy as np
    import torch

    import zspace

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = zspace.export(run, "onnx", log=None)
    encoder, decoder = (ort.InferenceSession(out / f"{g}.onnx") for g in ("encoder", "decoder"))
    heads = encoder.run(None, {"images": x.numpy()})
    z, mu, logvar = run.encode(x)
    for got, want in zip(heads, [z] if mu is None else [mu, logvar], strict=True):
        assert got.shape == (len(x), *run.latent_shape)
        np.testing.assert_allclose(got.reshape(len(x), -1), want, rtol=1e-4, atol=1e-5)
    images = decoder.run(None, {"z": heads[0]})[0]
    np.testing.assert_allclose(images, run.decode(torch.from_numpy(heads[0])), atol=1e-5)


def _stamps(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """The shared tiny AE and VAE (see the module docstring): read-only."""
    import zspace

    root = tmp_path_factory.mktemp("tiny-runs")
    out = {}
    for kind in ("ae", "vae"):
        extra = f"model.variational={str(kind == 'vae').lower()}"
        cfg = zspace.load_config(None, [*TINY, extra])
        run = zspace.train(cfg, run_dir=root / kind, log=lambda s: None, progress=False)
        zspace.encode(run)
        out[kind] = run.path
    before = _stamps(root)
    yield out
    changed = sorted(set(before.items()) ^ set(_stamps(root).items()))
    assert not changed, f"a test wrote into the shared tiny_runs (use copy_run): {changed[:3]}"


def _evaluator(overrides: list[str]):
    """The evaluator ``zspace.evaluate`` opens for a run trained with ``overrides``."""
    from zspace.config import load_config
    from zspace.data.sources import load_data
    from zspace.evaluation.evaluator import open_evaluator

    cfg = load_config(None, overrides).data
    return open_evaluator(load_data(cfg), crop=cfg.crop, progress=False)


@pytest.fixture(scope="session")
def digits_evaluator():
    """The built-in digits' evaluator at 16x16 in the session cache (see the docstring)."""
    return _evaluator(TINY)


@pytest.fixture(scope="session")
def mnist_evaluator():
    """MNIST t10k's evaluator at 16x16 in the session cache; skips without the data."""
    mnist = shared_data() / "mnist"
    if not (mnist / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"test data absent: {mnist}")
    return _evaluator([*TINY, f'data.source="mnist:{mnist}"'])


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HAVE_CHROMIUM = CHROMIUM.exists() and CHROMEDRIVER.exists()
needs_chromium = pytest.mark.skipif(not HAVE_CHROMIUM, reason="no Chromium here")


def headless_chromium(profile: Path, size: str = "1300,1000"):
    """A headless Chromium driver with a fresh profile, the browser log kept (the flags
    the brief asks for: no network, no updates, no first-run); the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync",
             "--disable-quic"]  # fmt: skip
    for arg in [*flags, f"--user-data-dir={profile}", f"--window-size={size}"]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)

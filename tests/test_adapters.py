"""pythae models and diffusers' AutoencoderKL as zspace runs (issue 25): trained or built
here (no download), saved, imported, then through the stages; the pickle rule, the
families refused, the spatial latent's samplers, one-line errors."""

from __future__ import annotations

import json
import logging
import pickle
import sys
import urllib.request

import numpy as np
import pytest
import torch
from conftest import check_onnx
from torch import nn

import zspace
from zspace.cli.main import main
from zspace.core.errors import ZspaceError
from zspace.data.builtin import digits_images
from zspace.generation.samplers import PCA_DIMS
from zspace.runs import model_folders

pythae_models = pytest.importorskip("pythae.models")
pythae_nn = pytest.importorskip("pythae.models.nn")
diffusers = pytest.importorskip("diffusers")

DIGITS = ["data.image_size=16"]  # the data of TINY runs: one evaluator for every family
LATENT = 4
LOCAL = "(zspace reads local folders only)"


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """The built-in digits at 16x16, float NCHW in [0, 1], as pythae trains on them."""
    return digits_images(16)[0].transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def train_pythae(model, images, out):
    """A few steps of pythae's own TrainingPipeline (seconds), then pythae's save."""
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    logging.getLogger("pythae").setLevel(logging.ERROR)
    cfg = BaseTrainerConfig(
        output_dir=str(out / "training"), num_epochs=1, per_device_train_batch_size=64,
        learning_rate=1e-3, no_cuda=True, steps_saving=None,
    )  # fmt: skip
    TrainingPipeline(model=model, training_config=cfg)(train_data=images[:256])
    model.save(str(out / "model"))
    return out / "model"


@pytest.fixture(scope="module")
def pythae_folders(images, tmp_path_factory):
    """{"VAE": folder, "WAE_MMD": folder}: two families trained here and saved."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("pythae")
    m = pythae_models
    built = {
        "VAE": m.VAE(m.VAEConfig(input_dim=(1, 16, 16), latent_dim=LATENT)),
        "WAE_MMD": m.WAE_MMD(m.WAE_MMD_Config(input_dim=(1, 16, 16), latent_dim=LATENT)),
    }
    return {name: train_pythae(model, images, root / name) for name, model in built.items()}


@pytest.mark.parametrize("family", ["VAE", "WAE_MMD"])
def test_pythae_folder_through_every_stage(
    family, pythae_folders, images, tmp_path, digits_evaluator, capsys
):
    folder = pythae_folders[family]
    run_dir = tmp_path / "run"
    args = ["import", "--pythae", str(folder), "--data", "builtin:digits", "--size", "16"]
    assert main([*args, "--out", str(run_dir), "--no-progress"]) == 0
    assert f"imported pythae {family}: " in capsys.readouterr().out
    mine = model_folders.load_pythae(folder).eval()  # the folder, read the safe way
    run = zspace.load_run(run_dir)
    assert run.variational == (family == "VAE") and run.latent_shape == (LATENT,)
    assert run.origin["kind"] == "pythae" and run.origin["model"] == family
    assert "pickles" not in run.origin  # default networks: nothing pickled
    x = torch.from_numpy(images[:32])
    z, mu, logvar = run.encode(x)
    with torch.no_grad():
        out = mine.encoder(x)
        np.testing.assert_allclose(
            mu if family == "VAE" else z, out["embedding"], rtol=1e-5, atol=1e-6
        )
        if family == "VAE":  # pythae's log_covariance is the log variance
            np.testing.assert_allclose(logvar, out["log_covariance"], rtol=1e-5, atol=1e-6)
            assert not torch.equal(z, mu)  # z is drawn around mu
        back = mine.decoder(out["embedding"])["reconstruction"]
        np.testing.assert_allclose(run.decode(out["embedding"]), back, rtol=1e-5, atol=1e-6)

    zspace.encode(run, log=quiet)
    zspace.analyze(run, only="radius,axes,pca", log=quiet)
    zspace.generate(run, "normal,gauss", n=16, log=quiet)
    zspace.evaluate(run, "normal,gauss", log=quiet)
    zspace.report(run, log=quiet)
    rows = json.loads((run_dir / "samples" / "eval.json").read_text())
    assert rows["evaluator"]["fingerprint"] == digits_evaluator.fingerprint  # one evaluator
    page = (run_dir / "report.html").read_text()
    assert f"pythae {family}" in page and f"D = {LATENT}: the latent vector" in page


@pytest.fixture(scope="module")
def kl_folder(tmp_path_factory):
    """A tiny AutoencoderKL on 16x16 grey images: two blocks, 8 latent channels, so the
    latent is a map of 8 x 8 x 8 = 512 values (random weights, saved as diffusers does)."""
    torch.manual_seed(0)
    model = diffusers.AutoencoderKL(
        in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16),
        layers_per_block=1, latent_channels=8, norm_num_groups=4, sample_size=16,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("kl") / "vae"
    model.save_pretrained(folder)
    return folder


def test_autoencoder_kl_spatial_latent_through_the_stages(kl_folder, images, tmp_path):
    model = model_folders.load_diffusers(kl_folder)
    run = zspace.wrap(model, data="builtin:digits", run_dir=tmp_path / "kl", overrides=DIGITS,
                      log=quiet)  # fmt: skip
    assert run.latent_shape == (8, 8, 8) and run.z_dim == 512 and run.variational
    assert run.origin["config"]["scaling_factor"] == pytest.approx(0.18215)
    x = torch.from_numpy(images[:8])
    z, mu, logvar = run.encode(x)
    with torch.no_grad():  # 2x - 1 in, the posterior's own mean and logvar out, unscaled
        post = model.encode(2 * x - 1).latent_dist
        np.testing.assert_allclose(mu, post.mean.flatten(1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(logvar, post.logvar.flatten(1), rtol=1e-5, atol=1e-5)
        y = model.decode(post.mean).sample
    images_back = run.decode(mu)
    np.testing.assert_allclose(images_back, ((y + 1) / 2).clamp(0, 1), rtol=1e-5, atol=1e-5)
    assert images_back.shape == (8, 1, 16, 16) and images_back.min() >= 0 and y.min() < -0.5

    zspace.encode(run, log=quiet)
    zspace.analyze(run, only="radius,axes,pca", log=quiet)
    logs = []
    zspace.generate(run, "normal,gauss", n=16, log=logs.append)
    note = f"gauss: fitted in the leading {PCA_DIMS} principal components of D = 512"
    assert any(line.startswith(note) for line in logs), logs  # said in the log
    index = json.loads((run.path / "samples" / "index.json").read_text())
    caption = next(e["caption"] for e in index if e["sampler"] == "gauss")
    assert f"leading {PCA_DIMS} principal components of D = 512" in caption  # and shown
    zspace.report(run, log=quiet)
    page = (run.path / "report.html").read_text()
    assert "D = 8 x 8 x 8 = 512: the latent map flattened" in page
    assert "diffusers AutoencoderKL (scaling_factor 0.18215 recorded, not applied)" in page

    again = zspace.load_run(run.path)  # rebuilt from the recorded config + the run's weights
    torch.testing.assert_close(again.decode(mu), images_back)
    with zspace.explore(again, log=quiet) as server:  # the explorer's decode endpoint
        query = ",".join(f"{v:.6g}" for v in mu[0].tolist())
        with urllib.request.urlopen(f"{server.url.rstrip('/')}/api/decode?z={query}") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "image/png"


def test_import_diffusers_cli_is_quiet_and_a_missing_folder_never_reaches_diffusers(
    kl_folder, tmp_path, monkeypatch, capfd
):
    args = ["import", "--diffusers", str(kl_folder.parent), "--data", "builtin:digits"]
    assert main([*args, "--size", "16", "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    out, err = capfd.readouterr()
    assert err == "" and "latent shape (8, 8, 8)" in out  # a pipeline's folder: its vae/
    monkeypatch.setitem(sys.modules, "diffusers", None)  # any call into diffusers fails
    for missing in ["stabilityai/sd-vae-ft-mse", str(tmp_path / "nothing")]:
        assert main(["import", "--diffusers", missing, "--data", "builtin:digits",
                     "--out", str(tmp_path / "x")]) == 2  # fmt: skip
        err = capfd.readouterr().err.strip()
        assert err == f"zspace: error: --diffusers {missing}: no such folder " + LOCAL
    assert not (tmp_path / "x").exists()
    with pytest.raises(ZspaceError, match=r"pip install 'zspace\[diffusers\]'"):
        model_folders.load_diffusers(kl_folder)


class Marker:
    """A pickle that writes a file when it is loaded: what running its code looks like."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_networks_are_refused_without_allow_pickle(tmp_path, capsys):
    folder, marker = tmp_path / "custom", tmp_path / "unpickled"
    folder.mkdir()
    config = {"name": "VAEConfig", "input_dim": [1, 16, 16], "latent_dim": LATENT,
              "uses_default_encoder": False, "uses_default_decoder": True}  # fmt: skip
    (folder / "model_config.json").write_text(json.dumps(config))
    (folder / "encoder.pkl").write_bytes(pickle.dumps(Marker(marker)))
    code = main(["import", "--pythae", str(folder), "--data", "builtin:digits", "--out",
                 str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--allow-pickle" in err and "encoder.pkl" in err
    assert not marker.exists() and not (tmp_path / "run").exists()  # nothing ran, nothing left
    with pytest.raises(ZspaceError, match="cannot build it from its config"):  # trusted: it ran
        model_folders.load_pythae(folder, allow_pickle=True)
    assert marker.exists()


class SmallEncoder(pythae_nn.BaseEncoder):
    """A custom pythae encoder: pythae pickles it (by value) at save."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(256, 32), nn.ReLU())
        self.mu, self.logvar = nn.Linear(32, LATENT), nn.Linear(32, LATENT)

    def forward(self, x):
        from pythae.models.base.base_utils import ModelOutput

        h = self.net(x)
        return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))


def test_trusted_pickles_are_kept_with_their_sha256_and_checked_on_load(images, tmp_path):
    m = pythae_models
    model = m.VAE(m.VAEConfig(input_dim=(1, 16, 16), latent_dim=LATENT), encoder=SmallEncoder())
    model.save(str(tmp_path / "custom"))
    loaded = model_folders.load_pythae(tmp_path / "custom", allow_pickle=True)
    run = zspace.wrap(loaded, data="builtin:digits", run_dir=tmp_path / "run", overrides=DIGITS,
                      log=quiet)  # fmt: skip
    kept = tmp_path / "run" / "pythae" / "encoder.pkl"
    assert set(run.origin["pickles"]) == {"encoder"}
    assert kept.read_bytes() == (tmp_path / "custom" / "encoder.pkl").read_bytes()
    x = torch.from_numpy(images[:4])
    with torch.no_grad():
        torch.testing.assert_close(
            zspace.load_run(run.path).encode(x)[1], model.encoder(x)["embedding"]
        )
    kept.write_bytes(kept.read_bytes() + b"\0")  # changed after import: never unpickled
    with pytest.raises(ZspaceError, match="not the pickle trusted at import"):
        zspace.load_run(run.path)
    # a model in memory: pythae's own save pickles its custom network into the run
    direct = zspace.wrap(model, data="builtin:digits", run_dir=tmp_path / "direct",
                         overrides=DIGITS, log=quiet)  # fmt: skip
    assert (tmp_path / "direct" / "pythae" / "encoder.pkl").is_file()
    with torch.no_grad():
        torch.testing.assert_close(
            zspace.load_run(direct.path).encode(x)[1], model.encoder(x)["embedding"]
        )
    bundle = zspace.export(direct, "safetensors", tmp_path / "bundle", log=quiet)
    assert not (bundle / "pythae").exists()  # a bundle unpickles nothing when loaded
    with pytest.raises(ZspaceError) as refused:
        zspace.load_run(bundle)
    assert "\n" not in str(refused.value) and "pythae" in str(refused.value)


class BranchDecoder(pythae_nn.BaseDecoder):
    """A custom decoder with a Python branch on its values: no ONNX graph."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(LATENT, 256), nn.Sigmoid())

    def forward(self, z):
        from pythae.models.base.base_utils import ModelOutput

        images = self.net(z).view(z.shape[0], 1, 16, 16)
        return ModelOutput(reconstruction=images if float(images.max()) <= 1 else images * 0)


def test_onnx_export_of_pythae_and_diffusers_runs(
    pythae_folders, kl_folder, images, tmp_path, capsys
):
    """pythae's AE-like and VAE-like families and AutoencoderKL's latent map (its 2x - 1
    and (y + 1) / 2 inside the graphs) export; a custom network that does not trace is
    refused in one line, nothing written."""
    models = [model_folders.load_pythae(pythae_folders[f]) for f in ("VAE", "WAE_MMD")]
    for i, model in enumerate([*models, model_folders.load_diffusers(kl_folder)]):
        run = zspace.wrap(model, data="builtin:digits", run_dir=tmp_path / str(i),
                          overrides=DIGITS, log=quiet)  # fmt: skip
        check_onnx(run, torch.from_numpy(images[:5]))
    m = pythae_models
    branchy = m.VAE(m.VAEConfig(input_dim=(1, 16, 16), latent_dim=LATENT), decoder=BranchDecoder())
    zspace.wrap(branchy, data="builtin:digits", run_dir=tmp_path / "branchy", overrides=DIGITS,
                log=quiet)  # fmt: skip
    capsys.readouterr()
    assert main(["export", str(tmp_path / "branchy"), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    what = "the decoder of this imported model (pythae VAE) does not export to ONNX ("
    assert err.startswith(f"zspace: error: --format onnx: {what}") and err.count("\n") == 1
    assert not (tmp_path / "branchy" / "export").exists()


def test_unsupported_families_are_refused_in_one_line(tmp_path):
    m = pythae_models
    vq = m.VQVAE(m.VQVAEConfig(input_dim=(1, 16, 16), latent_dim=LATENT))
    with pytest.raises(
        ZspaceError, match=r"^pythae VQVAE is not supported: .*supported: AE, RAE_L2"
    ):
        zspace.wrap(vq, data="builtin:digits", run_dir=tmp_path / "vq", log=quiet)
    (tmp_path / "vamp").mkdir()
    (tmp_path / "vamp" / "model_config.json").write_text('{"name": "VAMPConfig"}')
    with pytest.raises(ZspaceError, match="pythae VAMP is not supported"):
        model_folders.load_pythae(tmp_path / "vamp")
    tiny = diffusers.AutoencoderTiny(
        in_channels=1, out_channels=1, encoder_block_out_channels=(8,),
        decoder_block_out_channels=(8,), num_encoder_blocks=(1,), num_decoder_blocks=(1,),
        latent_channels=2,
    )  # fmt: skip
    with pytest.raises(ZspaceError, match="diffusers AutoencoderTiny is not supported"):
        zspace.wrap(tiny, data="builtin:digits", run_dir=tmp_path / "tiny", log=quiet)
    assert not any((tmp_path / n).exists() for n in ("vq", "tiny"))


def test_a_missing_extra_is_named(pythae_folders, monkeypatch):
    monkeypatch.setitem(sys.modules, "pythae.models", None)
    with pytest.raises(
        ZspaceError, match=r"needs the pythae package: pip install 'zspace\[pythae\]'"
    ):
        model_folders.load_pythae(pythae_folders["VAE"])


def test_compare_three_families_on_one_page(
    tiny_runs, pythae_folders, kl_folder, tmp_path, digits_evaluator
):
    from conftest import copy_run

    own = copy_run(tiny_runs["vae"], tmp_path / "zspace-vae")
    brought = [
        zspace.wrap(model_folders.load_pythae(pythae_folders["VAE"]), data="builtin:digits",
                    run_dir=tmp_path / "pythae-vae", overrides=DIGITS, log=quiet),
        zspace.wrap(model_folders.load_diffusers(kl_folder), data="builtin:digits",
                    run_dir=tmp_path / "kl", overrides=DIGITS, log=quiet),
    ]  # fmt: skip
    runs = [zspace.load_run(own), *brought]
    for run in runs:
        zspace.encode(run, log=quiet) if run.origin else None
        zspace.analyze(run, only="radius", log=quiet)
        zspace.evaluate(run, "normal", log=quiet)
    page = zspace.compare(runs, tmp_path / "compare", log=quiet).read_text()
    for origin in ("zspace", "pythae VAE", "diffusers AutoencoderKL (scaling_factor 0.18215"):
        assert origin in page
    assert "512 (8, 8, 8)" in page  # D with the latent map's shape, beside 4 (4,)
    # the zspace VAE is a TINY run: the same data, so one evaluator judges all three
    assert page.count(f"evaluator {digits_evaluator.fingerprint}") == len(runs)

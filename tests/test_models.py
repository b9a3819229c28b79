import pytest
import torch
from torch import nn

from zspace.config import check_geometry, load_config
from zspace.models.autoencoder import AutoEncoder, count_parameters, summary


def build(size, channels, strides, *extra, variational=True):
    filters = [8 * (i + 1) for i in range(len(strides))]
    cfg = load_config(
        None,
        [
            f"model.encoder_filters={filters}",
            f"model.encoder_strides={strides}",
            f"model.variational={'true' if variational else 'false'}",
            "model.z_dim=6",
            *extra,
        ],
    )
    check_geometry(cfg, size, channels)
    return AutoEncoder(cfg.model, (channels, size, size))


@pytest.mark.parametrize("variational", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    "size, strides",
    [(28, [1, 2, 2]), (28, [1, 2, 2, 1]), (96, [2, 2, 2, 2]), (96, [2, 2, 2])],
)
def test_output_shape_equals_input_shape(size, strides, channels, variational):
    model = build(size, channels, strides, variational=variational)
    x = torch.rand(2, channels, size, size)
    logits, enc = model(x)
    assert logits.shape == x.shape
    assert enc.z.shape == (2, 6)
    assert (enc.mu is not None) == variational


def test_reference_celeba_network_parameter_count():
    # The Keras reference network (netspec.py: 7,864,195 parameters).
    cfg = load_config(
        None,
        [
            "model.encoder_filters=[32,64,128,256]",
            "model.encoder_strides=2",
            "model.z_dim=256",
        ],
    )
    model = AutoEncoder(cfg.model, (3, 96, 96))
    assert count_parameters(model) == 7_864_195


def test_eps_clip_bounds_deviation_and_scale_is_changeable():
    model = build(28, 1, [1, 2, 2], "model.eps_clip=0.5", "model.eps_scale=2.0")
    mu = torch.zeros(20000, 6)
    logvar = torch.full((20000, 6), 0.8)
    z = model.encoder.sample(mu, logvar)
    bound = 0.5 * torch.exp(logvar / 2) * 2.0
    assert torch.all((z - mu).abs() <= bound + 1e-6)
    assert (z - mu).abs().max() > 0.99 * bound.max()  # the clip is reached, not undershot
    model.eps_scale = 0.0
    assert torch.equal(model.encoder.sample(mu, logvar), mu)


def test_unclipped_eps_exceeds_clip():
    model = build(28, 1, [1, 2, 2], "model.eps_clip=0")
    torch.manual_seed(0)
    z = model.encoder.sample(torch.zeros(200000, 6), torch.zeros(200000, 6))
    assert z.abs().max() > 4.0


def test_knobs_build_the_promised_layers():
    model = build(
        28,
        1,
        [1, 2, 2],
        "model.activation=selu",
        "model.dropout=0.2",
        "model.batch_norm=true",
        "model.enc_dense=32",
    )
    kinds = [type(m) for m in model.modules()]
    assert nn.SELU in kinds and nn.AlphaDropout in kinds and nn.Dropout not in kinds
    # batch norm after every conv and transposed conv except the decoder's last
    assert kinds.count(nn.BatchNorm2d) == 3 + 2
    assert isinstance(model.encoder.dense[0], nn.Linear)
    assert model.encoder.dense[0].out_features == 32
    last = model.decoder.deconvs[-1]
    assert isinstance(last, nn.ConvTranspose2d) and last.out_channels == 1
    leaky = build(28, 1, [1, 2, 2])
    slopes = {m.negative_slope for m in leaky.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.3}
    relu = build(28, 1, [1, 2, 2], "model.activation=relu", "model.dropout=0.1")
    assert nn.ReLU in [type(m) for m in relu.modules()]
    assert nn.Dropout in [type(m) for m in relu.modules()]


def test_initialisation_glorot_and_lecun():
    torch.manual_seed(0)
    model = build(96, 3, [2, 2, 2, 2])
    conv = model.encoder.convs[1][0]  # 8 -> 16 filters, 3x3
    fan_in, fan_out = 8 * 9, 16 * 9
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.95 * bound
    assert torch.count_nonzero(conv.bias) == 0
    selu = build(96, 3, [2, 2, 2, 2], "model.activation=selu")
    w = selu.encoder.convs[2][0].weight  # 16 -> 24 filters: fan_in 16*9
    assert abs(w.std().item() - (1 / (16 * 9)) ** 0.5) < 0.01


def test_summary_lists_layers_shapes_and_total():
    model = build(28, 1, [1, 2, 2])
    text = summary(model)
    assert "encoder.convs.2.0 (Conv2d)" in text
    assert "(24, 7, 7)" in text
    assert f"VAE: {count_parameters(model):,} parameters" in text

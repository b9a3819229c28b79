"""The CPU formulations of zspace/models/cpu.py compute what the plain layers
compute: the transposed convolution's adjoint backward and sub-pixel form, and the
fused encoder convolutions (docs/performance.md)."""

import pytest
import torch
from test_models import build
from torch import nn

from zspace.models import cpu
from zspace.models.autoencoder import AutoEncoder, summary
from zspace.models.footprint import model_sizes


@pytest.mark.parametrize(
    "kernel, stride, padding, output_padding, size",
    [(3, 2, 1, 1, 7), (3, 2, 1, 0, 6), (5, 2, 2, 1, 5), (4, 2, 2, 1, 6), (3, 1, 1, 0, 5)],
)
def test_transposed_conv_gradients_equal_the_plain_layer(
    kernel, stride, padding, output_padding, size
):
    torch.manual_seed(0)
    plain = nn.ConvTranspose2d(4, 3, kernel, stride, padding, output_padding).double()
    ours = cpu.ConvTranspose2d(4, 3, kernel, stride, padding, output_padding).double()
    ours.load_state_dict(plain.state_dict())
    x = torch.randn(2, 4, size, size, dtype=torch.float64, requires_grad=True)
    grad = torch.randn_like(plain(x))
    results = []
    for layer in (plain, ours):
        x.grad = None
        layer.zero_grad()
        out = layer(x)
        out.backward(grad)
        results.append((out, x.grad, layer.weight.grad, layer.bias.grad))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # decoding: the forward alone
        torch.testing.assert_close(ours(x), plain(x), rtol=1e-12, atol=1e-12)


def test_transposed_conv_passes_gradcheck():
    layer = cpu.ConvTranspose2d(2, 3, 3, 2, 1, 1).double()
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    w, b = layer.weight.detach().requires_grad_(), layer.bias.detach().requires_grad_()
    apply = cpu._TransposedConv.apply
    assert torch.autograd.gradcheck(lambda *a: apply(*a, (2, 2), (1, 1), (1, 1)), (x, w, b))


@pytest.mark.parametrize("variational", [False, True])
@pytest.mark.parametrize("filters", ["[8,16,24]", "[2,4,8]"])  # thin: sub-pixel layers inside
def test_model_outputs_and_gradients_equal_the_plain_layers(monkeypatch, variational, filters):
    """A reference-shaped net, float32 as trained: the CPU path against the plain layers
    (what a GPU, export and torch.compile run) and activations not in place."""
    torch.manual_seed(0)
    model = build(32, 3, [2, 2, 2], f"model.encoder_filters={filters}", variational=variational)
    model = model.to(memory_format=torch.channels_last)
    x = torch.rand(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    eps = torch.randn(4, 6)

    def run():
        model.zero_grad()
        logits, enc = model(x, eps)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, x) + enc.z.square().mean()
        loss.backward()
        heads = (enc.mu, enc.logvar) if variational else (enc.z,)
        return [logits, *heads] + [p.grad.clone() for p in model.parameters()]

    ours = run()
    monkeypatch.setattr(cpu, "on_cpu", lambda _x: False)
    for m in model.modules():
        if isinstance(m, nn.LeakyReLU):
            m.inplace = False
    plain = run()
    assert len(ours) == len(plain) == 2 + variational + len(list(model.parameters()))
    for a, b in zip(ours, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_heads_and_fused_encoding_agree_with_the_plain_layers(monkeypatch):
    torch.manual_seed(0)
    x = torch.rand(3, 1, 28, 28)
    dense = build(28, 1, [1, 2, 2], "model.enc_dense=16")  # heads after a dense layer
    mu, logvar = dense.encoder.heads(x)
    assert mu.shape == logvar.shape == (3, 6)
    model = build(28, 1, [1, 2, 2], variational=False)
    with torch.no_grad():
        ours, fused = model.encoder.heads(x), model.encoder.heads(x, fused=True)
        monkeypatch.setattr(cpu, "on_cpu", lambda _x: False)
        plain = model.encoder.heads(x)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused, ours, rtol=1e-6, atol=1e-7)
    monkeypatch.undo()
    z = model.encoder.heads(x, fused=True)  # with gradients: the plain, differentiable path
    z.sum().backward()
    assert model.encoder.convs[0][0].weight.grad is not None


def test_module_hooks_see_every_layer_and_the_footprint_is_unchanged(monkeypatch):
    cfg = build(32, 3, [2, 2, 2]).cfg
    assert "encoder.mu (Linear)" in summary(AutoEncoder(cfg, (3, 32, 32)))
    ours = model_sizes(cfg, (3, 32, 32))
    monkeypatch.setattr(cpu, "on_cpu", lambda _x: False)
    assert model_sizes(cfg, (3, 32, 32)) == ours


def test_autocast_runs_the_plain_layers():
    """bf16 autocast (where the CPU has it) casts inside aten's ops only: the plain
    layers run, forward and backward, and give what they give without zspace's."""
    model = build(16, 3, [2, 2], "model.encoder_filters=[4,8]")
    x = torch.rand(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = model(x)
        assert not cpu.on_cpu(x)
    logits.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())

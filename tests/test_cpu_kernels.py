"""zspace's CPU formulation (zspace/models/cpu.py: the encoder's convolutions fused
with their LeakyReLU at inference) and the in-place activations compute what the plain
layers compute (docs/performance.md)."""

import pytest
import torch
from test_models import build
from torch import nn

from zspace.models import cpu
from zspace.models.autoencoder import AutoEncoder, summary
from zspace.models.footprint import model_sizes


@pytest.mark.parametrize("variational", [False, True])
def test_in_place_activations_give_the_same_outputs_and_gradients(monkeypatch, variational):
    """A reference-shaped net, float32 as trained: activations in place (as zspace runs
    them) against out of place."""
    torch.manual_seed(0)
    model = build(32, 3, [2, 2, 2], variational=variational)
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


def test_autocast_encodes_with_the_plain_layers():
    """Under bf16 autocast (where the CPU has it) the fused op would meet bf16 inputs
    and float32 weights: encoding runs the plain layers."""
    model = build(16, 3, [2, 2], "model.encoder_filters=[4,8]")
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert not cpu.on_cpu(x)
        out = model.encode(x)
    assert out.mu.dtype == torch.bfloat16 and torch.isfinite(out.mu.float()).all()

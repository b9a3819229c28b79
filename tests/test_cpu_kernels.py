"""zspace's CPU formulation (zspace/models/cpu.py: the encoder's convolutions fused
with their LeakyReLU at inference) and the in-place activations compute what the plain
layers compute (docs/performance.md)."""

import warnings

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


@pytest.mark.parametrize("case", ["plain", "broadcast-gradient", "strided-input", "no-bias"])
def test_onednn_linear_gives_linear_outputs_and_gradients(monkeypatch, case):
    """cpu.Linear's three oneDNN products (forced on, whatever the CPU) against
    F.linear, including the stride-0 gradient of a sum and a transposed input."""
    if cpu.MATMUL is None:
        pytest.skip("this torch has no oneDNN linear")
    monkeypatch.setattr(cpu, "ONEDNN_LINEAR", True)
    torch.manual_seed(0)
    layer = cpu.Linear(300, 70, bias=case != "no-bias")
    assert list(layer.state_dict()) == list(nn.Linear(300, 70, bias=case != "no-bias").state_dict())
    x = torch.randn(300, 50).t() if case == "strided-input" else torch.randn(50, 300)
    x.requires_grad_()
    params = [x, *layer.parameters()]
    ours, plain = layer(x), nn.functional.linear(x, layer.weight, layer.bias)
    assert "OneDnnLinear" in type(ours.grad_fn).__name__
    grad = None if case == "broadcast-gradient" else torch.randn_like(ours)
    out_ours, out_plain = (ours.sum(), plain.sum()) if grad is None else (ours, plain)
    got = torch.autograd.grad(out_ours, params, grad)
    want = torch.autograd.grad(out_plain, params, grad)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_onednn_linear_steps_aside_for_tracing_autocast_and_other_shapes(monkeypatch):
    monkeypatch.setattr(cpu, "ONEDNN_LINEAR", cpu.MATMUL is not None)
    layer = cpu.Linear(8, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace's notice
        graph = torch.jit.trace(layer, torch.randn(2, 8)).graph
    assert "mkldnn" not in str(graph) and "linear" in str(graph)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.randn(2, 8)).dtype == torch.bfloat16
    assert layer(torch.randn(3, 2, 8)).grad_fn.name() != "_OneDnnLinearBackward"
    assert layer(torch.randn(3, 2, 8)).shape == (3, 2, 4)
    empty = torch.randn(0, 8, requires_grad=True)  # a DDP rank's share of a last batch
    layer(empty).sum().backward()
    assert empty.grad.shape == (0, 8) and torch.equal(layer.weight.grad, torch.zeros(4, 8))
    wide = cpu.Linear(8, 4).double()
    assert wide(torch.randn(2, 8, dtype=torch.float64)).grad_fn.name() == "AddmmBackward0"


def test_chunked_features_equal_one_pass_over_the_batch(monkeypatch):
    """flat_features runs chunks whose widest activation fits CHUNK_BYTES (here 3
    images, so 7 = 3 + 3 + 1) and returns what flatten(blocks(x)) does."""
    torch.manual_seed(0)
    model = build(28, 1, [1, 2, 2], variational=False)
    convs = model.encoder.convs
    x = torch.rand(7, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    sizes, h = [x[0].numel()], x[:1]
    for block in convs:
        h = block(h)
        sizes.append(h.numel())
    assert cpu.widest(convs, (1, 28, 28)) == max(sizes)
    for padding in ("same", "valid"):
        other = nn.Sequential(nn.Conv2d(1, 4, 3, padding=padding), nn.Conv2d(4, 2, 5, 2, 1))
        want_shape = other(torch.zeros(1, 1, 28, 28)).shape
        assert cpu.conv_inputs(other, (1, 1, 28, 28))[-1] == (None, tuple(want_shape))
    monkeypatch.setattr(cpu, "CHUNK_BYTES", 3 * max(sizes) * 4 + 1)
    calls = []
    fused = cpu.fused_convs
    monkeypatch.setattr(cpu, "fused_convs", lambda b, h, w: calls.append(len(h)) or fused(b, h, w))
    with torch.no_grad():
        got = cpu.flat_features(convs, x)
        want = torch.flatten(convs(x), 1)
    assert calls == [3, 3, 1]
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_packed_weights_follow_every_change_of_the_weights():
    """The packed weights are reused while the weights are unchanged, and repacked after
    an in-place change, a load and a change through ``.data`` (no version bump)."""
    torch.manual_seed(0)
    model = build(28, 1, [1, 2, 2], variational=False).eval()
    x = torch.rand(5, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    conv = model.encoder.convs[1][0]

    def check() -> None:
        with torch.no_grad():
            fused = model.encoder.heads(x, fused=True)
            plain = model.encoder.z(torch.flatten(model.encoder.convs(x), 1))
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)

    check()
    if cpu.REORDER is not None:
        packed = cpu._PACKED[conv][2]
        check()
        assert cpu._PACKED[conv][2] is packed  # reused
    with torch.no_grad():
        conv.weight.mul_(-2.0)
    check()
    model.load_state_dict(build(28, 1, [1, 2, 2], variational=False).state_dict())
    check()
    conv.weight.data.add_(0.25)
    check()

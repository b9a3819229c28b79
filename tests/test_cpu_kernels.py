"""zspace's CPU formulation (zspace/models/cpu.py: the encoder's convolutions fused
with their LeakyReLU at inference, in cache-sized chunks with packed weights; the dense
layers' products in oneDNN) and the in-place activations compute what the plain layers
compute (docs/performance.md)."""

import copy
import warnings

import pytest
import torch
from test_models import build
from torch import nn
from torch.autograd import forward_ad

from zspace.core import device
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


@pytest.mark.parametrize(
    "case",
    ["plain", "broadcast-gradient", "strided-input", "no-bias", "frozen-weight", "frozen-input"],
)
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
    x.requires_grad_(case != "frozen-input")
    layer.weight.requires_grad_(case != "frozen-weight")
    params = [t for t in (x, *layer.parameters()) if t.requires_grad]
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the flags' note on Intel GPUs' TF32
        with torch.backends.mkldnn.flags(enabled=False):
            assert layer(torch.randn(2, 8)).grad_fn.name() == "AddmmBackward0"
    with warnings.catch_warnings(), forward_ad.dual_level():
        warnings.simplefilter("ignore", DeprecationWarning)  # make_dual scripts a helper
        dual = forward_ad.make_dual(torch.randn(2, 8), torch.randn(2, 8))
        assert forward_ad.unpack_dual(layer(dual)).tangent.shape == (2, 4)
    assert "linear" in str(torch.fx.symbolic_trace(layer).graph)
    x = torch.randn(2, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script's notice
        torch.testing.assert_close(torch.jit.script(layer)(x), layer(x))
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
    model = build(28, 1, [1, 2, 2], variational=False).eval()
    convs = model.encoder.convs
    x = torch.rand(7, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    sizes, h = [x[0].numel()], x[:1]
    for block in convs:
        h = block(h)
        sizes.append(h.numel())
    assert cpu.widest(convs, (1, 28, 28)) == max(sizes)
    assert cpu.widest(nn.Sequential(nn.Conv2d(3, 2, 3, 4, 1)), (3, 32, 32)) == 3 * 32 * 32
    for padding in ("same", "valid"):
        block = nn.Sequential(nn.Conv2d(1, 4, 3, padding=padding), nn.LeakyReLU(0.3))
        other = nn.Sequential(block, nn.Sequential(nn.Conv2d(4, 2, 5, 2, 1), nn.LeakyReLU()))
        want_shape = other(torch.zeros(1, 1, 28, 28)).shape
        assert cpu.conv_inputs(other, (1, 1, 28, 28))[-1] == (None, tuple(want_shape))
        with torch.no_grad():  # a string padding: that block runs as it is
            got = cpu.flat_features(other.eval(), x)
            torch.testing.assert_close(got, torch.flatten(other(x), 1), rtol=1e-6, atol=1e-7)
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


def test_onednn_linear_second_derivatives_and_functorch_match_linear(monkeypatch):
    """create_graph (a gradient penalty) and torch.func's transforms differentiate
    cpu.Linear as F.linear: oneDNN's op has no derivative of its own."""
    monkeypatch.setattr(cpu, "ONEDNN_LINEAR", cpu.MATMUL is not None)
    torch.manual_seed(0)
    layer = cpu.Linear(30, 7)
    x = torch.randn(5, 30, requires_grad=True)

    def penalty(f):
        (gx,) = torch.autograd.grad(f(x).tanh().sum(), x, create_graph=True)
        return torch.autograd.grad(gx.square().sum(), [x, layer.weight])

    def plain(t: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(t, layer.weight, layer.bias)

    for a, b in zip(penalty(layer), penalty(plain), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    ours, want = torch.func.jacrev(layer)(x.detach()), torch.func.jacrev(plain)(x.detach())
    torch.testing.assert_close(ours, want, rtol=1e-5, atol=1e-6)


def test_encoding_in_training_mode_keeps_batch_norm_over_the_whole_batch(monkeypatch):
    """A model in training mode (BatchNorm on the batch's statistics) encodes the batch in
    one pass, as the plain layers do: the same latents and running statistics."""
    monkeypatch.setattr(cpu, "CHUNK_BYTES", 1)  # a chunk per image, were it chunked
    torch.manual_seed(0)
    ours = build(28, 1, [1, 2, 2], "model.batch_norm=true", variational=False)
    plain = copy.deepcopy(ours)
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        z = ours.encode(x).z
        monkeypatch.setattr(cpu, "on_cpu", lambda _x: False)
        want = plain.encode(x).z
    torch.testing.assert_close(z, want, rtol=1e-5, atol=1e-5)
    bn, bn_plain = ours.encoder.convs[0][1], plain.encoder.convs[0][1]
    assert int(bn.num_batches_tracked) == int(bn_plain.num_batches_tracked) == 1


@pytest.mark.parametrize(
    ("flags", "vendor", "faster"),
    [
        ("fpu avx2 avx512f avx512bw", "AuthenticAMD", True),
        ("fpu avx2 avx512f avx512bw", "GenuineIntel", False),
        ("fpu avx2 fma", "AuthenticAMD", False),
        ("", "", False),
    ],
)
def test_onednn_products_are_chosen_where_mkl_takes_its_avx2_code(
    monkeypatch, flags, vendor, faster
):
    info = {"flags": flags, "vendor_id": vendor}
    monkeypatch.setattr(device, "cpu_info", lambda field: info.get(field, ""))
    assert device.onednn_matmul_faster() is faster

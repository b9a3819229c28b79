import math

import pytest
import torch

from zspace.config import load_config
from zspace.models.autoencoder import AutoEncoder
from zspace.models.losses import fact_at_epoch, kl_divergence, reconstruction_loss, vae_loss


def test_bce_matches_hand_computation():
    # batch 2, channels 3, 1x2 pixels
    p = torch.tensor(
        [[[[0.9, 0.2]], [[0.5, 0.5]], [[0.1, 0.7]]], [[[0.3, 0.3]], [[0.6, 0.4]], [[0.8, 0.2]]]]
    )
    t = torch.tensor(
        [[[[1.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]]], [[[0.0, 1.0]], [[0.5, 0.5]], [[1.0, 1.0]]]]
    )
    expected = 0.0
    for b in range(2):
        image = 0.0
        for w in range(2):
            bce = [
                -(
                    t[b, c, 0, w] * math.log(p[b, c, 0, w])
                    + (1 - t[b, c, 0, w]) * math.log(1 - p[b, c, 0, w])
                )
                for c in range(3)
            ]
            image += sum(bce) / 3  # channel mean per pixel, summed over pixels
        expected += float(image) / 2  # batch mean
    logits = torch.log(p / (1 - p))
    assert reconstruction_loss(logits, t).item() == pytest.approx(expected, rel=1e-6)
    assert reconstruction_loss(logits, t, per_pixel=True).item() == pytest.approx(
        expected / 2, rel=1e-6
    )
    mse = ((p - t) ** 2).mean(dim=1).sum(dim=(1, 2)).mean()
    assert reconstruction_loss(logits, t, "mse").item() == pytest.approx(mse.item(), rel=1e-6)


def test_kl_closed_form():
    mu = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [-1.0, 0.5]])
    per = []
    for m, lv in zip(mu.tolist(), logvar.tolist(), strict=True):
        per.append(sum(0.5 * (math.exp(v) + a * a - 1 - v) for a, v in zip(m, lv, strict=True)))
    assert kl_divergence(mu, logvar).item() == pytest.approx(sum(per) / 2, rel=1e-6)
    assert kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5)).item() == 0.0


def test_terms_add_up_and_fact_weights_kl():
    logits, target = torch.randn(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    terms = vae_loss(logits, target, mu, logvar, fact=5.0)
    assert terms.kl.item() == pytest.approx(5.0 * terms.kl_raw.item())
    assert terms.total.item() == pytest.approx(terms.reco.item() + terms.kl.item())
    ae = vae_loss(logits, target, None, None, fact=5.0)
    assert ae.kl.item() == 0.0 and ae.total.item() == ae.reco.item()


def test_fact_warmup_is_linear():
    assert [fact_at_epoch(2.0, 4, e) for e in (1, 2, 4, 9)] == [0.5, 1.0, 2.0, 2.0]
    assert fact_at_epoch(2.0, 0, 1) == 2.0


def _model():
    cfg = load_config(
        None, ["model.encoder_filters=[4, 8]", "model.encoder_strides=[2, 2]", "model.z_dim=3"]
    )
    torch.manual_seed(0)
    return AutoEncoder(cfg.model, (1, 8, 8))


def test_kl_gradient_reaches_heads_and_convs():
    model = _model()
    x = torch.rand(5, 1, 8, 8)
    _, enc = model(x)
    kl_divergence(enc.mu, enc.logvar).backward()
    for name in ("encoder.mu.weight", "encoder.logvar.weight", "encoder.convs.0.0.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert model.decoder.dense.weight.grad is None  # KL does not touch the decoder


def test_fact_zero_kl_gives_no_gradient():
    model = _model()
    x = torch.rand(5, 1, 8, 8)
    logits, enc = model(x)
    terms = vae_loss(logits, x, enc.mu, enc.logvar, fact=0.0)
    terms.kl.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.count_nonzero(g) == 0 for g in grads)

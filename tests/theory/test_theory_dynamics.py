"""Entropy / covariance identities of a tabular softmax policy (theory.dynamics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import dynamics as dyn

FAST = settings(deadline=None, max_examples=40)


@st.composite
def discrete_pairs(draw):
    k = draw(st.integers(1, 8))
    x = draw(st.lists(st.integers(-4, 4), min_size=k, max_size=k))  # ties in X are the interesting case
    y = draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=k, max_size=k))
    w = draw(st.lists(st.integers(0, 5), min_size=k, max_size=k).filter(lambda w: sum(w) > 0))
    return x, y, [v / sum(w) for v in w]


@FAST
@given(discrete_pairs())
def test_layer_cake_identity_equals_direct_covariance(pair):
    x, y, p = pair
    direct = float(np.sum(np.asarray(p) * (np.asarray(x) - np.dot(p, x)) * (np.asarray(y) - np.dot(p, y))))
    xt, yt, pt = (torch.tensor(v, dtype=torch.float64) for v in (x, y, p))
    assert dyn.covariance(xt, yt, pt).item() == pytest.approx(direct, abs=1e-12)
    # Both sides are sums of <= 8·8 terms of size <= 8·6: 1e-12 is rounding only.
    assert dyn.layer_cake_covariance(xt, yt, pt).item() == pytest.approx(direct, abs=1e-12)


def test_layer_cake_batch_dims():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (3, 6), generator=gen).double()
    y = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    p = torch.softmax(torch.randn(3, 6, generator=gen, dtype=torch.float64), -1)
    assert torch.allclose(dyn.layer_cake_covariance(x, y, p), dyn.covariance(x, y, p), atol=1e-14, rtol=0)


def test_entropy_and_covariance_against_numpy():
    logits = torch.tensor([0.2, -1.3, 2.1, 0.0], dtype=torch.float64)
    adv = torch.tensor([1.0, -0.5, 0.3, 2.0], dtype=torch.float64)
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum()
    assert dyn.softmax_entropy(logits).item() == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-14)
    logp = np.log(p)
    cov = float((p * (logp - p @ logp) * (adv.numpy() - p @ adv.numpy())).sum())
    assert dyn.policy_logp_advantage_covariance(logits, adv).item() == pytest.approx(cov, abs=1e-14)
    assert dyn.first_order_entropy_change(logits, adv, 0.1).item() == pytest.approx(-0.1 * cov, abs=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_proposition_1_remainder_is_second_order(seed):
    """(H(θ+ηA) − H(θ) + η Cov(log π, A))/η² stays bounded and tends to ½ Aᵀ∇²H A."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, generator=gen, dtype=torch.float64)
    adv = torch.randn(6, generator=gen, dtype=torch.float64)
    curvature = 0.5 * torch.autograd.functional.hvp(dyn.softmax_entropy, logits, adv)[1] @ adv
    cov = dyn.policy_logp_advantage_covariance(logits, adv)
    remainders = []
    for eta in (1e-1, 1e-2, 1e-3, 1e-4):
        change = dyn.softmax_entropy(dyn.natural_gradient_step(logits, adv, eta)) - dyn.softmax_entropy(logits)
        remainders.append(((change + eta * cov) / eta**2).item())
        # Remainder − curvature is O(η) (third-order term); the entropy difference has
        # ~1e-16 rounding, i.e. 1e-16/η² = 1e-8 at η = 1e-4.
        assert abs(remainders[-1] - curvature.item()) <= 10 * eta * max(1.0, abs(curvature.item())) + 1e-7
    assert max(abs(r) for r in remainders) < 10 * max(1.0, abs(curvature.item()))
    # Without the covariance term the ratio blows up like 1/η: the first-order term is really there.
    eta = 1e-4
    change = dyn.softmax_entropy(dyn.natural_gradient_step(logits, adv, eta)) - dyn.softmax_entropy(logits)
    assert abs(change.item() / eta**2) > 100 * abs(curvature.item()) or abs(cov.item()) < 1e-6


def test_natural_gradient_step_is_the_fisher_preconditioned_gradient():
    logits = torch.tensor([0.5, -0.2, 1.0, -1.5], dtype=torch.float64)
    adv = torch.tensor([1.0, 0.0, -1.0, 2.0], dtype=torch.float64)
    stepped = dyn.natural_gradient_step(logits, adv, 0.3)
    assert torch.allclose(stepped, logits + 0.3 * adv, atol=0, rtol=0)
    # Fisher of a softmax: F = diag(π) − ππᵀ; F·A equals the vanilla gradient π ⊙ (A − E_π A).
    p = torch.softmax(logits, -1)
    fisher = torch.diag(p) - torch.outer(p, p)
    assert torch.allclose(fisher @ adv, dyn.softmax_policy_gradient(logits, adv), atol=1e-15, rtol=0)


def test_softmax_policy_gradient_matches_autograd():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    adv = torch.randn(3, 7, generator=gen, dtype=torch.float64)
    objective = (torch.softmax(logits, -1) * adv).sum()
    (grad,) = torch.autograd.grad(objective, logits)
    assert torch.allclose(dyn.softmax_policy_gradient(logits.detach(), adv), grad, atol=1e-15, rtol=0)


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="logits"):
        dyn.softmax_entropy(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="advantages"):
        dyn.natural_gradient_step(torch.zeros(2), torch.tensor([float("inf"), 0.0]), 0.1)

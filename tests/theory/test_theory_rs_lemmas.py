"""theory.rs_lemmas: the exact one-step change of π(A*) and the β₀/β₁ thresholds of RS-GRPO Lemmas 3–4."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from theory import rs_lemmas as L

D = torch.float64


def test_step_change_matches_a_hand_computed_step():
    # r = (1, 0.8, 0), π = (0.05, 0.9, 0.05), β = 0, η = 1: θ' = θ + π(r − 0.77) = θ + (0.0115, 0.027, −0.0385).
    rewards = torch.tensor([1.0, 0.8, 0.0], dtype=D)
    probs = torch.tensor([0.05, 0.9, 0.05], dtype=D)
    new = [p * math.exp(g) for p, g in zip(probs.tolist(), (0.0115, 0.027, -0.0385))]
    expected = new[0] / sum(new) - 0.05
    got = L.optimal_mass_step_change(rewards, probs.log(), (0.0,), (1.0,))
    assert got.shape == (1, 1) and float(got) == pytest.approx(expected, abs=1e-15)


def test_rs_gradient_equals_autograd_of_the_objective():
    gen = torch.Generator().manual_seed(0)
    rewards = torch.rand(6, generator=gen, dtype=D)
    logits = torch.randn(6, generator=gen, dtype=D, requires_grad=True)
    beta = 3.0
    objective = torch.logsumexp(beta * rewards + torch.log_softmax(logits, -1), -1) / beta  # (1/β) log E_π e^{βr}
    (auto,) = torch.autograd.grad(objective, logits)
    torch.testing.assert_close(L.rs_grpo_gradient(rewards, logits.detach(), beta), auto, rtol=0, atol=1e-14)


def test_derivative_is_the_small_step_limit_of_the_exact_change():
    gen = torch.Generator().manual_seed(1)
    rewards, logits = torch.rand(20, 5, generator=gen, dtype=D), 2 * torch.randn(20, 5, generator=gen, dtype=D)
    betas = (0.0, 0.5, 4.0, 50.0)
    eta = 1e-6
    change = L.optimal_mass_step_change(rewards, logits, betas, (eta,))[..., 0]
    deriv = L.optimal_mass_derivative_curve(rewards, logits, betas)
    # change/η = derivative + O(η): the second derivative is O(1), so |error| <~ 1e-6; round-off 1e-16/η = 1e-10.
    torch.testing.assert_close(change / eta, deriv, rtol=0, atol=1e-5)
    scalar = torch.stack([L.optimal_mass_derivative(rewards, logits, b) for b in betas], -1)
    torch.testing.assert_close(scalar, deriv, rtol=0, atol=1e-15)


def test_per_instance_grids_equal_the_shared_grid_rows():
    gen = torch.Generator().manual_seed(2)
    rewards, logits = torch.rand(3, 4, generator=gen, dtype=D), torch.randn(3, 4, generator=gen, dtype=D)
    grids = torch.tensor([[0.1, 1.0, 10.0], [0.2, 2.0, 20.0], [0.3, 3.0, 30.0]], dtype=D)
    per = L.optimal_mass_step_change(rewards, logits, grids, (0.1, 10.0))
    for i in range(3):
        shared = L.optimal_mass_step_change(rewards[i], logits[i], grids[i].tolist(), (0.1, 10.0))
        torch.testing.assert_close(per[i], shared, rtol=0, atol=1e-15)


def test_value_gap_and_ties():
    rewards = torch.tensor([[0.2, 0.9, 0.9, 0.5], [1.0, 1.0, 1.0, 1.0]], dtype=D)
    gap = L.value_gap(rewards)
    assert float(gap[0]) == pytest.approx(0.4, abs=1e-15) and math.isnan(float(gap[1]))
    assert L.optimal_mask(rewards[0]).tolist() == [False, True, True, False]


GRID = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0]


@pytest.mark.parametrize(
    "curve, beta0, beta1",
    [
        ([-1.0, -0.5, 0.2, 0.5, 0.3, 0.1], 0.5, 1.0),  # rises to a peak at 1, then shrinks
        ([0.1, -0.2, 0.3, 0.4, 0.2, 0.1], 0.5, 1.0),  # positive, dips, positive again: β₀ is where it *stays* > 0
        ([-1.0] * 6, math.nan, math.nan),  # never an improvement
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 0.1, math.nan),  # still rising on the last interval: no β₁ on this grid
        ([0.5, 0.4, 0.3, 0.2, 0.1, -0.1], math.nan, math.nan),  # last point not positive: no β₀
        ([0.6, 0.5, 0.4, 0.3, 0.2, 0.1], 0.1, 0.1),
    ],
)
def test_thresholds_on_hand_built_curves(curve, beta0, beta1):
    values = torch.tensor(curve, dtype=D)
    got0, got1 = float(L.lemma3_threshold(GRID, values)), float(L.lemma4_threshold(GRID, values))
    assert (math.isnan(got0) and math.isnan(beta0)) or got0 == beta0
    assert (math.isnan(got1) and math.isnan(beta1)) or got1 == beta1


def test_thresholds_require_every_learning_rate():
    # Two learning rates: the second one is negative at β = 0.5, so β₀ moves to 1.0; it rises
    # between 1.0 and 2.0, so β₁ moves to 2.0.
    a = [-1.0, -0.5, 0.2, 0.5, 0.3, 0.1]
    b = [-1.0, -0.5, -0.1, 0.2, 0.3, 0.1]
    changes = torch.tensor([a, b], dtype=D).T  # (n_β, n_lr)
    assert float(L.lemma3_threshold(GRID, changes, lr_axis=True)) == 1.0
    assert float(L.lemma4_threshold(GRID, changes, lr_axis=True)) == 2.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(betas=(1.0, 0.5)), "betas must be strictly increasing"),
        (dict(betas=()), "betas must be a non-empty grid"),
        (dict(betas=(0.0, float("inf"))), "betas must be finite"),
        (dict(lrs=(0.0, 1.0)), "lrs must be > 0"),
        (dict(lrs=(-1.0,)), "lrs must be > 0"),
        (dict(lrs=(float("nan"),)), "lrs must be finite"),
        (dict(logits=torch.zeros(4, dtype=D)), "must have the same shape"),
    ],
)
def test_step_change_rejects_bad_input(kwargs, match):
    args = dict(
        rewards=torch.tensor([1.0, 0.5, 0.0], dtype=D), logits=torch.zeros(3, dtype=D), betas=(0.0, 1.0), lrs=(1.0,)
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        L.optimal_mass_step_change(args["rewards"], args["logits"], args["betas"], args["lrs"])


def test_threshold_rejects_a_mismatched_curve():
    with pytest.raises(ValueError, match="must have 6 betas"):
        L.lemma3_threshold(GRID, torch.zeros(5, dtype=D))
    with pytest.raises(ValueError, match="real floating"):
        L.lemma3_threshold(GRID, torch.zeros(6, dtype=torch.int64))


def test_every_learning_rate_criterion_matches_tiny_and_huge_steps():
    """g(a*) > g(a) ∀a ≠ a* ⇔ the step raises π(a*) at every η > 0 (unique optimum): where it holds, every
    sampled η raises π(a*); where it fails, a huge η lowers it (the mass moves to argmax g ≠ a*)."""
    gen = torch.Generator().manual_seed(4)
    rewards, logits = torch.rand(40, 5, generator=gen, dtype=D), 2.5 * torch.randn(40, 5, generator=gen, dtype=D)
    betas = tuple(float(b) for b in np.logspace(-1, 3, 30))
    ok = L.raises_optimal_mass_for_every_lr(rewards, logits, betas)  # (40, 30)
    changes = L.optimal_mass_step_change(rewards, logits, betas, (1e-4, 1e-2, 1.0, 1e2, 1e6))
    assert bool(ok.any()) and bool((~ok).any())  # both cases occur on this sample
    assert bool((changes[ok] > 0).all())
    assert bool((changes[..., -1][~ok] < 0).all())  # η = 1e6: π' concentrates on argmax g, which is not a*
    # So the exact β₀ is never below the one read off a finite η grid.
    exact = L.lemma3_threshold(betas, ok)
    sampled = L.lemma3_threshold(betas, changes[..., :-1], lr_axis=True)
    both = ~torch.isnan(exact) & ~torch.isnan(sampled)
    assert bool((exact[both] >= sampled[both]).all())


def test_shrinking_gaps_make_the_improvement_shrink_at_every_learning_rate():
    """Beyond the gaps threshold (and β₀ for every η), π'_β(a*) − π(a*) is non-increasing in β
    for η from 1e-4 to 1e6."""
    gen = torch.Generator().manual_seed(6)
    rewards, logits = torch.rand(30, 5, generator=gen, dtype=D), 2.5 * torch.randn(30, 5, generator=gen, dtype=D)
    betas = torch.tensor(np.logspace(-2, 4, 121), dtype=D) / L.value_gap(rewards)[:, None]
    start = torch.maximum(
        L.gaps_shrink_threshold(betas, L.optimal_gradient_gaps(rewards, logits, betas)),
        L.lemma3_threshold(betas, L.raises_optimal_mass_for_every_lr(rewards, logits, betas)),
    )
    assert not bool(torch.isnan(start).any())
    changes = L.optimal_mass_step_change(rewards, logits, betas, (1e-4, 1e-1, 1e2, 1e6))
    beyond = betas >= start[:, None]  # (30, 121)
    rises = torch.diff(changes, dim=1) > 1e-14  # (30, 120, 4)
    assert not bool((rises & beyond[:, :-1, None]).any())
    assert bool((changes[beyond] > 0).all())

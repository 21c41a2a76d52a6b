"""theory.claims helpers against enumeration, autograd and the unbiasedness of pass@k."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from theory import claims
from theory import dynamics as dyn
from theory.bundles import bundle_score_distribution
from theory.passk import pass_at_k


@pytest.mark.parametrize("p", [0.0, 0.03, 0.4, 1.0])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_unbiased_pass_at_k_averages_to_exact_pass_at_k(p, k):
    """E_{c ~ Binomial(n, p)} ρ(n, c, k) = 1 − (1 − p)^k: the estimator is unbiased."""
    n = 10
    expectation = math.fsum(math.comb(n, c) * p**c * (1 - p) ** (n - c) * pass_at_k(n, c, k).item() for c in range(n + 1))
    exact = claims.exact_pass_at_k(torch.tensor(p, dtype=torch.float64), k).item()
    assert exact == pytest.approx(1 - (1 - p) ** k, abs=1e-15)
    # 11 terms of lgamma-based ratios: ~1e-14 rounding.
    assert expectation == pytest.approx(exact, abs=1e-13)


def test_bundle_score_law_matches_enumeration():
    level_probs = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.0, 0.4], [0.1, 0.1, 0.8]], dtype=torch.float64)
    law = claims.bundle_score_law(level_probs)
    expected = [0.0] * 7
    for levels in itertools.product(range(3), repeat=3):
        expected[sum(levels)] += math.prod(level_probs[b, j].item() for b, j in enumerate(levels))
    assert torch.allclose(law, torch.tensor(expected, dtype=torch.float64), atol=1e-15, rtol=0)
    accuracies = torch.tensor([0.3, 0.9, 0.5, 0.05], dtype=torch.float64)
    binary = claims.bundle_score_law(torch.stack([1 - accuracies, accuracies], -1))
    assert torch.allclose(binary, bundle_score_distribution(accuracies)[1], atol=1e-15, rtol=0)


def test_layer_cake_transform_covariance_equals_direct_covariance():
    gen = torch.Generator().manual_seed(0)
    rewards = torch.tensor([0.0, 1.0, 1.0, 0.5, 2.0, 0.0], dtype=torch.float64)
    probs = torch.softmax(torch.randn(6, generator=gen, dtype=torch.float64), -1)
    log_probs = probs.log()
    for h in (lambda r: r, lambda r: r**3, lambda r: torch.clamp(r, 0.5, 1.0), lambda r: torch.exp(2 * r)):
        transformed = h(rewards)
        direct = dyn.covariance(transformed, log_probs, probs)
        assert claims.layer_cake_transform_covariance(transformed, rewards, log_probs, probs).item() == pytest.approx(
            direct.item(), abs=1e-13
        )


def test_softmax_prob_derivative_matches_autograd():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(5, generator=gen, dtype=torch.float64)
    direction = torch.randn(5, generator=gen, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, -1), logits)
    assert torch.allclose(claims.softmax_prob_derivative(logits, direction), jac @ direction, atol=1e-15, rtol=0)


def test_dependence_conditions_on_hand_cases():
    rewards = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    # Likelier responses are better everywhere: every threshold covariance with log π is >= 0.
    increasing = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    decreasing = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    assert bool(claims.positively_dependent(rewards, increasing))
    assert not bool(claims.positively_dependent(rewards, decreasing))
    # Assumption 1 wants the opposite sign below q_α: decreasing probabilities in the lower tail only.
    assert not bool(claims.assumption_1_holds(rewards, increasing, torch.tensor(1.0), torch.tensor(2.0)))
    lower, upper, slices = claims.threshold_covariances(rewards, increasing.log(), increasing)
    assert lower.tolist() == [0.0, 1.0] and upper.tolist() == [1.0, 2.0]
    assert bool((slices > 0).all())
    h_low, h_high = rewards.clone(), 2 * rewards
    assert bool(claims.slope_dominates(h_low, h_high, rewards))
    assert not bool(claims.slope_dominates(h_high, h_low, rewards))

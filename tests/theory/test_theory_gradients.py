"""Theorem-1 style checks: score-function gradients of the population advantages
equal finite-difference gradients of the risk measures they claim to optimise.

Policy: π = softmax(θ) over K responses with fixed rewards. For any advantage A,
E_π[A ∇_θ log π] = π ⊙ (A − E_π A) (``softmax_policy_gradient``, itself checked
against autograd in test_theory_dynamics.py). The objective J(θ) = ρ(rewards,
softmax(θ)) is differentiated by central differences.

Tail measures are piecewise smooth in θ: they have kinks where a cumulative
probability crosses α or β. Every instance asserts that the CDF stays at least
``MARGIN`` away from the levels, far more than a step h = 1e-6 can move it, so
the finite difference never straddles a kink.

Tolerance: central differences err by h²/6·|J'''| + eps·|J|/h ≈ 1e-12 + 2e-10
for rewards of order 1; 1e-8 leaves a wide margin yet is six orders of magnitude
below the size of the gradients compared.
"""

from __future__ import annotations

import pytest
import torch

from theory import population as pop
from theory import risk_measures as rm
from theory.dynamics import softmax_policy_gradient

H = 1e-6
TOL = 1e-8
MARGIN = 1e-3


def finite_difference_gradient(objective, theta: torch.Tensor) -> torch.Tensor:
    grad = torch.zeros_like(theta)
    for i in range(theta.numel()):
        step = torch.zeros_like(theta)
        step[i] = H
        grad[i] = (objective(theta + step) - objective(theta - step)) / (2 * H)
    return grad


def instance(seed: int, k: int = 9, binary: bool = False):
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(k, generator=gen, dtype=torch.float64)
    if binary:
        rewards = torch.tensor([1.0, 0.0] * (k // 2) + [0.0] * (k % 2), dtype=torch.float64)
    else:
        # Distinct rewards: every atom is its own response, so the tail measures are smooth off the kinks.
        rewards = torch.randperm(k, generator=gen).double() / k + 0.05 * torch.rand(
            k, generator=gen, dtype=torch.float64
        )
    return theta, rewards


def assert_away_from_levels(rewards, theta, *levels):
    probs = torch.softmax(theta, -1)
    cdf = torch.cumsum(probs[torch.argsort(rewards)], -1)
    for u in levels:
        assert float((cdf - u).abs().min()) > MARGIN, f"instance has a CDF value within {MARGIN} of level {u}"


def score_function_gradient(population_advantage, theta):
    return softmax_policy_gradient(theta, population_advantage)


SEEDS = [0, 1, 2, 3]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha,beta", [(0.2, 0.8), (0.0, 0.5), (0.35, 1.0)])
def test_population_rvar_is_the_gradient_of_rvar(seed, alpha, beta):
    theta, rewards = instance(seed)
    assert_away_from_levels(rewards, theta, *(u for u in (alpha, beta) if 0 < u < 1))
    advantage = pop.population_rvar(rewards, torch.softmax(theta, -1), alpha, beta)
    fd = finite_difference_gradient(lambda t: rm.rvar(rewards, torch.softmax(t, -1), alpha, beta), theta)
    assert torch.allclose(score_function_gradient(advantage, theta), fd, atol=TOL, rtol=0)
    assert fd.abs().max() > 1e-3  # the comparison is not between two zeros


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("omega", [0.0, 0.5, 2.0])
def test_population_mvar_is_the_gradient_of_mvar(seed, omega):
    alpha, beta = 0.2, 0.8
    theta, rewards = instance(seed)
    assert_away_from_levels(rewards, theta, alpha, beta)
    advantage = pop.population_mvar(rewards, torch.softmax(theta, -1), alpha, beta, omega)
    fd = finite_difference_gradient(lambda t: rm.mvar(rewards, torch.softmax(t, -1), alpha, beta, omega), theta)
    assert torch.allclose(score_function_gradient(advantage, theta), fd, atol=TOL, rtol=0)
    assert fd.abs().max() > 1e-3


@pytest.mark.parametrize("seed", SEEDS)
def test_population_risk_seeking_mvar_is_the_gradient_of_its_documented_objective(seed):
    # Objective (our sign convention): ∫_α^β F⁻¹ + (1+ω) ∫_β^1 F⁻¹.
    alpha, beta, omega = 0.2, 0.8, 0.5
    theta, rewards = instance(seed)
    assert_away_from_levels(rewards, theta, alpha, beta)

    def objective(t):
        probs = torch.softmax(t, -1)
        return rm.quantile_integral(rewards, probs, alpha, beta) + (1 + omega) * rm.quantile_integral(
            rewards, probs, beta, 1.0
        )

    advantage = pop.population_risk_seeking_mvar(rewards, torch.softmax(theta, -1), alpha, beta, omega)
    assert bool((advantage >= 0).all())
    fd = finite_difference_gradient(objective, theta)
    assert torch.allclose(score_function_gradient(advantage, theta), fd, atol=TOL, rtol=0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", [0.1, 0.3, 0.6])
def test_population_cvar_is_the_gradient_of_cvar(seed, alpha):
    theta, rewards = instance(seed)
    assert_away_from_levels(rewards, theta, alpha)
    advantage = pop.population_cvar(rewards, torch.softmax(theta, -1), alpha)
    fd = finite_difference_gradient(lambda t: rm.cvar(rewards, torch.softmax(t, -1), alpha), theta)
    assert torch.allclose(score_function_gradient(advantage, theta), fd, atol=TOL, rtol=0)


def test_fine_reward_grid():
    # 101 rewards on a grid of [0, 1]: the quantile function is nearly continuous.
    gen = torch.Generator().manual_seed(11)
    rewards = torch.linspace(0, 1, 101, dtype=torch.float64)
    theta = 0.5 * torch.randn(101, generator=gen, dtype=torch.float64)
    assert_away_from_levels(rewards, theta, 0.2, 0.8)
    advantage = pop.population_mvar(rewards, torch.softmax(theta, -1), 0.2, 0.8, 0.5)
    fd = finite_difference_gradient(lambda t: rm.mvar(rewards, torch.softmax(t, -1), 0.2, 0.8, 0.5), theta)
    assert torch.allclose(score_function_gradient(advantage, theta), fd, atol=TOL, rtol=0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", [-4.0, -0.5, 1e-3, 2.0, 10.0])
def test_population_rs_grpo_is_the_gradient_of_the_entropic_objective(seed, beta):
    # Smooth everywhere: no margin needed. |J| <= 1.05 and the weights e^{βr}/E e^{βr}
    # stay below e^{10}, so J''' stays O(100) and 1e-8 still bounds the FD error.
    theta, rewards = instance(seed)
    advantage = pop.population_rs_grpo(rewards, torch.softmax(theta, -1), beta)
    fd = finite_difference_gradient(lambda t: rm.entropic(rewards, torch.softmax(t, -1), beta), theta)
    assert torch.allclose(score_function_gradient(advantage, theta), fd, atol=TOL, rtol=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_population_dr_grpo_and_grpo_are_gradients_of_the_mean(seed):
    theta, rewards = instance(seed)
    probs = torch.softmax(theta, -1)
    fd = finite_difference_gradient(lambda t: rm.mean(rewards, torch.softmax(t, -1)), theta)
    assert torch.allclose(score_function_gradient(pop.population_dr_grpo(rewards, probs), theta), fd, atol=TOL, rtol=0)
    # GRPO divides by the (held fixed) population std: the mean's gradient scaled by 1/(σ + eps).
    std = torch.sqrt((probs * (rewards - (probs * rewards).sum()) ** 2).sum())
    grpo = score_function_gradient(pop.population_grpo(rewards, probs, eps=1e-6), theta)
    assert torch.allclose(grpo, fd / (std + 1e-6), atol=TOL / std.item(), rtol=0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 2, 8])
def test_population_passk_is_the_gradient_of_pass_at_k(seed, k):
    theta, rewards = instance(seed, binary=True)

    def pass_at_k(t):
        p = (torch.softmax(t, -1) * rewards).sum()
        return 1 - (1 - p) ** k

    advantage = pop.population_passk(rewards, torch.softmax(theta, -1), k)
    fd = finite_difference_gradient(pass_at_k, theta)
    assert torch.allclose(score_function_gradient(advantage, theta), fd, atol=TOL, rtol=0)


def test_population_advantages_accept_batch_dims():
    gen = torch.Generator().manual_seed(4)
    rewards = torch.rand(3, 6, generator=gen, dtype=torch.float64)
    probs = torch.softmax(torch.randn(3, 6, generator=gen, dtype=torch.float64), -1)
    for f in (
        pop.population_mvar,
        pop.population_rvar,
        pop.population_rs_grpo,
        pop.population_cvar,
        pop.population_grpo,
    ):
        batched = f(rewards, probs)
        looped = torch.stack([f(rewards[i], probs[i]) for i in range(3)])
        assert torch.allclose(batched, looped, atol=1e-15, rtol=0), f.__name__


def test_population_rs_grpo_small_beta_float32():
    # Probabilities that do not sum to exactly 1 in float32 must not be amplified by 1/β.
    rewards = torch.linspace(0, 1, 10)
    probs = torch.full((10,), 0.1)
    a = pop.population_rs_grpo(rewards, probs, 1e-8)
    assert a.dtype == torch.float32
    assert torch.allclose(a, rewards - rewards.mean(), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="beta"):
        pop.population_rs_grpo(rewards, probs, float("inf"))


def test_population_passk_rejects_rewards_outside_the_unit_interval():
    with pytest.raises(ValueError, match="rewards"):
        pop.population_passk(
            torch.tensor([0.0, 1.5], dtype=torch.float64), torch.tensor([0.5, 0.5], dtype=torch.float64), 2
        )


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_risk_measures_are_autograd_differentiable_through_softmax(seed):
    """Autograd through the measures (what a user differentiating an objective gets) agrees too, without NaNs."""
    theta, rewards = instance(seed)
    assert_away_from_levels(rewards, theta, 0.2, 0.8)
    probs = torch.softmax(theta, -1)
    cases = [
        (lambda p: rm.entropic(rewards, p, 3.0), pop.population_rs_grpo(rewards, probs, 3.0)),
        (lambda p: rm.entropic(rewards, p, 1e-6), pop.population_rs_grpo(rewards, probs, 1e-6)),
        (lambda p: rm.entropic(rewards, p, -50.0), pop.population_rs_grpo(rewards, probs, -50.0)),
        (lambda p: rm.mvar(rewards, p, 0.2, 0.8, 0.5), pop.population_mvar(rewards, probs, 0.2, 0.8, 0.5)),
        (lambda p: rm.rvar(rewards, p, 0.2, 0.8), pop.population_rvar(rewards, probs, 0.2, 0.8)),
    ]
    for objective, advantage in cases:
        t = theta.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(torch.softmax(t, -1)), t)
        assert bool(torch.isfinite(grad).all())
        # Both exact up to float64 rounding of a handful of terms.
        assert torch.allclose(grad, score_function_gradient(advantage, theta), atol=1e-12, rtol=0)

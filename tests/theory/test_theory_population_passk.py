"""The pass@k population forms are the exact expectations of their sampled estimators.

Ā(a) = E[A_1 | x_1 = a] for a group of n i.i.d. responses, so E[Σ_i A_i ∇log π(x_i)] = n Σ_a π(a) Ā(a) ∇log π(a).
Checked three ways: exact enumeration of every group, Monte Carlo (within 3 standard errors), and, where the
estimator is unbiased, against the autograd gradient of its objective.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from theory import passk as pk
from theory import population as pop
from theory.dynamics import softmax_policy_gradient

D = torch.float64
GRADED = torch.tensor([0.0, 0.3, 1.0, 1.0, 0.6], dtype=D)  # a tie at the top
BINARY = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0], dtype=D)
THETA = torch.tensor([0.4, -0.3, 1.1, -1.0, 0.2], dtype=D)

CASES = {  # name: (rewards, sampled advantage of one group, population form)
    "pkpo": (GRADED, lambda x: pk.pkpo_advantage(x, 2), lambda r, p, n: pop.population_pkpo(r, p, 2, n)),
    "loo_max": (GRADED, pk.leave_one_out_max_advantage, pop.population_loo_max),
    "chen": (BINARY, lambda x: pk.chen_passk_advantage(x, 2), lambda r, p, n: pop.population_chen_passk(r, p, 2, n)),
    "reweight": (
        BINARY,
        lambda x: pk.passk_reweighted_advantage(x, 3),
        lambda r, p, n: pop.population_passk_reweight(r, p, 3, n),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_population_is_the_conditional_expectation_by_enumeration(name):
    rewards, sampled, population = CASES[name]
    probs = torch.softmax(THETA, -1)
    n = 3
    exact = torch.zeros(5, dtype=D)
    for a in range(5):
        for rest in itertools.product(range(5), repeat=n - 1):
            weight = math.prod(float(probs[j]) for j in rest)
            group = rewards[[a, *rest]]
            exact[a] += weight * float(sampled(group)[0])
    # Sums of 25 float64 products per action: round-off ~1e-16.
    torch.testing.assert_close(population(rewards, probs, n), exact, rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", sorted(CASES))
def test_expected_sampled_gradient_matches_monte_carlo_within_three_standard_errors(name):
    rewards, sampled, population = CASES[name]
    probs = torch.softmax(THETA, -1)
    n, draws = 6, 40_000
    gen = torch.Generator().manual_seed(11)
    actions = torch.multinomial(probs.expand(draws, 5), n, replacement=True, generator=gen)  # (draws, n)
    advantages = sampled(rewards[actions])  # (draws, n)
    score = torch.eye(5, dtype=D)[actions] - probs  # ∇_θ log π(x_i), (draws, n, 5)
    per_group = (advantages.unsqueeze(-1) * score).sum(1)  # Σ_i A_i ∇log π(x_i)
    mean, se = per_group.mean(0), per_group.std(0) / math.sqrt(draws)
    exact = n * softmax_policy_gradient(THETA, population(rewards, probs, n))
    # 3 standard errors per coordinate (fixed seed, so the test is deterministic).
    assert bool(((mean - exact).abs() <= 3 * se + 1e-12).all()), (mean, exact, se)
    assert float(exact.abs().max()) > 10 * float(se.max())  # the gradient is resolved, not noise


def _autograd_gradient(objective, theta=THETA):
    t = theta.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(torch.softmax(t, -1)), t)
    return grad


@pytest.mark.parametrize("n,k", [(4, 2), (5, 5), (6, 1), (3, 3)])
def test_pkpo_population_step_is_the_exact_max_at_k_gradient(n, k):
    """Unbiasedness at population level: n Σ π Ā ∇log π = ∇ E[max of k draws] (ratio exactly 1)."""
    probs = torch.softmax(THETA, -1)
    step = n * softmax_policy_gradient(THETA, pop.population_pkpo(GRADED, probs, k, n))
    truth = _autograd_gradient(lambda p: pk.expected_max(GRADED, p, k).sum())
    torch.testing.assert_close(step, truth, rtol=0, atol=1e-13)
    loo = n * softmax_policy_gradient(THETA, pop.population_loo_max(GRADED, probs, n))
    torch.testing.assert_close(
        loo, _autograd_gradient(lambda p: pk.expected_max(GRADED, p, n).sum()), rtol=0, atol=1e-13
    )


def test_expected_max_matches_enumeration_and_pass_at_k():
    probs = torch.softmax(THETA, -1)
    for k in (1, 2, 3):
        brute = sum(
            math.prod(float(probs[a]) for a in t) * max(float(GRADED[a]) for a in t)
            for t in itertools.product(range(5), repeat=k)
        )
        assert float(pk.expected_max(GRADED, probs, k)) == pytest.approx(brute, abs=1e-14)
    # Binary rewards: E[max of k] is pass@k = 1 − (1 − p)^k.
    p = float((BINARY * probs).sum())
    assert float(pk.expected_max(BINARY, probs, 4)) == pytest.approx(
        float(pk.exact_pass_at_k(torch.tensor(p, dtype=D), 4)), abs=1e-14
    )


@pytest.mark.parametrize("k", [1, 2, 4])
def test_population_max_at_k_is_the_exact_gradient_of_max_at_k(k):
    probs = torch.softmax(THETA, -1)
    truth = _autograd_gradient(lambda q: pk.expected_max(GRADED, q, k).sum())
    torch.testing.assert_close(
        softmax_policy_gradient(THETA, pop.population_max_at_k(GRADED, probs, k)), truth, rtol=0, atol=1e-14
    )
    # On binary rewards max@k is pass@k, and the two population forms coincide: two different float64
    # sums of terms up to ~2, equal to a few ulp (2.2e-16 each at 1); 1e-15 was exceeded by 1.1e-15 on an
    # AVX2-only CPU (torch's vectorised kernels sum in another order there), so 4e-15 (~9 ulp at 2).
    torch.testing.assert_close(
        pop.population_max_at_k(BINARY, probs, k), pop.population_passk(BINARY, probs, k), rtol=0, atol=4e-15
    )


def test_population_passk_is_the_exact_gradient_of_pass_at_k():
    probs = torch.softmax(THETA, -1)
    truth = _autograd_gradient(lambda q: pk.exact_pass_at_k((BINARY * q).sum(), 4))
    torch.testing.assert_close(
        softmax_policy_gradient(THETA, pop.population_passk(BINARY, probs, 4)), truth, rtol=0, atol=1e-14
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: pop.population_pkpo(GRADED, torch.softmax(THETA, -1), 2, None), "group_size=None"),
        (lambda: pop.population_pkpo(GRADED, torch.softmax(THETA, -1), 5, 4), "k=5 must be <= group_size=4"),
        (lambda: pop.population_loo_max(GRADED, torch.softmax(THETA, -1), 1), "group_size=1"),
        (lambda: pop.population_chen_passk(GRADED, torch.softmax(THETA, -1), 2, 4), "rewards must be binary"),
        (lambda: pop.population_passk_reweight(BINARY, torch.softmax(THETA, -1), 0, 4), "k=0"),
        (lambda: pop.population_passk(GRADED, torch.softmax(THETA, -1), 2), "rewards must be binary"),
        (lambda: pk.expected_max_with(GRADED, torch.softmax(THETA, -1), -1), "draws=-1"),
        (lambda: pk.max_of_draws_weights(GRADED, torch.softmax(THETA, -1), 0), "draws=0"),
    ],
)
def test_population_forms_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()

"""theory.updates: the simulators' update rules against autograd, enumeration and the textbook Adam."""

from __future__ import annotations

import itertools

import pytest
import torch

from theory import population as pop
from theory.checks import check_unit_interval
from theory.dynamics import softmax_policy_gradient
from theory.updates import (
    ascent_optimizer,
    ascent_step,
    bernoulli_outcomes,
    population_arm_advantage,
    sampled_policy_gradient,
)

DTYPE = torch.float64


def test_sampled_gradient_is_the_autograd_gradient_of_the_sampled_surrogate():
    # ĝ must equal ∇_θ (1/N) Σ_i A_i log π_θ(a_i), computed here by autograd (repeated actions included).
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 7, generator=gen, dtype=DTYPE, requires_grad=True)
    actions = torch.randint(0, 7, (2, 3, 5), generator=gen)
    adv = torch.randn(2, 3, 5, generator=gen, dtype=DTYPE)
    surrogate = (adv * torch.gather(torch.log_softmax(logits, -1), -1, actions)).mean(-1).sum()
    (expected,) = torch.autograd.grad(surrogate, logits)
    got = sampled_policy_gradient(torch.softmax(logits.detach(), -1), actions, adv)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)  # same sums, round-off only


def test_sampled_gradient_averages_to_the_exact_gradient_over_every_draw():
    # With A depending on the action only, E_{a_1..a_N ~ π}[ĝ] = π ⊙ (A − E_π A): enumerate all K^N draws.
    logits = torch.tensor([0.3, -1.0, 0.8], dtype=DTYPE)
    action_adv = torch.tensor([1.0, -0.5, 2.0], dtype=DTYPE)
    probs = torch.softmax(logits, -1)
    n = 3
    expected = torch.zeros(3, dtype=DTYPE)
    for draw in itertools.product(range(3), repeat=n):
        actions = torch.tensor(draw)
        weight = probs[actions].prod()
        expected += weight * sampled_policy_gradient(probs, actions, action_adv[actions])
    torch.testing.assert_close(expected, softmax_policy_gradient(logits, action_adv), rtol=0, atol=1e-15)


def test_sampled_gradient_rejects_bad_input():
    probs = torch.full((2, 4), 0.25, dtype=DTYPE)
    with pytest.raises(ValueError, match="actions"):
        sampled_policy_gradient(probs, torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 2, dtype=DTYPE))
    with pytest.raises(ValueError, match="advantages"):
        sampled_policy_gradient(
            probs, torch.zeros(2, 2, dtype=torch.long), torch.tensor([[0.0, float("nan")]] * 2, dtype=DTYPE)
        )


def test_bernoulli_arm_advantage_matches_explicit_outcome_sum():
    # Ā(a) = Σ_{r∈{0,1}} P(r | a) A(a, r), with A the population RS-GRPO advantage over the 2K outcomes,
    # rebuilt here outcome by outcome.
    mu = torch.tensor([[0.9, 0.4, 0.1]], dtype=DTYPE)
    probs = torch.tensor([[0.2, 0.5, 0.3]], dtype=DTYPE)
    beta = 3.0
    outcome_r = torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]], dtype=DTYPE)
    outcome_p = torch.tensor([[0.2 * 0.1, 0.5 * 0.6, 0.3 * 0.9, 0.2 * 0.9, 0.5 * 0.4, 0.3 * 0.1]], dtype=DTYPE)
    adv = pop.population_rs_grpo(outcome_r, outcome_p, beta)
    expected = torch.stack([(1 - mu[0, a]) * adv[0, a] + mu[0, a] * adv[0, 3 + a] for a in range(3)]).unsqueeze(0)
    got = population_arm_advantage(lambda r, p: pop.population_rs_grpo(r, p, beta), mu, probs, bernoulli=True)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)
    rewards, masses = bernoulli_outcomes(mu, probs)
    assert torch.equal(rewards, outcome_r) and float(masses.sum()) == pytest.approx(1.0, abs=1e-15)
    # deterministic rewards: the outcomes are the arms
    torch.testing.assert_close(
        population_arm_advantage(pop.population_dr_grpo, mu, probs),
        mu - (probs * mu).sum(-1, keepdim=True),
        rtol=0,
        atol=1e-15,
    )


def test_sgd_ascent_is_theta_plus_lr_times_direction():
    theta = torch.tensor([[0.5, -1.0, 2.0]], dtype=DTYPE)
    direction = torch.tensor([[1.0, 0.25, -3.0]], dtype=DTYPE)
    param = theta.clone()
    ascent_step(ascent_optimizer("sgd", param, 0.3), param, direction)
    torch.testing.assert_close(param, theta + 0.3 * direction, rtol=0, atol=1e-15)


def test_sgd_ascent_is_bit_for_bit_torch_optim_sgd():
    # The simulators' SGD (theory.updates.AscentSGD) replaced torch.optim.SGD(maximize=True): every
    # sandbox number depends on the two being identical, bits included, step after step.
    gen = torch.Generator().manual_seed(3)
    ours = torch.randn(5, 7, generator=gen, dtype=DTYPE) * 3
    reference = ours.clone()
    optimizer, torch_sgd = (
        ascent_optimizer("sgd", ours, 0.37),
        torch.optim.SGD([reference], lr=0.37, maximize=True, foreach=False),
    )
    for step in range(50):
        direction = torch.randn(5, 7, generator=gen, dtype=DTYPE) * 10.0 ** (step % 5 - 2)
        direction[0, step % 7] = 0.0
        ascent_step(optimizer, ours, direction)
        reference.grad = direction.clone()
        torch_sgd.step()
        assert torch.equal(ours.view(torch.int64), reference.view(torch.int64)), step


def test_adam_ascent_matches_the_textbook_adam_the_bandit_used_to_inline():
    # The bandit's former inline Adam (Kingma & Ba 2015, Alg. 1, ascent): m, v moments, bias-corrected,
    # θ += η m̂ / (√v̂ + 1e-8). torch.optim.Adam divides √v by √(1 − β₂ᵗ) instead of √ of the ratio,
    # so the two agree to rounding: 1e-12 over 200 steps of |θ| ~ 10.
    gen = torch.Generator().manual_seed(1)
    param = torch.randn(4, 6, generator=gen, dtype=DTYPE)
    theta, m, v = param.clone(), torch.zeros_like(param), torch.zeros_like(param)
    optimizer = ascent_optimizer("adam", param, 0.05)
    for step in range(1, 201):
        grad = torch.randn(4, 6, generator=gen, dtype=DTYPE) * (1 + step % 7)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        theta = theta + 0.05 * (m / (1 - 0.9**step)) / ((v / (1 - 0.999**step)).sqrt() + 1e-8)
        ascent_step(optimizer, param, grad)
    torch.testing.assert_close(param, theta, rtol=0, atol=1e-12)


def test_optimizer_and_step_reject_bad_input():
    param = torch.zeros(2, 3, dtype=DTYPE)
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        ascent_optimizer("rmsprop", param, 0.1)
    with pytest.raises(ValueError, match="direction"):
        ascent_step(ascent_optimizer("sgd", param, 0.1), param, torch.zeros(3, 2, dtype=DTYPE))


def test_unit_interval_message_prints_enough_digits_to_be_true():
    # A reward of 1 + 1.1e-11 used to be reported as "got values in [0.1, 1]"
    with pytest.raises(ValueError, match=r"\[0\.1, 1\.000000000011"):
        check_unit_interval("rewards", torch.tensor([0.1, 1 + 1.1e-11], dtype=DTYPE))

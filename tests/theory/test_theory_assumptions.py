"""theory.assumptions helpers (and the pass@k and bundle laws they build on) against enumeration,
autograd and the unbiasedness of pass@k."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from theory import assumptions
from theory import dynamics as dyn
from theory.bundles import bundle_score_distribution, bundle_score_law
from theory.passk import exact_pass_at_k, pass_at_k


@pytest.mark.parametrize("p", [0.0, 0.03, 0.4, 1.0])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_unbiased_pass_at_k_averages_to_exact_pass_at_k(p, k):
    """E_{c ~ Binomial(n, p)} ρ(n, c, k) = 1 − (1 − p)^k: the estimator is unbiased."""
    n = 10
    expectation = math.fsum(
        math.comb(n, c) * p**c * (1 - p) ** (n - c) * pass_at_k(n, c, k).item() for c in range(n + 1)
    )
    exact = exact_pass_at_k(torch.tensor(p, dtype=torch.float64), k).item()
    assert exact == pytest.approx(1 - (1 - p) ** k, abs=1e-15)
    # 11 terms of lgamma-based ratios: ~1e-14 rounding.
    assert expectation == pytest.approx(exact, abs=1e-13)


def test_bundle_score_law_matches_enumeration():
    level_probs = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.0, 0.4], [0.1, 0.1, 0.8]], dtype=torch.float64)
    law = bundle_score_law(level_probs)
    expected = [0.0] * 7
    for levels in itertools.product(range(3), repeat=3):
        expected[sum(levels)] += math.prod(level_probs[b, j].item() for b, j in enumerate(levels))
    assert torch.allclose(law, torch.tensor(expected, dtype=torch.float64), atol=1e-15, rtol=0)
    accuracies = torch.tensor([0.3, 0.9, 0.5, 0.05], dtype=torch.float64)
    binary = bundle_score_law(torch.stack([1 - accuracies, accuracies], -1))
    assert torch.allclose(binary, bundle_score_distribution(accuracies)[1], atol=1e-15, rtol=0)


def test_layer_cake_transform_covariance_equals_direct_covariance():
    gen = torch.Generator().manual_seed(0)
    rewards = torch.tensor([0.0, 1.0, 1.0, 0.5, 2.0, 0.0], dtype=torch.float64)
    probs = torch.softmax(torch.randn(6, generator=gen, dtype=torch.float64), -1)
    log_probs = probs.log()
    for h in (lambda r: r, lambda r: r**3, lambda r: torch.clamp(r, 0.5, 1.0), lambda r: torch.exp(2 * r)):
        transformed = h(rewards)
        direct = dyn.covariance(transformed, log_probs, probs)
        assert assumptions.layer_cake_transform_covariance(
            transformed, rewards, log_probs, probs
        ).item() == pytest.approx(direct.item(), abs=1e-13)


def test_softmax_prob_derivative_matches_autograd():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(5, generator=gen, dtype=torch.float64)
    direction = torch.randn(5, generator=gen, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, -1), logits)
    assert torch.allclose(assumptions.softmax_prob_derivative(logits, direction), jac @ direction, atol=1e-15, rtol=0)


def test_dependence_conditions_on_hand_cases():
    rewards = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    # Likelier responses are better everywhere: every threshold covariance with log π is >= 0.
    increasing = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    decreasing = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    assert bool(assumptions.positively_dependent(rewards, increasing))
    assert not bool(assumptions.positively_dependent(rewards, decreasing))
    # The proof's sign condition wants k(t) <= 0 below q_α: k(0) = Cov(1{R>0}, log π) > 0 here.
    assert not bool(
        assumptions.tail_covariance_signs_hold(
            rewards, increasing.log(), increasing, torch.tensor(1.0), torch.tensor(2.0)
        )
    )
    lower, upper, slices = assumptions.threshold_covariances(rewards, increasing.log(), increasing)
    assert lower.tolist() == [0.0, 1.0] and upper.tolist() == [1.0, 2.0]
    assert bool((slices > 0).all())
    h_low, h_high = rewards.clone(), 2 * rewards
    assert bool(assumptions.slope_dominates(h_low, h_high, rewards))
    assert not bool(assumptions.slope_dominates(h_high, h_low, rewards))


# --------------------------------------------------------------------------- Assumption 1 as printed

FIVE = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
UNIFORM5 = torch.full((5,), 0.2, dtype=torch.float64)


def _report(scores, alpha, beta, rewards=FIVE, probs=UNIFORM5):
    return assumptions.assumption_1_report(rewards, torch.tensor(scores, dtype=torch.float64), probs, alpha, beta)


def _flags(report):
    return {k: bool(report[k]) for k in ("lower_monotone", "upper_monotone", "lower_level", "upper_level", "holds")}


def test_assumption_1_clauses_by_hand():
    # Uniform law on {0,…,4}: F⁻¹(0.2) = 0, F⁻¹(0.4) = 1, F⁻¹(0.8) = 3 (the first support point with F >= level).
    # SF = (0, −3, −3, 0, 1): E[SF] = −1; ψ(0) = 0 ≥ −1, upper tail {3, 4}: ψ = 0 ≤ 1, ψ(3) = 0 ≥ −1.
    report = _report([0, -3, -3, 0, 1], 0.2, 0.8)
    assert (
        float(report["q_alpha"]) == 0.0
        and float(report["q_beta"]) == 3.0
        and float(report["mean_score"]) == pytest.approx(-1.0, abs=1e-15)
    )
    assert _flags(report) == dict(
        lower_monotone=True, upper_monotone=True, lower_level=True, upper_level=True, holds=True
    )
    # ψ falls from 1 to 0 in the upper tail: only upper_monotone fails.
    assert _flags(_report([0, -3, -3, 1, 0], 0.2, 0.8)) == dict(
        lower_monotone=True, upper_monotone=False, lower_level=True, upper_level=True, holds=False
    )
    # α = 0.4 puts q_α = 1 with ψ(1) = −3 < E[SF] = −1: only lower_level fails.
    assert _flags(_report([0, -3, -3, 0, 1], 0.4, 0.8)) == dict(
        lower_monotone=True, upper_monotone=True, lower_level=False, upper_level=True, holds=False
    )
    # ψ rises from −3 to 0 across the lower tail {0, 1}: only lower_monotone fails.
    assert _flags(_report([-3, 0, -3, 0, 1], 0.4, 0.8)) == dict(
        lower_monotone=False, upper_monotone=True, lower_level=True, upper_level=True, holds=False
    )
    # ψ(q_β) = ψ(3) = −2 < E[SF] = −1.2 (SF = (0, −3, −1, −2, 0)): only upper_level fails.
    assert _flags(_report([0, -3, -1, -2, 0], 0.2, 0.8)) == dict(
        lower_monotone=True, upper_monotone=True, lower_level=True, upper_level=False, holds=False
    )


def test_literal_assumption_is_strictly_stronger_than_the_covariance_signs():
    # SF = (0, −3, −3, 1, 0) fails the literal assumption (ψ decreases above q_β = 3) but the proof's
    # sign condition holds: k(t) = 0.2·(0 − (−1)) = 0.2 >= 0 on [3, 4), and nothing lies below q_α = 0.
    scores = torch.tensor([0.0, -3.0, -3.0, 1.0, 0.0], dtype=torch.float64)
    assert not bool(assumptions.assumption_1_holds(FIVE, scores, UNIFORM5, 0.2, 0.8))
    assert bool(assumptions.tail_covariance_signs_hold(FIVE, scores, UNIFORM5, torch.tensor(0.0), torch.tensor(3.0)))


def test_literal_assumption_implies_the_covariance_signs_on_generated_laws():
    """The proof's step (App. A.3): Assumption 1 ⇒ k <= 0 below q_α and k >= 0 above q_β. Never the other way round."""
    from sandbox.claims import INSTANCE_FAMILIES, random_instances

    g = torch.Generator().manual_seed(5)
    literal_total = signs_only = 0
    for family in INSTANCE_FAMILIES:
        rewards, logits = random_instances(g, 300, 10, family)
        probs, logp = torch.softmax(logits, -1), torch.log_softmax(logits, -1)
        report = assumptions.assumption_1_report(rewards, logp, probs, 0.2, 0.8)
        signs = assumptions.tail_covariance_signs_hold(
            rewards, logp, probs, report["q_alpha"][:, None], report["q_beta"][:, None]
        )
        assert not bool((report["holds"] & ~signs).any())
        literal_total += int(report["holds"].sum())
        signs_only += int((signs & ~report["holds"]).sum())
    assert (
        literal_total > 20 and signs_only > 20
    )  # measured: 90 and 122 with this seed  # both sets non-trivial, so the implication was exercised


def test_conditional_score_averages_ties_and_ignores_null_atoms():
    rewards = torch.tensor([0.0, 0.0, 1.0, 0.5], dtype=torch.float64)
    probs = torch.tensor([0.2, 0.3, 0.5, 0.0], dtype=torch.float64)
    scores = torch.tensor([1.0, 2.0, 5.0, -math.inf], dtype=torch.float64)
    psi, mass, in_support = assumptions.conditional_score(rewards, scores, probs)
    # ψ(0) = (0.2·1 + 0.3·2)/0.5 = 1.6 for both tied responses; the r = 0.5 atom has mass 0: undefined.
    assert psi[:3].tolist() == pytest.approx([1.6, 1.6, 5.0], abs=1e-15)
    assert math.isnan(float(psi[3])) and in_support.tolist() == [True, True, True, False]
    assert mass.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.0], abs=1e-15)
    # The −inf score sits on a null atom: E|SF| is still finite, and Assumption 1 is evaluated without it.
    assert bool(assumptions.finite_score_moment(scores, probs))
    assert not bool(assumptions.finite_score_moment(scores, torch.tensor([0.2, 0.3, 0.4, 0.1], dtype=torch.float64)))
    assert bool(assumptions.assumption_1_report(rewards, scores, probs, 0.2, 0.8)["finite_moment"])


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(scores=torch.tensor([0.0, float("nan"), 1.0])), "log_probs contains NaN"),
        (dict(scores=torch.tensor([0.0, 1.0])), "log_probs"),
        (dict(alpha=0.9), "alpha=0.9 must be < beta=0.8"),
        (dict(probs=torch.tensor([0.5, 0.6, 0.1])), "probs must sum to 1"),
        (dict(rewards=torch.tensor([0.0, float("inf"), 1.0])), "values contains NaN or inf"),
        (dict(scores=torch.tensor([0.0, 1.0, 2.0]) * 1j), "log_probs must be real"),
    ],
)
def test_assumption_1_rejects_bad_input(bad, match):
    args = dict(
        rewards=torch.tensor([0.0, 0.5, 1.0]),
        scores=torch.tensor([0.0, -1.0, -2.0]),
        probs=torch.tensor([0.3, 0.3, 0.4]),
        alpha=0.2,
        beta=0.8,
    )
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        assumptions.assumption_1_report(
            args["rewards"].double() if not torch.is_complex(args["rewards"]) else args["rewards"],
            args["scores"] if torch.is_complex(args["scores"]) else args["scores"].double(),
            args["probs"].double(),
            args["alpha"],
            args["beta"],
        )

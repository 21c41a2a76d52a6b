"""Pass@k estimators and pass@k advantages (theory.passk) against enumeration of subsets / tuples."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import passk as pk
from theory.dynamics import softmax_policy_gradient

FAST = settings(deadline=None, max_examples=30)


def subsets_containing(n, k, i):
    return [s for s in itertools.combinations(range(n), k) if i in s]


def brute_pass_at_k(n, c, k):
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(outcomes, k))
    return Fraction(sum(max(s) for s in subsets), len(subsets))


def brute_max_at_k(x, k):
    subsets = list(itertools.combinations(x, k))
    return sum(max(s) for s in subsets) / len(subsets)


# --------------------------------------------------------------------------- the unbiased estimator


def test_pass_at_k_equals_enumeration_of_all_k_subsets():
    for n in range(1, 11):
        for c in range(n + 1):
            ks = list(range(1, n + 1))
            for k in ks:
                # lgamma-based ratio: ~1e-15 relative rounding for n <= 10.
                assert pk.pass_at_k(n, c, k).item() == pytest.approx(float(brute_pass_at_k(n, c, k)), abs=1e-13), (
                    n,
                    c,
                    k,
                )


def test_pass_at_k_is_stable_for_n_1024():
    n = 1024
    cs = torch.tensor([0, 1, 2, 5, 100, 512, 1000, 1023, 1024])
    for k in (1, 2, 8, 64, 512, 1000, 1024):
        got = pk.pass_at_k(torch.full_like(cs, n), cs, k)
        for c, value in zip(cs.tolist(), got.tolist()):
            exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
            # lgamma(1025) ≈ 6.1e3 carries ~1e-12 absolute error; three such terms → ratio error <= 1e-11.
            assert value == pytest.approx(float(exact), abs=1e-11), (c, k)
            assert 0.0 <= value <= 1.0


def test_pass_at_k_from_rewards_and_errors():
    rewards = torch.tensor([[1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]])
    assert pk.pass_at_k_from_rewards(rewards, 3).tolist() == pytest.approx(
        [float(brute_pass_at_k(6, 2, 3)), 0.0], abs=1e-14
    )
    with pytest.raises(ValueError, match="k"):
        pk.pass_at_k(4, 2, 5)
    with pytest.raises(ValueError, match="k"):
        pk.pass_at_k(4, 2, 2.5)  # a fractional k is not silently truncated
    with pytest.raises(ValueError, match="c"):
        pk.pass_at_k(4, 5, 2)
    with pytest.raises(ValueError, match="binary"):
        pk.pass_at_k_from_rewards(torch.tensor([[0.5, 1.0]]), 1)


# --------------------------------------------------------------------------- Chen et al. analytic advantage


@pytest.mark.parametrize("n", [2, 5, 8])
def test_chen_advantage_matches_its_definition_by_subset_enumeration(n):
    """A_i = (mean over k-subsets containing i of pass − mean over all k-subsets of pass) / σ."""
    for c in range(n + 1):
        rewards = [1.0] * c + [0.0] * (n - c)
        for k in range(1, n + 1):
            got = pk.chen_passk_advantage(torch.tensor([rewards], dtype=torch.float64), k)[0]
            mean_pass = brute_max_at_k(rewards, k)
            std = math.sqrt(mean_pass * (1 - mean_pass))
            for i in range(n):
                if std < 1e-12:
                    assert got[i].item() == 0.0
                    continue
                containing = subsets_containing(n, k, i)
                group_pass = sum(max(rewards[j] for j in s) for s in containing) / len(containing)
                assert got[i].item() == pytest.approx((group_pass - mean_pass) / std, abs=1e-10), (n, c, k, i)


@FAST
@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=2, max_size=7), st.data())
def test_chen_advantage_on_graded_rewards_is_the_max_at_k_definition(values, data):
    """Same definition with max@k: (mean_{S∋i} max_S − mean_S max_S) / std_S max_S, zero when std is 0."""
    n = len(values)
    k = data.draw(st.integers(1, n))
    got = pk.chen_passk_advantage(torch.tensor(values, dtype=torch.float64), k)
    maxima = [max(values[j] for j in s) for s in itertools.combinations(range(n), k)]
    mean = sum(maxima) / len(maxima)
    std = math.sqrt(max(sum(m * m for m in maxima) / len(maxima) - mean**2, 0.0))
    for i in range(n):
        containing = [max(values[j] for j in s) for s in subsets_containing(n, k, i)]
        expected = 0.0 if len(set(maxima)) == 1 else (sum(containing) / len(containing) - mean) / std
        assert got[i].item() == pytest.approx(expected, abs=1e-9)
    assert abs(got.sum().item()) < 1e-9


def test_chen_advantage_hand_formula_and_zero_group_mean():
    n, c, k = 8, 3, 4
    mean_pass = 1 - math.comb(n - c, k) / math.comb(n, k)
    std = math.sqrt(mean_pass * (1 - mean_pass))
    a_pos = (1 - mean_pass) / std
    a_neg = (1 - mean_pass - math.comb(n - c - 1, k - 1) / math.comb(n - 1, k - 1)) / std
    rewards = torch.tensor([[0, 1, 0, 0, 1, 0, 1, 0]], dtype=torch.float64)
    got = pk.chen_passk_advantage(rewards, k)[0]
    assert got.tolist() == pytest.approx([a_neg, a_pos, a_neg, a_neg, a_pos, a_neg, a_pos, a_neg], abs=1e-12)
    # Derived identity: (N−c)·C(N−c−1,k−1)/C(N−1,k−1) = N·C(N−c,k)/C(N,k) = N(1 − R̄),
    # so c·A⁺ + (N−c)·A⁻ = 0: the advantages of a group sum to zero for every c, k.
    gen = torch.Generator().manual_seed(0)
    groups = torch.randint(0, 2, (200, 12), generator=gen).double()
    for k in (1, 3, 7, 12):
        assert pk.chen_passk_advantage(groups, k).sum(-1).abs().max().item() < 1e-12


# --------------------------------------------------------------------------- leave-one-out max, max@k


@FAST
@given(st.lists(st.integers(0, 4), min_size=2, max_size=7))
def test_leave_one_out_max_matches_brute_force(values):
    x = torch.tensor(values, dtype=torch.float64)
    got = pk.leave_one_out_max_advantage(x).tolist()
    expected = [max(values) - max(values[:i] + values[i + 1 :]) for i in range(len(values))]
    assert got == expected


@FAST
@given(st.lists(st.floats(-2, 2, allow_nan=False), min_size=1, max_size=7), st.data())
def test_max_at_k_and_pkpo_effective_rewards_match_subset_enumeration(values, data):
    n = len(values)
    k = data.draw(st.integers(1, n))
    x = torch.tensor(values, dtype=torch.float64)
    assert pk.max_at_k_estimate(x, k).item() == pytest.approx(brute_max_at_k(values, k), abs=1e-12)
    s = pk.pkpo_effective_rewards(x, k)
    total = math.comb(n, k)
    for i in range(n):
        expected = 1 / total * sum(max(values[j] for j in sub) for sub in subsets_containing(n, k, i))
        assert s[i].item() == pytest.approx(expected, abs=1e-12)
    # PKPO's normalisation (arXiv:2505.15201): Σ_i r_i = k · (unbiased max@k estimate).
    assert s.sum().item() == pytest.approx(k * brute_max_at_k(values, k), abs=1e-12)


@pytest.mark.parametrize("n,k,c", [(4, 2, 1), (5, 3, 2), (8, 4, 0), (6, 6, 3), (3, 1, 3)])
def test_pkpo_binary_effective_rewards_equal_the_papers_formula(n, k, c):
    """PKPO (arXiv:2505.15201), binary rewards: r_i = k/n if correct, (k/n)·ρ(n−1, c, k−1) if not,
    ρ(m, c, j) = 1 − C(m−c, j)/C(m, j) (math.comb here, independent of the lgamma code)."""
    x = torch.tensor([1.0] * c + [0.0] * (n - c), dtype=torch.float64)
    r = pk.pkpo_effective_rewards(x, k)

    def rho(m, correct, j):
        return 1.0 - math.comb(m - correct, j) / math.comb(m, j) if j > 0 else 0.0

    expected = [k / n] * c + [k / n * rho(n - 1, c, k - 1)] * (n - c)
    assert r.tolist() == pytest.approx(expected, abs=1e-14)
    # e.g. n = 4, k = 2, c = 1: correct 1/2, incorrect (1/2)(1 − C(2,1)/C(3,1)) = 1/6.


@FAST
@given(st.lists(st.floats(-2, 2, allow_nan=False), min_size=2, max_size=6), st.data())
def test_pkpo_advantage_is_effective_reward_minus_leave_one_out_max_at_k(values, data):
    n = len(values)
    k = data.draw(st.integers(1, n))
    x = torch.tensor(values, dtype=torch.float64)
    a = pk.pkpo_advantage(x, k)
    s = pk.pkpo_effective_rewards(x, k)
    k_loo = min(k, n - 1)
    for i in range(n):
        others = values[:i] + values[i + 1 :]
        assert a[i].item() == pytest.approx(s[i].item() - k / n * brute_max_at_k(others, k_loo), abs=1e-12)
    if k == n:
        assert torch.allclose(a, pk.leave_one_out_max_advantage(x), atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "rewards,n,k",
    [
        ([0.0, 0.5, 1.0], 4, 2),
        ([0.0, 1.0, 1.0, 0.25], 3, 2),  # ties between actions
        ([0.0, 0.5, 1.0], 3, 3),
        ([0.3, 0.9, 0.1], 4, 1),
        ([0.0, 1.0], 5, 3),  # binary: max@k is pass@k
    ],
)
def test_pkpo_gradient_is_unbiased_by_exact_enumeration(rewards, n, k):
    """E over all n-tuples of Σ_i A_i ∇log π(x_i) equals ∇E[max of k draws]: unbiasedness ratio 1."""
    num_actions = len(rewards)
    r = torch.tensor(rewards, dtype=torch.float64)
    theta = torch.linspace(-0.7, 0.9, num_actions, dtype=torch.float64).requires_grad_(True)
    probs = torch.softmax(theta, -1)

    # Exact E[max of k i.i.d. draws] by enumerating k-tuples, differentiated by autograd.
    expected_max = sum(
        torch.prod(probs[list(t)]) * max(rewards[a] for a in t) for t in itertools.product(range(num_actions), repeat=k)
    )
    (true_gradient,) = torch.autograd.grad(expected_max, theta)

    p = probs.detach()
    eye = torch.eye(num_actions, dtype=torch.float64)
    estimate = torch.zeros(num_actions, dtype=torch.float64)
    without_baseline = torch.zeros(num_actions, dtype=torch.float64)
    for t in itertools.product(range(num_actions), repeat=n):
        weight = torch.prod(p[list(t)])
        x = r[list(t)]
        score = eye[list(t)] - p  # ∇_θ log π(x_i) for each i, (n, K)
        estimate += weight * (pk.pkpo_advantage(x, k) @ score)
        without_baseline += weight * (pk.pkpo_effective_rewards(x, k) @ score)
    # Exact sums of <= 4^5 terms: only float64 rounding separates them.
    assert torch.allclose(estimate, true_gradient, atol=1e-12, rtol=0)
    assert torch.allclose(without_baseline, true_gradient, atol=1e-12, rtol=0)
    assert true_gradient.abs().max() > 1e-3
    ratio = float(estimate @ true_gradient / (true_gradient @ true_gradient))
    assert ratio == pytest.approx(1.0, abs=1e-10)


def test_passk_reweight_formula_by_hand_from_the_source():
    # Mahdavi et al.: ∇pass@k = k(1 − ρ)^{k−1}∇ρ, plug-in ρ̂ = group mean. Group (1, 0, 0, 0), k = 3:
    # ρ̂ = 1/4, weight 3·(3/4)² = 27/16; A = 27/16·(r − 1/4) = (81/64, −27/64, −27/64, −27/64).
    got = pk.passk_reweighted_advantage(torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64), 3)
    assert got[0].tolist() == pytest.approx([81 / 64, -27 / 64, -27 / 64, -27 / 64], abs=1e-15)
    # Group (1, 1, 0, 0), k = 2: weight 2·(1/2) = 1, A = r − 1/2.
    got = pk.passk_reweighted_advantage(torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64), 2)
    assert got[0].tolist() == pytest.approx([0.5, 0.5, -0.5, -0.5], abs=1e-15)
    # ρ̂ = 1: the prompt is solved, no signal; k = 1: Dr. GRPO.
    assert torch.equal(pk.passk_reweighted_advantage(torch.ones(1, 4), 5), torch.zeros(1, 4, dtype=torch.float64))
    rewards = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(pk.passk_reweighted_advantage(rewards, 1), rewards - rewards.mean(-1, keepdim=True))
    with pytest.raises(ValueError, match="k"):
        pk.passk_reweighted_advantage(rewards, 0)
    # A success probability needs 0/1 rewards: 2.0, −1 and 0.5 are errors, not clamps.
    for bad in ([[2.0, 1.0]], [[-1.0, 1.0]], [[0.5, 1.0]]):
        with pytest.raises(ValueError, match="rewards must be binary"):
            pk.passk_reweighted_advantage(torch.tensor(bad), 3)


def test_passk_advantage_errors_name_the_field():
    with pytest.raises(ValueError, match="k"):
        pk.chen_passk_advantage(torch.tensor([[1.0, 0.0]]), 3)
    with pytest.raises(ValueError, match="k"):
        pk.pkpo_advantage(torch.tensor([[1.0, 0.0]]), 3)
    with pytest.raises(ValueError, match="G"):
        pk.leave_one_out_max_advantage(torch.tensor([[1.0]]))
    with pytest.raises(ValueError, match="rewards"):
        pk.pkpo_effective_rewards(torch.tensor([[float("nan"), 0.0]]), 1)


def test_softmax_policy_gradient_is_the_score_function_expectation():
    # Used above as E_π[A ∇log π]; checked here against the explicit sum Σ_a π_a A_a (e_a − π).
    theta = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    adv = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    p = torch.softmax(theta, -1)
    explicit = sum(p[a] * adv[a] * (torch.eye(3, dtype=torch.float64)[a] - p) for a in range(3))
    assert torch.allclose(softmax_policy_gradient(theta, adv), explicit, atol=1e-15, rtol=0)


def test_pkpo_and_chen_batch_dims_equal_row_by_row():
    gen = torch.Generator().manual_seed(8)
    rewards = torch.randint(0, 3, (4, 5, 9), generator=gen).double() / 2  # many ties
    for k in (1, 3, 9):
        for f in (pk.pkpo_advantage, pk.pkpo_effective_rewards, pk.chen_passk_advantage):
            batched = f(rewards, k)
            looped = torch.stack([torch.stack([f(rewards[i, j], k) for j in range(5)]) for i in range(4)])
            assert torch.allclose(batched, looped, atol=1e-14, rtol=0), (f.__name__, k)
        for i in range(4):
            row = rewards[i, 0].tolist()
            expected = [
                pk.pkpo_effective_rewards(rewards[i, 0], k)[m].item()
                - k / 9 * brute_max_at_k(row[:m] + row[m + 1 :], min(k, 8))
                for m in range(9)
            ]
            assert pk.pkpo_advantage(rewards, k)[i, 0].tolist() == pytest.approx(expected, abs=1e-12)

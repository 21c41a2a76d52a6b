"""Group advantage estimators and the MVaR-family transforms (theory.advantages).

Expected values come from the formulas evaluated independently with Python
floats / numpy in float64, from closed forms, or from hand-computed cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import advantages as adv

FAST = settings(deadline=None, max_examples=40)

groups = st.lists(st.floats(-3.0, 3.0, allow_nan=False), min_size=2, max_size=12)


# --------------------------------------------------------------------------- GRPO / Dr. GRPO


def test_grpo_and_dr_grpo_match_numpy():
    gen = torch.Generator().manual_seed(0)
    rewards = torch.rand(6, 8, generator=gen, dtype=torch.float64)
    r = rewards.numpy()
    centred = r - r.mean(1, keepdims=True)
    assert np.allclose(adv.dr_grpo(rewards).numpy(), centred, atol=1e-15)
    for unbiased, ddof in ((True, 1), (False, 0)):
        expected = centred / (r.std(1, ddof=ddof, keepdims=True) + 1e-6)
        assert np.allclose(adv.grpo(rewards, 1e-6, unbiased).numpy(), expected, atol=1e-12)


def test_grpo_binary_group_hand_values():
    # 1 of 4 correct: mean 0.25, Bessel std sqrt(0.25) = 0.5 → A = (0.75/0.5, −0.25/0.5) = (1.5, −0.5).
    a = adv.grpo(torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64), eps=0.0)
    assert a.tolist() == [[1.5, -0.5, -0.5, -0.5]]
    assert torch.equal(adv.grpo(torch.full((2, 5), 0.7)), torch.zeros(2, 5))


# --------------------------------------------------------------------------- RS-GRPO


def rs_grpo_reference(rewards, beta):
    """(1/β)(e^{βr_i}/mean_j e^{βr_j} − 1) with Python floats (moderate β only)."""
    m = math.fsum(math.exp(beta * r) for r in rewards) / len(rewards)
    return [(math.exp(beta * r) / m - 1.0) / beta for r in rewards]


@FAST
@given(groups, st.floats(0.05, 8.0), st.booleans())
def test_rs_grpo_formula_sum_zero_and_bounds(rewards, beta, negative):
    beta = -beta if negative else beta
    r = torch.tensor(rewards, dtype=torch.float64)
    a = adv.rs_grpo(r, beta)
    n = len(rewards)
    # Weights e^{βr}/mean e^{βr} <= e^{|β|·6} here; 1e-12 relative is rounding of exp.
    scale = math.exp(abs(beta) * 6) / abs(beta)
    assert np.allclose(a.numpy(), rs_grpo_reference(rewards, beta), rtol=1e-10, atol=1e-12 * scale)
    assert abs(a.sum().item()) <= 1e-12 * n * scale
    lo, hi = (-1.0 / beta, (n - 1) / beta) if beta > 0 else ((n - 1) / beta, -1.0 / beta)
    slack = 1e-12 * scale
    assert bool((a >= lo - slack).all()) and bool((a <= hi + slack).all())


def test_rs_grpo_golden_binary_closed_form():
    n, beta, correct = 16, 2.0, 1
    rewards = torch.zeros(1, n, dtype=torch.float64)
    rewards[0, 3] = 1.0
    p_hat = correct / n
    z = 1.0 + p_hat * (math.exp(beta) - 1.0)
    a_pos = (math.exp(beta) / z - 1.0) / beta
    a_neg = (1.0 / z - 1.0) / beta
    a = adv.rs_grpo(rewards, beta)
    assert a[0, 3].item() == pytest.approx(a_pos, abs=1e-14)
    others = torch.cat([a[0, :3], a[0, 4:]])
    assert torch.allclose(others, torch.full_like(others, a_neg), atol=1e-14, rtol=0)
    assert round(a[0, 3].item(), 3) == 2.140
    assert round(a_neg, 3) == -0.143


def test_rs_grpo_beta_to_zero_is_dr_grpo_in_float32_and_float64():
    gen = torch.Generator().manual_seed(3)
    rewards = torch.rand(4, 16, generator=gen, dtype=torch.float64)
    centred = rewards - rewards.mean(-1, keepdim=True)
    assert torch.equal(adv.rs_grpo(rewards, 0.0), centred)
    # A_β = (r − r̄) + O(β) with an O(1) constant for rewards in [0, 1]; float64 rounding is ~1e-16/β·β.
    a64 = adv.rs_grpo(rewards, 1e-8)
    assert a64.dtype == torch.float64
    assert torch.allclose(a64, centred, atol=1e-7, rtol=0)
    # float32: β r is rounded to 6e-8 relative, so A inherits ~1e-7 absolute error.
    a32 = adv.rs_grpo(rewards.float(), 1e-8)
    assert a32.dtype == torch.float32
    assert torch.allclose(a32.double(), centred, atol=1e-6, rtol=0)
    # The first-order correction is visible and has the right size: β/2 ((r−r̄)² − mean (r−r̄)²).
    beta = 1e-3
    second = beta / 2 * (centred**2 - (centred**2).mean(-1, keepdim=True))
    assert torch.allclose(adv.rs_grpo(rewards, beta), centred + second, atol=5e-7, rtol=0)


def test_rs_grpo_large_beta_does_not_overflow():
    rewards = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    for dtype in (torch.float32, torch.float64):
        a = adv.rs_grpo(rewards.to(dtype), 500.0)
        assert bool(torch.isfinite(a).all())
        # e^{-500} is far below float precision: winners get (N/c − 1)/β, losers −1/β.
        expected = torch.where(rewards > 0, (8 / 2 - 1) / 500.0, -1.0 / 500.0).to(dtype)
        assert torch.allclose(a, expected, atol=1e-7, rtol=0)
    graded = torch.tensor([[0.1, 0.5, 3.0, 2.9, -1.0]], dtype=torch.float64)
    a = adv.rs_grpo(graded, 500.0)
    assert bool(torch.isfinite(a).all())
    assert abs(a.sum().item()) < 1e-15
    # Only the best (3.0) and runner-up (e^{-50} behind) carry weight: A_best ≈ (5/(1+e^{-50}) − 1)/500.
    assert a[0, 2].item() == pytest.approx((5.0 / (1.0 + math.exp(-50.0)) - 1.0) / 500.0, rel=1e-12)
    a = adv.rs_grpo(graded, -500.0)
    assert bool(torch.isfinite(a).all())


def test_rs_grpo_all_equal_groups_are_exactly_zero_and_group_of_one_is_an_error():
    for beta in (-3.0, 1e-8, 2.0, 500.0):
        assert torch.equal(adv.rs_grpo(torch.full((3, 7), 0.37), beta), torch.zeros(3, 7))
    with pytest.raises(ValueError, match="G"):
        adv.rs_grpo(torch.ones(4, 1), 2.0)
    with pytest.raises(ValueError, match="rewards"):
        adv.rs_grpo(torch.tensor([[0.0, float("nan")]]), 2.0)


# --------------------------------------------------------------------------- MVaR-family transforms


def test_quantile_band_gain_is_piecewise():
    z = torch.tensor([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    a, b = 0.0, 3.0
    expected = [a - b, a - b, 1.0 - b, 2.0 - b, 0.0, 0.0]
    assert adv.quantile_band_gain(z, a, b).tolist() == expected
    alt = (a - z).clamp(min=0) - (b - z).clamp(min=0)
    assert torch.equal(adv.quantile_band_gain(z, a, b), alt)


def test_mvar_advantage_hand_cases_and_sign():
    z = torch.tensor([0.0, 1.0, 2.0, 3.0, 5.0], dtype=torch.float64)
    # q_α=1, q_β=3, ω=0.5: below q_α −1.5(1−z) + (1−3); inside z−3; above 0.
    expected = [-1.5 * 1 - 2.0, -2.0, -1.0, 0.0, 0.0]
    assert adv.mvar_advantage_from_quantiles(z, 1.0, 3.0, 0.5).tolist() == expected
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (200,), generator=gen).double()
    a = adv.mvar_advantage_from_quantiles(scores, 1.0, 4.0, 2.0)
    assert bool((a <= 0).all())
    assert bool((a[scores >= 4.0] == 0).all())
    assert bool((a[scores < 4.0] < 0).all())


def test_risk_seeking_mvar_advantage_hand_cases_and_sign():
    z = torch.tensor([0.0, 1.0, 2.0, 3.0, 5.0], dtype=torch.float64)
    # q_α=1, q_β=3, ω=0.5: clip(z,1,3) − 1 + 1.5(z−3)⁺.
    expected = [0.0, 0.0, 1.0, 2.0, 2.0 + 1.5 * 2.0]
    assert adv.risk_seeking_mvar_advantage_from_quantiles(z, 1.0, 3.0, 0.5).tolist() == expected
    gen = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 6, (200,), generator=gen).double()
    a = adv.risk_seeking_mvar_advantage_from_quantiles(scores, 1.0, 4.0, 0.5)
    assert bool((a >= 0).all())
    assert bool((a[scores <= 1.0] == 0).all())
    assert bool((a[scores > 1.0] > 0).all())


def test_rvar_and_cvar_advantages():
    z = torch.tensor([0.0, 1.0, 2.0, 3.0, 5.0], dtype=torch.float64)
    g = torch.tensor([-2.0, -2.0, -1.0, 0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(adv.rvar_advantage_from_quantiles(z, 1.0, 3.0, 0.2, 0.7), g / 0.5, atol=1e-15, rtol=0)
    assert adv.cvar_advantage_from_quantile(z, 2.0, 0.25).tolist() == [-8.0, -4.0, 0.0, 0.0, 0.0]
    # Per-row quantiles broadcast against (blocks, G).
    rows = torch.tensor([[0.0, 2.0], [0.0, 2.0]], dtype=torch.float64)
    q = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    assert adv.cvar_advantage_from_quantile(rows, q, 0.5).tolist() == [[-2.0, 0.0], [-4.0, 0.0]]


def test_transform_errors_name_the_field():
    z = torch.tensor([0.0, 1.0])
    with pytest.raises(ValueError, match="q_alpha"):
        adv.mvar_advantage_from_quantiles(z, 2.0, 1.0)
    with pytest.raises(ValueError, match="q_alpha"):
        adv.risk_seeking_mvar_advantage_from_quantiles(z, float("nan"), 1.0)
    with pytest.raises(ValueError, match="omega"):
        adv.mvar_advantage_from_quantiles(z, 0.0, 1.0, omega=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        adv.rvar_advantage_from_quantiles(z, 0.0, 1.0, 0.9, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        adv.cvar_advantage_from_quantile(z, 0.0, 0.0)
    with pytest.raises(ValueError, match="scores"):
        adv.mvar_advantage_from_quantiles(torch.tensor([float("inf")]), 0.0, 1.0)

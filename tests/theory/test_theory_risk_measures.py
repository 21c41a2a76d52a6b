"""Risk measures of theory.risk_measures against independent brute force.

The brute force expands a discrete law with rational probabilities c_i/N into
N equally weighted draws: the inverse CDF is then the sorted sample read at
index ⌈N·u⌉ − 1, and ∫_{i/N}^{j/N} F⁻¹ is an exact sum of sorted draws over N.
Levels on the 1/N grid put atoms exactly on the quantile levels, the case the
closed forms must get right.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import risk_measures as rm

FAST = settings(deadline=None, max_examples=40)


# --------------------------------------------------------------------------- brute force


@st.composite
def rational_laws(draw, max_atoms=6):
    """(values, counts): integer values in [-6, 6] (ties allowed) with integer weights, some zero."""
    n = draw(st.integers(1, max_atoms))
    values = draw(st.lists(st.integers(-6, 6), min_size=n, max_size=n))
    counts = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n).filter(lambda c: sum(c) > 0))
    return values, counts


def expanded_sample(values, counts):
    """The law as a sorted list of N = Σ counts equally likely draws."""
    return sorted(v for v, c in zip(values, counts) for _ in range(c))


def to_tensors(values, counts, dtype=torch.float64):
    total = sum(counts)
    return torch.tensor(values, dtype=dtype), torch.tensor([c / total for c in counts], dtype=dtype)


def brute_quantile(sample, u: Fraction):
    """inf{x : F(x) >= u} on the expanded sample: the ⌈N u⌉-th smallest draw (u > 0)."""
    return sample[math.ceil(len(sample) * u) - 1]


def brute_integral(sample, i, j):
    """∫_{i/N}^{j/N} F⁻¹(u) du, exact as a Fraction."""
    return Fraction(sum(sample[i:j]), len(sample))


def quadrature_integral(sample, a, b, points=200_000):
    """Midpoint rule for ∫_a^b F⁻¹ on a fine grid, a second brute force for off-grid levels."""
    n = len(sample)
    u = a + (np.arange(points) + 0.5) * (b - a) / points
    idx = np.clip(np.ceil(n * u).astype(int) - 1, 0, n - 1)
    return float(np.asarray(sample, dtype=np.float64)[idx].mean() * (b - a))


# --------------------------------------------------------------------------- exact brute-force agreement


@FAST
@given(rational_laws(), st.data())
def test_quantile_is_the_order_statistic_including_atoms_on_the_level(law, data):
    values, counts = law
    sample = expanded_sample(values, counts)
    n = len(sample)
    v, p = to_tensors(values, counts)
    i = data.draw(st.integers(1, n))
    # On the grid (an atom may end exactly at u) and strictly between grid points.
    assert rm.quantile(v, p, i / n).item() == brute_quantile(sample, Fraction(i, n))
    mid = (i - 0.5) / n
    assert rm.quantile(v, p, mid).item() == brute_quantile(sample, Fraction(2 * i - 1, 2 * n))
    # u = 0: the smallest value that has positive probability.
    assert rm.quantile(v, p, 0.0).item() == sample[0]


@FAST
@given(rational_laws(), st.data(), st.floats(0.0, 3.0))
def test_tail_integrals_equal_sums_of_the_sorted_sample(law, data, omega):
    values, counts = law
    sample = expanded_sample(values, counts)
    n = len(sample)
    v, p = to_tensors(values, counts)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(i + 1, n))
    a, b = i / n, j / n
    band = brute_integral(sample, i, j)
    lower = brute_integral(sample, 0, i)
    # Only rounding of c/N and of the cumulative sums separates the two: 1e-12 on values <= 6.
    tol = 1e-12
    assert rm.quantile_integral(v, p, a, b).item() == pytest.approx(float(band), abs=tol)
    assert rm.rvar(v, p, a, b).item() == pytest.approx(float(band / Fraction(j - i, n)), abs=tol)
    assert rm.cvar(v, p, b).item() == pytest.approx(float(brute_integral(sample, 0, j) / Fraction(j, n)), abs=tol)
    expected_mvar = (1 + Fraction(omega)) * lower + band
    assert rm.mvar(v, p, a, b, omega).item() == pytest.approx(float(expected_mvar), abs=1e-11)
    assert rm.mean(v, p).item() == pytest.approx(float(Fraction(sum(sample), n)), abs=tol)


@FAST
@given(rational_laws(), st.floats(0.0, 0.999), st.floats(0.001, 1.0))
def test_rvar_at_arbitrary_levels_matches_inverse_cdf_quadrature(law, a, width):
    values, counts = law
    sample = expanded_sample(values, counts)
    b = min(1.0, a + width)
    if b <= a:
        return
    v, p = to_tensors(values, counts)
    # Midpoint rule on 2e5 points: each of the <= 24 jumps of F⁻¹ (height <= 12)
    # costs at most one cell of width (b−a)/2e5 → error <= 24·12/2e5 ≈ 1.5e-3 of the integral.
    expected = quadrature_integral(sample, a, b)
    assert rm.quantile_integral(v, p, a, b).item() == pytest.approx(expected, abs=24 * 12 * (b - a) / 200_000 + 1e-12)


def test_mvar_is_the_documented_mix_of_cvar_and_rvar():
    values = torch.tensor([0.0, 1.0, 2.0, 5.0, 9.0], dtype=torch.float64)
    probs = torch.tensor([0.1, 0.15, 0.3, 0.25, 0.2], dtype=torch.float64)
    alpha, beta, omega = 0.2, 0.7, 0.5
    # Hand integral of F⁻¹: (0,0.1]→0, (0.1,0.25]→1, (0.25,0.55]→2, (0.55,0.8]→5.
    lower = 0.1 * 0 + 0.1 * 1  # ∫_0^0.2
    band = 0.05 * 1 + 0.3 * 2 + 0.15 * 5  # ∫_0.2^0.7
    assert rm.cvar(values, probs, alpha).item() == pytest.approx(lower / alpha, abs=1e-14)
    assert rm.rvar(values, probs, alpha, beta).item() == pytest.approx(band / (beta - alpha), abs=1e-14)
    expected = (1 + omega) * alpha * rm.cvar(values, probs, alpha) + (beta - alpha) * rm.rvar(
        values, probs, alpha, beta
    )
    assert rm.mvar(values, probs, alpha, beta, omega).item() == pytest.approx(expected.item(), abs=1e-14)
    assert rm.mvar(values, probs, alpha, beta, omega).item() == pytest.approx(1.5 * lower + band, abs=1e-14)


# --------------------------------------------------------------------------- properties


@FAST
@given(rational_laws(), st.floats(0.01, 0.98), st.floats(0.01, 0.98), st.floats(-5, 5))
def test_properties_monotone_levels_cvar_below_mean_translation(law, u1, u2, shift):
    values, counts = law
    v, p = to_tensors(values, counts)
    lo, hi = min(u1, u2), max(u1, u2)
    tol = 1e-12
    assert rm.quantile(v, p, lo) <= rm.quantile(v, p, hi)
    assert rm.cvar(v, p, lo) <= rm.cvar(v, p, hi) + tol
    assert rm.cvar(v, p, hi) <= rm.mean(v, p) + tol
    assert rm.rvar(v, p, 0.0, 1.0).item() == pytest.approx(rm.mean(v, p).item(), abs=tol)
    if hi > lo:
        # RVaR is an average of F⁻¹ over (lo, hi]: between the quantiles at its ends.
        band = rm.rvar(v, p, lo, hi)
        assert rm.quantile(v, p, lo) - 1e-9 <= band <= rm.quantile(v, p, hi) + 1e-9
        # Translation equivariance ρ(R + s) = ρ(R) + s (MVaR carries weight (1+ω)α + β − α).
        assert rm.rvar(v + shift, p, lo, hi).item() == pytest.approx(band.item() + shift, abs=1e-9)
        assert rm.mvar(v + shift, p, lo, hi, 0.5).item() == pytest.approx(
            rm.mvar(v, p, lo, hi, 0.5).item() + shift * (1.5 * lo + hi - lo), abs=1e-9
        )
    assert rm.quantile(v + shift, p, hi).item() == pytest.approx(rm.quantile(v, p, hi).item() + shift, abs=1e-9)
    assert rm.entropic(v + shift, p, 1.3).item() == pytest.approx(rm.entropic(v, p, 1.3).item() + shift, abs=1e-9)


def test_batch_dims_equal_a_loop_and_dtypes_are_kept():
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(3, 4, 7, generator=gen, dtype=torch.float64)
    probs = torch.softmax(torch.randn(3, 4, 7, generator=gen, dtype=torch.float64), -1)
    measures = {
        "mean": lambda v, p: rm.mean(v, p),
        "quantile": lambda v, p: rm.quantile(v, p, 0.3),
        "cvar": lambda v, p: rm.cvar(v, p, 0.25),
        "rvar": lambda v, p: rm.rvar(v, p, 0.1, 0.6),
        "mvar": lambda v, p: rm.mvar(v, p, 0.2, 0.8, 0.5),
        "entropic": lambda v, p: rm.entropic(v, p, -0.7),
    }
    for name, f in measures.items():
        batched = f(values, probs)
        assert batched.shape == (3, 4), name
        assert batched.dtype == torch.float64, name
        looped = torch.stack([torch.stack([f(values[i, j], probs[i, j]) for j in range(4)]) for i in range(3)])
        assert torch.allclose(batched, looped, atol=1e-14, rtol=0), name
        assert f(values.float(), probs.float()).dtype == torch.float32, name


def test_empirical_quantile_is_the_order_statistic_for_large_float32_samples():
    # A float32 running CDF of n copies of 1/n drifts by ~n·eps; the quantile must
    # still be exactly x_(⌈n u⌉).
    gen = torch.Generator().manual_seed(1)
    for n in (7, 1000, 8192):
        x = torch.randn(n, generator=gen)
        ordered = torch.sort(x).values
        for u in (0.05, 0.2, 0.37, 0.5, 0.8, 0.95, 1.0):
            k = math.ceil(round(n * u, 9))
            assert rm.empirical_quantile(x, u).item() == ordered[k - 1].item(), (n, u)
        if n % 4 == 0:
            # float32 sum of n/4 values of size ~1: relative error well below 1e-5.
            lowest_quarter = ordered.double()[: n // 4].mean().item()
            assert rm.empirical_cvar(x, 0.25).item() == pytest.approx(lowest_quarter, rel=1e-5, abs=1e-6)


def test_empirical_helpers_match_sorted_sample_averages():
    x = torch.tensor([3.0, -1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0], dtype=torch.float64)
    s = sorted(x.tolist())
    assert rm.empirical_mean(x).item() == pytest.approx(sum(s) / 10, abs=1e-14)
    assert rm.empirical_quantile(x, 0.3).item() == s[2]
    assert rm.empirical_cvar(x, 0.3).item() == pytest.approx(sum(s[:3]) / 3, abs=1e-14)
    assert rm.empirical_rvar(x, 0.2, 0.7).item() == pytest.approx(sum(s[2:7]) / 5, abs=1e-14)
    assert rm.empirical_mvar(x, 0.2, 0.7, 1.0).item() == pytest.approx(
        2 * sum(s[:2]) / 10 + sum(s[2:7]) / 10, abs=1e-14
    )
    assert rm.empirical_entropic(x, 0.5).item() == pytest.approx(
        math.log(math.fsum(math.exp(0.5 * v) for v in s) / 10) / 0.5, abs=1e-12
    )


def test_zero_probability_values_are_never_quantiles():
    values = torch.tensor([-100.0, 1.0, 2.0, 50.0], dtype=torch.float64)
    probs = torch.tensor([0.0, 0.5, 0.5, 0.0], dtype=torch.float64)
    for u in (0.0, 1e-15, 1e-9, 0.5, 0.5 + 1e-9, 1.0):
        assert rm.quantile(values, probs, u).item() in (1.0, 2.0), u
    assert rm.quantile(values, probs, 1e-15).item() == 1.0
    assert rm.quantile(values, probs, 1.0).item() == 2.0
    assert rm.cvar(values, probs, 0.5).item() == 1.0


def test_probs_summing_just_below_one_keep_the_top_quantile_at_the_maximum():
    # Accepted by the sum-to-1 check (float32 tolerance), so levels in the rounding gap belong to the max.
    values = torch.tensor([0.0, 1.0])
    probs = torch.tensor([0.5, 0.49995])
    assert rm.quantile(values, probs, 1.0).item() == 1.0
    assert rm.quantile(values, probs, 0.99999).item() == 1.0


# --------------------------------------------------------------------------- entropic


def _entropic_reference(values, probs, beta):
    """(1/β) log Σ p e^{βv} with Python floats, shifted by the max for safety."""
    m = max(beta * v for v, q in zip(values, probs) if q > 0)
    return (m + math.log(math.fsum(q * math.exp(beta * v - m) for v, q in zip(values, probs) if q > 0))) / beta


@pytest.mark.parametrize("beta", [-40.0, -3.0, -0.5, 0.25, 1.0, 7.0, 500.0, -500.0])
def test_entropic_matches_direct_formula_for_either_sign_and_large_beta(beta):
    values = [0.0, 0.3, 0.55, 1.0, 2.0]
    probs = [0.3, 0.1, 0.25, 0.3, 0.05]
    v = torch.tensor(values, dtype=torch.float64)
    p = torch.tensor(probs, dtype=torch.float64)
    got = rm.entropic(v, p, beta).item()
    assert math.isfinite(got)
    assert got == pytest.approx(_entropic_reference(values, probs, beta), abs=1e-12)
    # Jensen: risk seeking above the mean, risk averse below, within [min, max].
    mean = float(np.dot(values, probs))
    assert (got >= mean) if beta > 0 else (got <= mean)
    assert min(values) <= got <= max(values)


def test_entropic_limits_beta_to_zero_and_to_infinity():
    v = torch.tensor([0.0, 0.3, 0.55, 1.0, 2.0], dtype=torch.float64)
    p = torch.tensor([0.3, 0.1, 0.25, 0.3, 0.05], dtype=torch.float64)
    mean = rm.mean(v, p).item()
    var = (p * (v - mean) ** 2).sum().item()
    assert rm.entropic(v, p, 0.0).item() == mean
    for beta in (1e-2, 1e-4, -1e-4, 1e-8, -1e-8):
        # J_β = mean + β Var/2 + O(β²): the third cumulant here is < 1, so β² bounds the rest.
        assert rm.entropic(v, p, beta).item() == pytest.approx(mean + beta * var / 2, abs=beta**2 + 1e-15)
    # β -> ±∞: J -> max/min; J_β = max + log(p_max)/β + O(e^{−β·gap}/β).
    assert rm.entropic(v, p, 2000.0).item() == pytest.approx(2.0 + math.log(0.05) / 2000.0, abs=1e-12)
    assert rm.entropic(v, p, -2000.0).item() == pytest.approx(0.0 + math.log(0.3) / -2000.0, abs=1e-12)
    # Monotone in β.
    betas = [-50.0, -5.0, -1.0, -0.1, 0.1, 1.0, 5.0, 50.0]
    js = [rm.entropic(v, p, b).item() for b in betas]
    assert all(x < y for x, y in zip(js, js[1:]))


def test_entropic_small_beta_float32_keeps_the_mean():
    # Probabilities 0.1 do not sum to exactly 1 in float32; that rounding must
    # not be amplified by 1/β (it was: J = 0.0 instead of 0.5 at β = 1e-8).
    v = torch.linspace(0.0, 1.0, 10)
    p = torch.full((10,), 0.1)
    for beta in (1e-8, -1e-8, 1e-6):
        got = rm.entropic(v, p, beta)
        assert got.dtype == torch.float32
        # float32 rounding of values in [0, 1] (6e-8) plus the β Var/2 term (< 1e-6·0.1).
        assert got.item() == pytest.approx(0.5, abs=5e-7)


# --------------------------------------------------------------------------- errors


def test_bad_inputs_raise_value_errors_naming_the_field():
    v = torch.tensor([0.0, 1.0])
    p = torch.tensor([0.5, 0.5])
    with pytest.raises(ValueError, match="probs"):
        rm.mean(v, torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="probs"):
        rm.mean(v, torch.tensor([1.5, -0.5]))
    with pytest.raises(ValueError, match="shape"):
        rm.mean(v, torch.tensor([1.0]))
    with pytest.raises(ValueError, match="values"):
        rm.mean(torch.tensor([0.0, float("nan")]), p)
    with pytest.raises(ValueError, match="values"):
        rm.cvar(torch.tensor([0.0, float("inf")]), p, 0.5)
    with pytest.raises(ValueError, match="alpha"):
        rm.rvar(v, p, 0.8, 0.2)
    with pytest.raises(ValueError, match="alpha"):
        rm.rvar(v, p, 0.5, 0.5)
    with pytest.raises(ValueError, match="beta"):
        rm.rvar(v, p, 0.2, 1.5)
    with pytest.raises(ValueError, match="alpha"):
        rm.rvar(v, p, -0.1, 0.5)
    with pytest.raises(ValueError, match="alpha"):
        rm.cvar(v, p, 0.0)
    with pytest.raises(ValueError, match="omega"):
        rm.mvar(v, p, 0.2, 0.8, -0.1)
    with pytest.raises(ValueError, match="level"):
        rm.quantile(v, p, 1.01)
    with pytest.raises(ValueError, match="beta"):
        rm.entropic(v, p, float("nan"))
    with pytest.raises(ValueError, match="samples"):
        rm.empirical_mean(torch.tensor([1.0, float("nan")]))


@pytest.mark.parametrize("alpha,beta,omega", [(0.2, 0.8, 0.5), (0.05, 0.35, 0.0), (0.5, 1.0, 2.5)])
def test_tail_risks_are_cvar_rvar_mvar_bit_for_bit(alpha, beta, omega):
    from theory.risk_measures import cvar, mvar, rvar, tail_risks

    g = torch.Generator().manual_seed(11)
    values = torch.randint(0, 7, (4, 3, 9), generator=g).to(torch.float64) / 6  # ties: atoms split by the levels
    probs = torch.rand(4, 3, 9, generator=g, dtype=torch.float64)
    probs = probs / probs.sum(-1, keepdim=True)
    got = tail_risks(values, probs, alpha, beta, omega)
    expected = (cvar(values, probs, alpha), rvar(values, probs, alpha, beta), mvar(values, probs, alpha, beta, omega))
    for name, a, b in zip(("cvar", "rvar", "mvar"), got, expected):
        assert torch.equal(a, b), name

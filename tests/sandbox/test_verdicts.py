"""sandbox.verdicts against independent computations: closed-form t quantiles, the rule's cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sandbox.verdicts import (
    FAILS,
    HOLDS,
    NOT_RESOLVED,
    Comparison,
    bootstrap_interval,
    claim_verdict,
    compare,
    comparison_verdict,
    control_report,
    t_interval,
)

# Two-sided 95 % Student-t quantiles t_{0.975, dof} from printed tables (e.g. NIST/SEMATECH e-Handbook
# 1.3.6.7.2), independent of scipy; the tables give 3 decimals, hence the 5e-4 tolerance.
T975 = {1: 12.706, 3: 3.182, 5: 2.571, 7: 2.365, 9: 2.262, 15: 2.131}


@pytest.mark.parametrize("dof", sorted(T975))
def test_t_interval_matches_the_printed_t_table(dof):
    x = np.random.default_rng(dof).normal(0.3, 1.0, size=dof + 1)
    mean, low, high = t_interval(x)
    s = math.sqrt(sum((v - x.mean()) ** 2 for v in x) / dof)  # sample sd by hand, ddof = 1
    assert mean == pytest.approx(float(x.mean()), abs=1e-12)
    half = (high - low) / 2
    assert half / (s / math.sqrt(dof + 1)) == pytest.approx(T975[dof], abs=5e-4)
    assert (low + high) / 2 == pytest.approx(mean, abs=1e-12)


def test_t_interval_covers_at_the_nominal_rate_and_bootstrap_under_covers_with_8_seeds():
    # 1000 normal samples of n = 8: the t interval's coverage is 0.95 ± 2·sqrt(.95·.05/1000) ≈ ±0.014; the
    # percentile bootstrap's is ≈ 0.88 (the reason the verdicts use t), measured well below 0.93.
    rng = np.random.default_rng(0)
    t_cover = boot_cover = 0
    for r in range(1000):
        x = rng.normal(size=8)
        _, lo, hi = t_interval(x)
        t_cover += lo < 0 < hi
        _, lo, hi = bootstrap_interval(x, resamples=1000, seed=r)
        boot_cover += lo < 0 < hi
    assert abs(t_cover / 1000 - 0.95) < 0.02
    assert boot_cover / 1000 < 0.93


def test_interval_input_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        t_interval([1.0])
    with pytest.raises(ValueError, match="non-finite"):
        t_interval([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="level"):
        t_interval([1.0, 2.0], level=1.5)


@pytest.mark.parametrize(
    ("low", "high", "side", "expected"),
    [
        (0.1, 0.3, "greater", HOLDS),
        (-0.3, -0.1, "greater", FAILS),
        (-0.1, 0.3, "greater", NOT_RESOLVED),
        (0.0, 0.3, "greater", NOT_RESOLVED),  # touching 0 is not "on the claimed side"
        (-0.3, -0.1, "less", HOLDS),
        (0.1, 0.3, "less", FAILS),
        (-0.1, 0.1, "less", NOT_RESOLVED),
    ],
)
def test_comparison_verdict_rule(low, high, side, expected):
    assert comparison_verdict(low, high, side) == expected


def test_comparison_verdict_rejects_bad_input():
    with pytest.raises(ValueError, match="side"):
        comparison_verdict(0.1, 0.2, "up")
    with pytest.raises(ValueError, match="ci_low <= ci_high"):
        comparison_verdict(0.3, 0.2)


def test_compare_builds_the_record_from_paired_differences_and_serialises():
    d = [0.2, 0.3, 0.25, 0.1, 0.4, 0.35, 0.15, 0.3]
    c = compare("riskpo", "dr_grpo", "final entropy", d)
    mean = sum(d) / 8
    s = math.sqrt(sum((v - mean) ** 2 for v in d) / 7)
    assert c.difference == pytest.approx(mean)
    assert c.ci_low == pytest.approx(mean - T975[7] * s / math.sqrt(8), abs=1e-3)
    assert (c.verdict, c.seeds, c.wins, c.primary) == (HOLDS, 8, 8, True)
    back = json.loads(json.dumps(c.to_dict()))
    assert set(back) >= {"method", "baseline", "quantity", "framing", "difference", "ci_low", "ci_high", "verdict"}
    assert back["framing"] == "equal_steps" and back["verdict"] == HOLDS
    flipped = compare("riskpo", "dr_grpo", "final entropy", d, side="less")
    assert (flipped.verdict, flipped.wins) == (FAILS, 0)


def _c(verdict: str, framing: str = "equal_steps") -> Comparison:
    return Comparison("m", "b", "q", framing, 0.0, -1.0, 1.0, verdict)


def test_claim_verdict_uses_primary_comparisons_only():
    assert claim_verdict([_c(HOLDS), _c(HOLDS)]) == HOLDS
    assert claim_verdict([_c(HOLDS), _c(NOT_RESOLVED)]) == NOT_RESOLVED
    assert claim_verdict([_c(HOLDS), _c(NOT_RESOLVED), _c(FAILS)]) == FAILS
    assert claim_verdict([_c(HOLDS), _c(FAILS, "matched_pass_at_1")]) == HOLDS  # secondary never sets it
    with pytest.raises(ValueError, match="no primary"):
        claim_verdict([_c(HOLDS, "run_average")])


def test_control_report_flags_a_control_with_the_methods_verdict():
    ok = control_report(HOLDS, {"negated advantage": [_c(FAILS)], "bundle mean": [_c(NOT_RESOLVED)]})
    assert ok["valid"] and ok["verdicts"] == {"negated advantage": FAILS, "bundle mean": NOT_RESOLVED}
    bad = control_report(HOLDS, {"negated advantage": [_c(FAILS)], "bundle mean": [_c(HOLDS)]})
    assert not bad["valid"] and bad["indistinguishable_from"] == ["bundle mean"]
    assert "cannot tell" in bad["note"]
    with pytest.raises(ValueError, match="at least one control"):
        control_report(HOLDS, {})

"""Every theoretical claim, checked numerically at a size that keeps the suite fast.

Each test asserts the claim's inequality on the measured numbers (not only the ``holds``
flag), with the tolerance justified next to it. The full-size runs are
``python -m sandbox all`` (docs/sandbox.md).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from claim_checks import run_and_check

from sandbox import CLAIMS
from sandbox import claims as C
from sandbox.__main__ import main as cli_main
from theory.assumptions import (
    assumption_1_holds,
    layer_cake_transform_covariance,
    positively_dependent,
    slope_dominates,
    softmax_prob_derivative,
    tail_covariance_signs_hold,
    threshold_covariances,
)
from theory.dynamics import covariance

SILENT = lambda fraction: None  # noqa: E731


def test_registry_lists_every_claim_function():
    assert set(CLAIMS) == {name[len("claim_") :] for name in C.__all__ if name.startswith("claim_")}
    assert [c.name for c in C.list_claims()] == list(CLAIMS)


def test_registry_records_carry_the_text_the_explorer_shows():
    for record in C.list_claims():
        assert record.kind in ("simulation", "instances")
        for field in ("title", "statement", "assumptions", "conclusion", "paper"):
            assert len(getattr(record, field)) > 10, (record.name, field)
        assert (record.name in C.SIMULATION_CLAIMS) == (record.kind == "simulation")
    assert C.get_claim("thm3_tail_transforms").erratum.startswith("Paper erratum")
    assert all(C.get_claim(n).erratum is None for n in CLAIMS if n != "thm3_tail_transforms")
    with pytest.raises(ValueError, match="unknown claim"):
        C.get_claim("nope")
    with pytest.raises(ValueError, match="registered twice"):
        C.register_claim(
            "rs_lemma2", kind="instances", paper="p", title="t", statement="s", assumptions="a", conclusion="c"
        )(lambda: {})
    with pytest.raises(ValueError, match="kind="):
        C.register_claim("x", kind="other", paper="p", title="t", statement="s", assumptions="a", conclusion="c")
    with pytest.raises(ValueError, match="statement must be non-empty"):
        C.register_claim("x", kind="instances", paper="p", title="t", statement=" ", assumptions="a", conclusion="c")


def test_threshold_covariances_reconstruct_the_covariance_of_any_monotone_transform():
    gen = torch.Generator().manual_seed(3)
    rewards = torch.randint(0, 4, (50, 7), generator=gen).double()
    probs = torch.softmax(torch.randn(50, 7, generator=gen, dtype=torch.float64), -1)
    logp = probs.log()
    transformed = torch.sqrt(rewards) + 0.3 * rewards**2  # nondecreasing in r
    direct = covariance(transformed, logp, probs)
    via_slices = layer_cake_transform_covariance(transformed, rewards, logp, probs)
    torch.testing.assert_close(via_slices, direct, rtol=0, atol=1e-13)  # float64 sums of 7 terms


def test_covariance_signs_by_hand_on_binary_rewards():
    # Binary r with q_α = q_β = 1 (easy question): only the lower-tail sign applies, Cov(r, log π) <= 0.
    rewards = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    probs = torch.tensor([[0.05, 0.5, 0.45], [0.5, 0.3, 0.2]], dtype=torch.float64)
    ok = tail_covariance_signs_hold(rewards.double(), probs.log(), probs, torch.ones(2, 1), torch.ones(2, 1))
    cov = covariance(rewards.double(), probs.log(), probs)
    assert cov[0] > 0 and cov[1] < 0
    assert ok.tolist() == [False, True]
    lower, upper, slices = threshold_covariances(rewards.double(), probs.log(), probs)
    assert float(slices[1, 0]) == pytest.approx(float(cov[1]), abs=1e-15)  # the one non-trivial slice
    # The literal Assumption 1 on the same laws (α = 0.2, β = 0.8 put both quantiles at 1 for row 0 and
    # at 0 / 1 for row 1): row 1 has ψ(0) = log 0.5 >= E log π and ψ(1) = (0.3 log .3 + .2 log .2)/.5 < E log π.
    literal = assumption_1_holds(rewards.double(), probs.log(), probs, 0.2, 0.8)
    assert literal.tolist() == [False, False]


def test_slope_dominates_and_positive_dependence_by_hand():
    r = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    assert bool(slope_dominates(r.clamp(max=0.5), r, r))
    assert not bool(slope_dominates(2 * r, r, r))
    probs = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)  # increasing in r
    assert bool(positively_dependent(r, probs))
    assert not bool(positively_dependent(r, probs.flip(0)))


def test_softmax_prob_derivative_matches_finite_difference():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, generator=gen, dtype=torch.float64)
    d = torch.randn(5, generator=gen, dtype=torch.float64)
    h = 1e-6
    fd = (torch.softmax(logits + h * d, -1) - torch.softmax(logits - h * d, -1)) / (2 * h)
    torch.testing.assert_close(softmax_prob_derivative(logits, d), fd, rtol=0, atol=1e-9)  # O(h²) + O(1e-16/h)


# --------------------------------------------------------------------------- RiskPO


def test_prop1_entropy_residual_is_second_order():
    res = C.claim_prop1_entropy_residual(seeds=32)
    table = res["table"]
    # residual/η → 0 linearly: from η = 1e-1 to 3e-4 it must shrink by > 100x (η shrinks 333x).
    assert table[-1]["max_abs_residual_over_eta"] < table[0]["max_abs_residual_over_eta"] / 100
    # residual/η² converges to ½H''(0) (double autograd, an independent computation) at rate O(η):
    # the error at η = 3e-4 is < 1% of the curvature scale and >= 100x below the error at η = 0.1.
    errors = res["limit_errors"]
    assert errors[-1] < 0.01 * res["curvature_scale"] and errors[-1] < errors[0] / 100
    assert math.isfinite(res["bound"])
    assert res["holds"]


def test_thm1_score_function_rvar_gradient_matches_finite_differences():
    res = C.claim_thm1_rvar_gradient(seeds=4)
    # Central differences with ε = 1e-5 are accurate to ~1e-10 relative; a wrong weight
    # (e.g. missing 1/(β−α) or the wrong quantile) gives O(1) relative errors.
    assert res["max_relative_error"] < 1e-6
    assert res["holds"]


def test_lemma1_layer_cake_identity():
    res = C.claim_lemma1_layer_cake(seeds=100)
    assert res["max_abs_error"] < 1e-12  # float64 round-off on O(1) covariances
    assert res["holds"]


def test_thm2_covariance_ordering_under_the_literal_assumption():
    res = C.claim_thm2_covariance(seeds=400)
    counts = res["assumption_counts"]
    assert counts["literal"] >= 100  # enough instances meet Assumption 1 as printed for the check to mean something
    assert counts["literal_ordered"] == counts["literal"]  # no exception allowed (1e-12 round-off slack)
    assert counts["literal_not_signs"] == 0 and counts["signs_only"] > 0  # literal ⇒ signs, strictly stronger
    assert 0 < res["violated_failure_rate"] < 1  # without the assumption the order fails sometimes
    ce = res["counterexample_without_assumption"]
    assert ce["cov_mvar"] > ce["cov_mean"] and ce["failed_clauses"]
    # Recompute the shown counterexample independently (plain float sums, not theory.dynamics).
    r, p = ce["rewards"], ce["probs"]
    total = sum(p)
    p = [x / total for x in p]  # the probabilities were rounded to 6 digits for display
    logp = [math.log(x) for x in p]
    mean_logp = sum(pi * lp for pi, lp in zip(p, logp))
    qa, qb, omega = ce["q_alpha"], ce["q_beta"], 0.5
    a_mvar = [-(1 + omega) * max(qa - x, 0) + min(max(x, qa), qb) for x in r]
    a_mean = r

    def cov(adv):
        m = sum(pi * a for pi, a in zip(p, adv))
        return sum(pi * (a - m) * (lp - mean_logp) for pi, a, lp in zip(p, adv, logp))

    assert cov(a_mvar) > cov(a_mean)  # 6-digit rounding of π moves covariances by ~1e-6, far below the gap
    points = res["points"]
    assert {"cov_mean", "cov_mvar", "gap", "assumption_1", "covariance_signs", "upper_monotone"} <= set(points[0])
    assert all(pt["gap"] >= -1e-12 for pt in points if pt["assumption_1"])
    assert res["holds"]


def test_thm3_is_false_as_printed_and_true_corrected():
    res = C.claim_thm3_tail_transforms(seeds=300)
    assert res["cases"] >= 100
    assert (
        res["printed_fails"] > 0 and not res["holds"]
    )  # the printed direction fails on instances meeting every hypothesis
    assert res["corrected_holds"] == res["cases"] and res["holds_corrected"]
    assert res["layer_cake_max_error"] < 1e-12  # Lemma 1 route to the same gap; float64 round-off
    assert res["erratum"].startswith("Paper erratum")


def test_thm3_counterexample_satisfies_every_hypothesis_by_hand():
    ce = C.thm3_counterexample()
    r, p = ce["rewards"], [0.3] + [0.37 / 7] * 7 + [0.15, 0.18]
    logp = [math.log(x) for x in p]
    mean_logp = sum(a * b for a, b in zip(p, logp))
    # F(0) = 0.3 >= 0.2 so q_α = 0; F(0.7) = 0.67 < 0.8 <= F(0.8) = 0.82 so q_β = 0.8.
    assert ce["q_alpha"] == 0.0 and ce["q_beta"] == 0.8 and ce["assumption_1"]
    # ψ = log π per atom: ψ(0) = log .3 >= E, ψ(0.8) = log .15 >= E, ψ(1) = log .18 >= ψ(0.8).
    assert math.log(0.3) >= mean_logp and math.log(0.15) >= mean_logp and math.log(0.18) >= math.log(0.15)
    soft_clip = [x if x <= 0.8 else 0.8 + 1 - math.exp(-(x - 0.8)) for x in r]

    def cov(h):
        m = sum(a * b for a, b in zip(p, h))
        return sum(pi * (a - m) * (lp - mean_logp) for pi, a, lp in zip(p, h, logp))

    # g₁ = identity is steeper above q_β than g₂ = soft clip; printed: Cov(SF, g₂) >= Cov(SF, g₁). It is not.
    assert cov(r) - cov(soft_clip) > 1e-3
    assert ce["cov_sf_g1"] == pytest.approx(cov(r), abs=1e-12) and ce["cov_sf_g2"] == pytest.approx(
        cov(soft_clip), abs=1e-12
    )


def test_upper_tail_transforms_meet_the_hypotheses_of_theorem_3():
    q = torch.tensor([[0.5]], dtype=torch.float64)
    t = torch.linspace(-1, 2, 3001, dtype=torch.float64)[None]
    g = C.upper_tail_transforms(t, q)
    below = t[0] <= 0.5
    for name, values in g.items():
        assert bool((torch.diff(values[0]) >= 0).all()), name  # nondecreasing
        assert torch.equal(values[0][below], t[0][below]), name  # equal to t on (−∞, q_β]
    slope = {name: torch.diff(v[0]) / torch.diff(t[0]) for name, v in g.items()}
    for g1, g2 in C.riskpo_covariance.THM3_PAIRS:
        assert bool((slope[g1] >= slope[g2] - 1e-9).all()), (g1, g2)  # g₁' >= g₂' (finite differences, 1e-9 slack)


# --------------------------------------------------------------------------- RS-GRPO


def test_rs_lemma2_standard_pg_lowers_optimal_probability():
    res = C.claim_rs_lemma2()
    # By hand: r̄ = .77, g = π(r − r̄) = (.0115, .027, −.0385), Σπg = .02295,
    # dπ(a*)/dη = .05 (.0115 − .02295) = −5.725e-4.
    assert res["derivative"] == pytest.approx(-5.725e-4, abs=1e-12)
    assert all(c < 0 for c in res["changes"]) and len(res["changes"]) == len(C.rs_grpo.LR_GRID)
    assert res["holds"]


def test_rs_lemma3_finite_step_at_every_learning_rate():
    res = C.claim_rs_lemma3(seeds=60)
    assert res["holds"] and res["instances_with_beta0"] == 60
    assert res["decreasing_at_beta_zero"] > 0  # the instances include Lemma-2-type policies


def test_rs_lemma3_check_can_fail_on_a_grid_too_short_for_some_instances():
    # Grids ending at 3/Δ leave no two decades beyond β₀ ≈ log(1/π(a*))/Δ: the check must say so.
    res = C.claim_rs_lemma3(seeds=60, beta_units=tuple(np.logspace(-2, 0.5, 60)))
    assert not res["holds"] and res["instances_with_beta0"] < 60


def test_rs_lemma4_finite_step_at_every_learning_rate():
    res = C.claim_rs_lemma4(seeds=60)
    assert res["holds"] and res["instances_with_beta1"] == 60
    # Δ ∝ 1/β asymptotically: β·Δ settles (measured ~4e-5 over the last decade at η = 1; 1e-3 leaves margin).
    assert res["median_one_over_beta_drift"] < 1e-3


def test_rs_lemma4_check_can_fail_when_the_grid_stops_before_the_peak():
    res = C.claim_rs_lemma4(seeds=60, beta_units=tuple(np.logspace(-2, 1.5, 60)))
    assert not res["holds"] and res["instances_with_beta1"] < 60


def test_rs_bandit_reduced_sweep():
    # A reduced sweep (2 seeds, β ∈ {0, 2, 4, 8}, 4 000 updates): every comparison recomputed from the
    # runs, β = 4 and 8 above β = 0 and GRPO at equal updates (tests/claim_checks.py).
    res = run_and_check("rs_bandit")
    primary = {(c["method"], c["baseline"]): c for c in res["comparisons"] if c["primary"]}
    assert primary[("rs_grpo(beta=8)", "rs_grpo(beta=0)")]["difference"] > 0.3  # 0.6 mode vs ≈ 1.0 optimum
    assert all(c["seeds"] == 2 for c in primary.values())


# --------------------------------------------------------------------------- tabular claims


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["entropy_riskpo_vs_grpo", "risk_seeking_collapse", "passk_large_k", "bundle_size_sweep"]
)
def test_tabular_claim_at_test_size(name):
    # Every comparison (primary, secondary, controls) recomputed from the runs, every method trains,
    # methods differ from baselines and controls (tests/claim_checks.py); the verdict is whatever the rule gives.
    res = run_and_check(name)
    assert res["framing"] == "equal_steps" and res["controls"]
    baselines = {c["baseline"] for c in res["comparisons"] if c["primary"]}
    if name != "bundle_size_sweep":  # Table 4 compares RiskPO's bundle sizes with each other
        assert {"grpo", "dr_grpo"} <= baselines


def test_bundling_gives_signal_on_all_fail_prompts():
    res = run_and_check("bundling_nonzero_gradient")
    rows = {row["estimator"]: row for row in res["table"]}
    assert rows["riskpo(bundle_size=5)"]["frac_allfail_prompts_with_varied_adv"] > 0.5
    # By construction (not evidence): group-relative advantages of an all-zero group are exactly 0.
    assert res["sanity_group_based_zero"]
    # The claim is about bundling, not the sign or MVaR: both controls get its verdict, and the output says so.
    assert not res["controls_valid"] and "cannot tell" in res["controls_note"]


def test_passk_claim_decides_each_method_half_separately():
    # Each half of the pass@k claim (RiskPO, RS-GRPO) gets its own verdict from its own two comparisons.
    from sandbox.claims.training import claim_passk_large_k

    res = claim_passk_large_k(seeds=3, steps=10, progress=SILENT)
    prim = [c for c in res["comparisons"] if c["primary"]]
    by_method = {
        m: [c["verdict"] for c in prim if c["method"] == m] for m in ("riskpo(bundle_size=5)", "rs_grpo(beta=4)")
    }
    rule = lambda v: "fails" if "fails" in v else "holds" if all(x == "holds" for x in v) else "not resolved"  # noqa: E731
    assert res["parts"] == {
        "riskpo": rule(by_method["riskpo(bundle_size=5)"]),
        "rs_grpo": rule(by_method["rs_grpo(beta=4)"]),
    }
    assert {c["baseline"] for c in prim} == {"grpo", "dr_grpo"} and len(prim) == 4


# --------------------------------------------------------------------------- API and CLI


def test_claims_by_name_and_unknown_name():
    out = {name: CLAIMS[name](**C.size_overrides(name)) for name in ("lemma1_layer_cake", "rs_lemma2")}
    assert set(out) == {"lemma1_layer_cake", "rs_lemma2"} and all(r["holds"] for r in out.values())
    with pytest.raises(ValueError, match="unknown claim"):
        C.get_claim("nope")


def test_cli_writes_json_csv_html(tmp_path, capsys):
    assert cli_main(["rs_lemma2", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "rs_lemma2.json").read_text())
    assert data["holds"] is True and data["derivative"] == pytest.approx(-5.725e-4, abs=1e-12)
    assert data["statement"].startswith("If there is an action") and data["erratum"] is None
    assert (tmp_path / "rs_lemma2.csv").read_text().startswith("lr,")
    assert (tmp_path / "rs_lemma2.html").stat().st_size > 1000
    assert cli_main(["list"]) == 0
    assert "thm2_covariance" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["not_a_claim", "--out", str(tmp_path)])


def test_seeds_reach_simulations_and_instances_reach_instance_claims():
    assert C.size_overrides("rs_bandit", seeds=3, instances=50) == {"seeds": 3}
    assert C.size_overrides("thm2_covariance", seeds=3, instances=50) == {"seeds": 50}
    assert C.size_overrides("thm2_covariance", seeds=3) == {}
    assert C.SIMULATION_CLAIMS <= set(CLAIMS)

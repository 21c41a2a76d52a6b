"""The regime map (sandbox.regime_map) at a tiny size: its rows are the simulator's paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from sandbox import regime_map as RM
from sandbox.tabular import TabularConfig, run_tabular
from theory import get_estimator


def test_point_rows_are_the_paired_final_differences_with_a_t_interval():
    point = RM.MapPoint("entropy", "lr", 0.25, {"lr": 0.25}, dict(RM.RISKPO_DEFAULT), 20)
    rows, base = RM.run_point(point, seeds=3)
    # Independent: the same run through run_tabular, differences and t interval by hand.
    specs = RM.point_specs(RM.RISKPO_DEFAULT)
    res = run_tabular(TabularConfig(steps=20, k=RM.K, lr=0.25, log_every=20), list(specs.values()), seeds=3)
    m = res.metrics
    last = m[m.step == 20]
    ent = last.pivot(index="seed", columns="estimator", values="entropy")
    diff = (ent["riskpo(alpha=0.2,beta=0.8,bundle_size=5,omega=0.5)"] - ent["dr_grpo"]).to_numpy()
    half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / math.sqrt(3)
    (row,) = [r for r in rows if r["baseline"] == "dr_grpo" and r["quantity"] == "entropy"]
    # same float64 arithmetic in another order: 1e-12
    assert row["difference"] == pytest.approx(diff.mean(), abs=1e-12)
    assert row["ci_low"] == pytest.approx(diff.mean() - half, abs=1e-12)
    assert row["ci_high"] == pytest.approx(diff.mean() + half, abs=1e-12)
    assert row["step"] == 20 and row["seeds"] == 3 and row["axis"] == "lr"
    assert base == pytest.approx(float(m[m.step == 0].pass_at_1.mean()), abs=1e-12)
    claims = {r["claim"] for r in rows}
    assert claims == set(RM.CLAIM_COMPARISONS)


def test_training_length_axis_reads_one_long_run_at_each_length():
    point = RM.MapPoint("entropy", "centre", None, {}, dict(RM.RISKPO_DEFAULT), 10)
    rows, _ = RM.run_point(point, seeds=2, lengths=(5, 10, 20))
    steps = sorted({r["value"] for r in rows if r["axis"] == "steps"})
    assert steps == [5, 10, 20]
    # the centre's rows (step 10) equal the length axis's step-10 rows
    centre = {(r["method"], r["baseline"], r["quantity"]): r["difference"] for r in rows if r["axis"] == "centre"}
    at10 = {
        (r["method"], r["baseline"], r["quantity"]): r["difference"]
        for r in rows
        if r["axis"] == "steps" and r["value"] == 10
    }
    assert centre == at10
    # and a separate 10-step run gives the same numbers (a run's first T steps do not depend on its length)
    short, _ = RM.run_point(point, seeds=2)
    assert {(r["method"], r["baseline"], r["quantity"]): r["difference"] for r in short} == pytest.approx(centre)


def test_bundle_axis_at_b1_has_no_bundle_comparison():
    specs = RM.point_specs({**RM.RISKPO_DEFAULT, "bundle_size": 1})
    assert "riskpo_b1" not in specs and "riskpo_b1" in RM.point_specs(RM.RISKPO_DEFAULT)


def test_centred_advantage_is_the_raw_minus_its_batch_mean():
    rewards = (torch.rand(40, 8, generator=torch.Generator().manual_seed(3)) > 0.5).double()
    raw = get_estimator("riskpo", bundle_size=5, quantile_source="batch", seed=4)
    cen = get_estimator("riskpo_centred", bundle_size=5, quantile_source="batch", seed=4)
    a_raw, _ = raw.compute(rewards, None)
    a_cen, _ = cen.compute(rewards, None)
    assert bool((a_raw <= 0).all())  # the camera-ready advantage is never positive
    assert torch.allclose(a_cen, a_raw - a_raw.mean(), atol=1e-12)  # float64 round-off


def test_centring_removes_variance_and_no_expected_signal():
    res = RM.centring_variance(TabularConfig(), RM.RISKPO_DEFAULT, replicates=60)
    assert res["total_variance_centred"] < res["total_variance_raw"]
    # the mean gradients differ by Monte-Carlo noise only: within 4 standard errors (the batch mean is
    # estimated from the same samples, so a small correlation remains; measured ~1 s.e.)
    assert res["mean_gradient_gap_over_se"] < 4


def test_headline_finds_points_where_all_three_hold():
    def row(point, baseline, quantity, verdict):
        return {
            "centre": "entropy",
            "axis": "lr",
            "value": point,
            "step": 150,
            "method": "riskpo",
            "baseline": baseline,
            "quantity": quantity,
            "verdict": verdict,
        }

    rows = [
        row(0.1, "dr_grpo", "entropy", "holds"),
        row(0.1, "grpo", "pass_at_k", "holds"),
        row(0.1, "dr_grpo", "pass_at_k", "holds"),
        row(1.0, "dr_grpo", "entropy", "holds"),
        row(1.0, "grpo", "pass_at_k", "fails"),
        row(1.0, "dr_grpo", "pass_at_k", "holds"),
    ]
    head = RM.headline(rows)
    assert head["points"] == [{"centre": "entropy", "axis": "lr", "value": "0.1", "step": 150}]
    assert head["total"] == 2 and head["counts"]["passk_vs_grpo"]["fails"] == 1


def test_bad_axes_and_seeds_are_value_errors_naming_them():
    with pytest.raises(ValueError, match="axis='nope'"):
        RM.run_map(seeds=2, axes=["nope"])
    with pytest.raises(ValueError, match="centre='x'"):
        RM.run_map(seeds=2, centres=["x"])
    with pytest.raises(ValueError, match="seeds=1"):
        RM.run_map(seeds=1)


def test_every_axis_lists_its_centre_value():
    defaults = TabularConfig().__dict__
    for axis, (where, values) in RM.AXES.items():
        centre = defaults.get(axis) if where == "config" else RM.RISKPO_DEFAULT.get(axis) if where == "riskpo" else 150
        assert centre in values, axis
    assert np.all(np.diff(RM.AXES["steps"][1]) > 0)


def test_centred_population_form_has_mean_zero_and_the_mvar_slopes():
    rewards = torch.tensor([[0.0, 0.25, 0.5, 0.75, 1.0]], dtype=torch.float64)
    probs = torch.tensor([[0.1, 0.2, 0.4, 0.2, 0.1]], dtype=torch.float64)
    cen = get_estimator("riskpo_centred", bundle_size=1).population(rewards, probs)
    # by hand: q_0.2 = 0.25, q_0.8 = 0.75, ω = 0.5; up to a constant (which centring removes)
    # A(r) = −1.5·(0.25 − r)⁺ + clip(r, 0.25, 0.75)
    raw = torch.tensor([[-1.5 * 0.25 + 0.25, 0.25, 0.5, 0.75, 0.75]], dtype=torch.float64)
    want = raw - (probs * raw).sum(-1, keepdim=True)
    assert torch.allclose(cen, want, atol=1e-12)  # float64 round-off
    assert abs(float((probs * cen).sum())) < 1e-12

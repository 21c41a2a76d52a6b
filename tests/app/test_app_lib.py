"""Unit tests of the app's helpers (app_lib) and of theory.bundles.bundle_score_distribution,
which the app added to theory/. Independent references: enumeration, NumPy, hand-built curves."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from app_lib.choices import Knobs, build_choices, is_quantile_band
from app_lib.runs import final_summary, lemma_thresholds, run_each, stack_frames
from app_lib.shapes import advantage_vs_accuracy, bundle_accuracies
from sandbox.plots import band_figure, colour_map
from theory.bundles import bundle_score_distribution


@pytest.mark.parametrize("accuracies", [[0.5], [0.1, 0.9], [0.0, 0.3, 1.0], [0.2, 0.35, 0.5, 0.65, 0.8, 0.95]])
def test_bundle_score_distribution_matches_enumeration(accuracies):
    values, probs = bundle_score_distribution(torch.tensor(accuracies, dtype=torch.float64))
    expected = np.zeros(len(accuracies) + 1)
    for outcome in itertools.product((0, 1), repeat=len(accuracies)):
        expected[sum(outcome)] += math.prod(a if o else 1 - a for o, a in zip(outcome, accuracies))
    assert values.tolist() == list(range(len(accuracies) + 1))
    # float64 products of at most 6 factors: agreement to 1e-14.
    assert probs.numpy() == pytest.approx(expected, abs=1e-14)


@pytest.mark.parametrize(
    "bad, field",
    [
        (torch.tensor([0.5, 1.2]), "accuracies"),
        (torch.tensor([]), "accuracies"),
        (torch.tensor([[0.5]]), "accuracies"),
        (torch.tensor([float("nan")]), "accuracies"),
    ],
)
def test_bundle_score_distribution_rejects_bad_input(bad, field):
    with pytest.raises(ValueError, match=field):
        bundle_score_distribution(bad)


def test_build_choices_modes_and_errors():
    knobs = Knobs(alpha=0.1, beta=0.7, omega=1.0, bundle_size=4, k=3, rs_betas=(1.0, 4.0))
    choices, errors = build_choices(("grpo", "riskpo", "rs_grpo", "passk_chen"), knobs, mode="bundled")
    assert not errors
    by_label = {c.label: c.kwargs() for c in choices}
    assert by_label["rs_grpo (β=1)"] == {"beta": 1.0} and by_label["rs_grpo (β=4)"] == {"beta": 4.0}
    assert by_label["riskpo (α=0.1, β=0.7, ω=1, B=4)"] == {"alpha": 0.1, "beta": 0.7, "omega": 1.0, "bundle_size": 4}
    assert by_label["passk_chen (k=3)"] == {"k": 3}
    per_question, _ = build_choices(("riskpo",), knobs, mode="per_question")
    assert per_question[0].kwargs()["bundle_size"] == 1 and per_question[0].kwargs()["quantile_source"] == "group"
    assert is_quantile_band("riskpo") and not is_quantile_band("rs_grpo") and not is_quantile_band("grpo")
    bad, errors = build_choices(("grpo", "riskpo"), Knobs(alpha=0.8, beta=0.8), mode="bundled")
    assert [c.name for c in bad] == ["grpo"]
    assert len(errors) == 1 and "alpha=0.8 must be < beta=0.8" in errors[0]
    with pytest.raises(ValueError, match="mode"):
        build_choices(("grpo",), knobs, mode="nonsense")


def test_advantage_table_marks_undefined_ends():
    choices, _ = build_choices(("dr_grpo",), Knobs(), mode="per_question")
    frame, errors = advantage_vs_accuracy(choices, 4)
    assert not errors and frame["c"].tolist() == [0, 1, 2, 3, 4]
    assert math.isnan(frame["adv_correct"].iloc[0]) and math.isnan(frame["adv_incorrect"].iloc[-1])
    # Dr. GRPO: A⁺ = 1 − p̂, A⁻ = −p̂, Σ|A| = 2 G p̂ (1 − p̂).
    p = frame["p_hat"].to_numpy()
    assert frame["adv_correct"].iloc[1:].to_numpy() == pytest.approx(1 - p[1:], abs=1e-15)
    assert frame["sum_abs_adv"].to_numpy() == pytest.approx(2 * 4 * p * (1 - p), abs=1e-14)
    assert bundle_accuracies(0.2, 0.8, 4).tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8], abs=1e-15)
    with pytest.raises(ValueError, match="bundle_size"):
        bundle_accuracies(0.2, 0.8, 0)


def test_final_summary_uses_each_estimators_last_step():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "estimator": ["a"] * 6 + ["b"] * 4,
            "seed": [0, 1, 2] * 2 + [0, 1] * 2,
            "step": [0] * 3 + [5] * 3 + [0] * 2 + [3] * 2,
            "x": rng.normal(size=10),
        }
    )
    summary = final_summary(frame, ["x"]).set_index("estimator")
    last_a, last_b = frame["x"].to_numpy()[3:6], frame["x"].to_numpy()[8:10]
    assert summary.loc["a", "x"] == pytest.approx(last_a.mean(), abs=1e-15)
    assert summary.loc["a", "x_std"] == pytest.approx(last_a.std(ddof=1), abs=1e-15)
    assert summary.loc["b", "x"] == pytest.approx(last_b.mean(), abs=1e-15)


def test_lemma_thresholds_on_hand_built_curves():
    grid = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
    curve = pd.DataFrame({"beta": grid, "d_pi_star": [-1.0, -0.5, 0.2, 0.5, 0.3, 0.1]})
    assert lemma_thresholds(curve) == {"beta0": 0.5, "beta1": 1.0}
    # Positive, dips below zero, positive again: β₀ is where it *stays* positive.
    curve = pd.DataFrame({"beta": grid, "d_pi_star": [0.1, -0.2, 0.3, 0.4, 0.2, 0.1]})
    assert lemma_thresholds(curve)["beta0"] == 0.5
    never = lemma_thresholds(pd.DataFrame({"beta": grid, "d_pi_star": [-1.0] * 6}))
    assert math.isnan(never["beta0"]) and math.isnan(never["beta1"])


def test_run_each_keeps_going_after_a_bad_estimator():
    choices, _ = build_choices(("grpo", "dr_grpo"), Knobs(), mode="bundled")

    class Result:
        def __init__(self):
            self.metrics = pd.DataFrame({"estimator": ["sandbox-label"], "step": [0], "v": [1.0]})

    def runner(config, specs, seeds, progress):
        if specs[0][0] == "grpo":
            raise ValueError("group_size=1 is too small")
        progress(0.5)
        return Result()

    seen = []
    results, errors = run_each(runner, None, choices, seeds=1, progress=seen.append)
    assert errors == ["grpo: group_size=1 is too small"]
    assert stack_frames(results, "metrics")["estimator"].tolist() == ["dr_grpo"]
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_band_figure_draws_seed_mean_and_std_band():
    frame = pd.DataFrame(
        {"estimator": ["grpo"] * 4, "seed": [0, 1, 0, 1], "step": [0, 0, 1, 1], "v": [1.0, 3.0, 2.0, 6.0]}
    )
    fig = band_figure(frame, [("v", "v")])
    band, line = fig.data[0], fig.data[1]
    assert list(line.y) == [2.0, 4.0]
    std = [math.sqrt(2.0), math.sqrt(8.0)]  # sample std of (1, 3) and (2, 6)
    assert list(band.y) == pytest.approx([2.0 + std[0], 4.0 + std[1], 4.0 - std[1], 2.0 - std[0]], abs=1e-12)
    assert colour_map(["riskpo (x)", "grpo"]) == colour_map(["grpo", "riskpo (x)"])  # colour does not depend on order

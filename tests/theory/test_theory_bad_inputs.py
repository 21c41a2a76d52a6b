"""Every bad input listed here raises a ValueError whose message names the field (docs/theory.md lists them).

One row per bad input; the id says what is wrong. Rows marked "(regression)" once gave NaN or
silent garbage instead of an error.
Bad inputs tested elsewhere (estimator parameters, tracker, pass@k, population forms, β grids,
Assumption 1) are counted in docs/theory.md too.
"""

from __future__ import annotations

import pytest
import torch

from theory import advantages as adv
from theory import get_estimator
from theory import passk as pk
from theory import population as pop
from theory import risk_measures as rm
from theory.bundles import bundle_score_law, check_bundle_size
from theory.quantiles import QuantileTracker

D = torch.float64
R = torch.tensor([[0.0, 1.0, 1.0, 0.0]], dtype=D)
P = torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=D)
V = torch.tensor([0.0, 0.5, 1.0, 1.0], dtype=D)

CASES = [
    # (regression) omega=inf used to give all-NaN advantages
    ("riskpo omega=inf (regression)", lambda: get_estimator("riskpo", omega=float("inf")), "omega=inf must be finite"),
    ("mvar advantage omega=inf", lambda: adv.mvar_advantage_from_quantiles(R, 0.0, 1.0, float("inf")), "omega"),
    ("risk_measures.mvar omega=inf", lambda: rm.mvar(V, P, 0.2, 0.8, float("inf")), "omega"),
    # (regression) tracker_step_size=inf gave NaN one call later
    (
        "riskpo tracker_step_size=inf (regression)",
        lambda: get_estimator("riskpo", tracker_step_size=float("inf")),
        "step_size=inf",
    ),
    ("riskpo tracker_decay=nan", lambda: get_estimator("riskpo", tracker_decay=float("nan")), "decay"),
    ("grpo eps=inf", lambda: get_estimator("grpo", eps=float("inf")), "eps=inf"),
    # (regression) q_alpha/q_beta were silently ignored unless quantile_source="fixed"
    (
        "riskpo q_alpha with tracker (regression)",
        lambda: get_estimator("riskpo", q_alpha=0.5),
        "quantile_source='fixed'",
    ),
    (
        "riskpo q_beta with batch (regression)",
        lambda: get_estimator("riskpo", quantile_source="batch", q_beta=2.0),
        "q_beta=2.0",
    ),
    ("cvar q_alpha with group (regression)", lambda: get_estimator("cvar", q_alpha=0.5), "q_alpha=0.5"),
    (
        "riskpo fixed q_alpha=nan",
        lambda: get_estimator("riskpo", quantile_source="fixed", q_alpha=float("nan"), q_beta=1.0),
        "q_alpha=nan",
    ),
    (
        "riskpo fixed q_beta=inf",
        lambda: get_estimator("riskpo", quantile_source="fixed", q_alpha=0.0, q_beta=float("inf")),
        "q_beta=inf",
    ),
    # (regression) passk_chen accepted rewards 2.0 and −1, passk_reweight accepted 0.5
    (
        "passk_chen reward 2.0 (regression)",
        lambda: get_estimator("passk_chen", k=2)(torch.tensor([[2.0, 0.0, 1.0]])),
        "rewards must lie in",
    ),
    (
        "passk_chen reward -1 (regression)",
        lambda: get_estimator("passk_chen", k=2)(torch.tensor([[-1.0, 0.0, 1.0]])),
        "rewards must lie in",
    ),
    (
        "passk_reweight reward 0.5 (regression)",
        lambda: get_estimator("passk_reweight", k=2)(torch.tensor([[0.5, 0.0, 1.0]])),
        "rewards must be binary",
    ),
    ("pass_at_k_from_rewards reward 0.5", lambda: pk.pass_at_k_from_rewards(torch.tensor([[0.5, 1.0]]), 1), "binary"),
    # (regression) an empty (0, G) batch raised a cryptic torch error
    ("grpo empty (0, G) batch (regression)", lambda: get_estimator("grpo")(torch.zeros(0, 4)), "rewards has no rows"),
    (
        "riskpo empty (0, G) batch (regression)",
        lambda: get_estimator("riskpo", bundle_size=1)(torch.zeros(0, 4)),
        "rewards has no rows",
    ),
    (
        "pkpo empty (0, G) batch (regression)",
        lambda: get_estimator("pkpo", k=2)(torch.zeros(0, 4)),
        "rewards has no rows",
    ),
    # (regression) complex rewards were cast silently
    (
        "grpo complex rewards (regression)",
        lambda: get_estimator("grpo")(torch.tensor([[1 + 1j, 0j, 1 + 0j]])),
        "rewards must be real",
    ),
    (
        "dr_grpo function complex rewards (regression)",
        lambda: adv.dr_grpo(torch.tensor([[1 + 1j, 0j]])),
        "rewards must be real",
    ),
    ("risk measure complex values (regression)", lambda: rm.mean(V.to(torch.complex128), P), "values must be real"),
    (
        "tracker complex scores (regression)",
        lambda: QuantileTracker().update(torch.tensor([1j, 0j])),
        "scores must be real",
    ),
    # other shapes and values
    ("estimator 1-D rewards", lambda: get_estimator("grpo")(torch.zeros(4)), "rewards must have 2 dims"),
    (
        "estimator inf reward",
        lambda: get_estimator("dr_grpo")(torch.tensor([[float("inf"), 0.0]])),
        "rewards contains NaN or inf",
    ),
    ("rs_grpo function beta=nan", lambda: adv.rs_grpo(R, float("nan")), "beta"),
    ("population_rs_grpo beta=inf", lambda: pop.population_rs_grpo(V, P, float("inf")), "beta=inf must be finite"),
    (
        "population_rs_grpo beta tensor with nan",
        lambda: pop.population_rs_grpo(V, P, torch.tensor([float("nan")])),
        "beta must be real and finite",
    ),
    ("quantile level 1.5", lambda: rm.quantile(V, P, 1.5), "level=1.5"),
    ("probs not summing to 1", lambda: rm.mean(V, P * 2), "probs must sum to 1"),
    ("negative probs", lambda: rm.mean(V, torch.tensor([-0.5, 0.5, 0.5, 0.5], dtype=D)), "probs must be non-negative"),
    ("values/probs shape mismatch", lambda: rm.mean(V, P[:3] / P[:3].sum()), "same shape"),
    ("quantile_integral lower > upper", lambda: rm.quantile_integral(V, P, 0.8, 0.2), "lower_level=0.8"),
    ("cvar alpha=0", lambda: rm.cvar(V, P, 0.0), "alpha"),
    ("rvar alpha >= beta", lambda: rm.rvar(V, P, 0.8, 0.8), "alpha=0.8 must be < beta=0.8"),
    ("band advantage q_low > q_high", lambda: adv.mvar_advantage_from_quantiles(R, 1.0, 0.0, 0.5), "q"),
    ("bundle size not dividing prompts", lambda: check_bundle_size(10, 3), "bundle_size=3 must divide"),
    ("bundle size 0", lambda: check_bundle_size(10, 0), "bundle_size=0"),
    ("bundle law negative probability", lambda: bundle_score_law(torch.tensor([[1.2, -0.2]], dtype=D)), "level_probs"),
    ("pass_at_k c > n", lambda: pk.pass_at_k(4, 5, 2), "c must satisfy"),
    ("pass_at_k k > n", lambda: pk.pass_at_k(4, 1, 5), "k=5 must be <= n=4"),
    ("exact_pass_at_k p=1.5", lambda: pk.exact_pass_at_k(torch.tensor(1.5), 2), "success_prob"),
    ("exact_pass_at_k k=0", lambda: pk.exact_pass_at_k(torch.tensor(0.5), 0), "k=0"),
    ("pkpo k > G", lambda: get_estimator("pkpo", k=5)(torch.zeros(2, 4)), "k=5 must be <= group size G=4"),
    ("max_at_k_estimate k=0", lambda: pk.max_at_k_estimate(torch.zeros(4), 0), "k=0"),
    ("tracker init='given' without values", lambda: QuantileTracker(init="given"), "initial_values"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_value_error_naming_the_field(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_table_is_large_enough_and_ids_are_unique():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)

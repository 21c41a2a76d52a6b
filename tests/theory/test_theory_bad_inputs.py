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


# ---------------------------------------------------------------------------- the estimator API (issue 21, item 4)
# Every registered estimator's constructor parameters, by role, and the QuantileTracker (constructor,
# update, load_state_dict): each bad value raises ValueError or TypeError whose message names the
# argument (or the state key). Before this table, bool/str numbers were coerced (bundle_size=True -> B = 1,
# beta='2' -> 2.0), NaN/inf tracker states were kept, cvar alpha=0 failed only at the first call,
# and malformed state dicts failed inside torch or arithmetic.

NAN, INF = float("nan"), float("inf")

# role -> (bad value, why); the same list for every parameter of that role.
BAD_BY_ROLE = {
    "quantile_level": [
        (True, "bool"),
        ("0.2", "str"),
        (NAN, "nan"),
        (INF, "inf"),
        (-0.1, "below 0"),
        (1.5, "above 1"),
        (None, "None"),
        ([0.2], "list"),
    ],
    "tail_weight": [(True, "bool"), ("0.5", "str"), (-1.0, "negative"), (INF, "inf"), (NAN, "nan"), (None, "None")],
    "bundle_size": [
        (True, "bool"),
        ("2", "str"),
        (0, "zero"),
        (-1, "negative"),
        (2.5, "fraction"),
        (INF, "inf"),
        (NAN, "nan"),
        (None, "None"),
    ],
    "k": [(True, "bool"), ("2", "str"), (0, "zero"), (2.5, "fraction"), (None, "None")],
    "quantile_source": [("bogus", "unknown"), ("Tracker", "wrong case"), (3, "int"), (None, "None")],
    "tracker": [(True, "bool"), ("0.1", "str"), (-0.5, "negative"), (INF, "inf"), (NAN, "nan"), (None, "None")],
    "seed": [(True, "bool"), ("1", "str"), (-1, "negative"), (1.5, "fraction"), (2**64, "too large"), (None, "None")],
    "risk_temperature": [(True, "bool"), ("2", "str"), (NAN, "nan"), (INF, "inf"), (-INF, "-inf"), (None, "None")],
    "numerical": [(True, "bool"), ("1e-6", "str"), (-1.0, "negative"), (INF, "inf"), (None, "None")],
    "option": [("false", "str (truthy)"), (1, "int"), (None, "None")],
    "quantile_value": [(NAN, "nan"), (INF, "inf"), (-INF, "-inf"), ("0.1", "str"), (True, "bool")],
}


def _parameter_cases():
    from theory import list_estimators
    from theory.estimator_registry import estimator_parameter_roles

    cases = []
    for name in sorted(list_estimators()):
        for param, role in estimator_parameter_roles(name).items():
            for value, why in BAD_BY_ROLE[role]:
                params = {param: value}
                if role == "quantile_value":  # q values are read only with quantile_source='fixed'
                    params = {"quantile_source": "fixed", "q_alpha": 0.0, "q_beta": 1.0, **params}
                    if name == "cvar":
                        params.pop("q_beta")
                if role == "tracker":  # the tracker reads its settings only as quantile_source='tracker'
                    params["quantile_source"] = "tracker"
                cases.append(
                    (f"{name} {param}={value!r} ({why})", (lambda n=name, p=params: get_estimator(n, **p)), param)
                )
    return cases


def _state(**changes):
    state = QuantileTracker().state_dict()
    state.update(initialized=True, values=[0.1, 0.9])
    for key, value in changes.items():
        if value is _DROP:
            state.pop(key)
        else:
            state[key] = value
    return state


_DROP = object()


def _load_tracker(**changes):
    return QuantileTracker().load_state_dict(_state(**changes))


def _riskpo_state(**changes):
    est = get_estimator("riskpo", bundle_size=1)
    state = est.state_dict()
    for key, value in changes.items():
        if value is _DROP:
            state.pop(key)
        else:
            state[key] = value
    return est.load_state_dict(state)


EXPLICIT_CASES = [
    # constraints across parameters, checked at construction
    ("cvar alpha=0.0 at construction", lambda: get_estimator("cvar", alpha=0.0), "alpha=0.0"),
    ("cvar alpha=1.0 (the band's beta is 1)", lambda: get_estimator("cvar", alpha=1.0), "alpha=1.0 must lie in (0, 1)"),
    ("riskpo alpha == beta", lambda: get_estimator("riskpo", alpha=0.5, beta=0.5), "alpha=0.5 must be < beta=0.5"),
    ("rvar alpha > beta", lambda: get_estimator("rvar", alpha=0.9, beta=0.1), "alpha=0.9 must be < beta=0.1"),
    (
        "riskpo fixed q_alpha > q_beta",
        lambda: get_estimator("riskpo", quantile_source="fixed", q_alpha=1.0, q_beta=0.0),
        "q_alpha=1.0 must be <= q_beta=0.0",
    ),
    ("riskpo fixed without q_beta", lambda: get_estimator("riskpo", quantile_source="fixed", q_alpha=0.0), "q_beta"),
    ("rvar tracker_decay with group source", lambda: get_estimator("rvar", tracker_decay=-1.0), "decay"),
    # the registry itself
    ("get_estimator name=3", lambda: get_estimator(3), "estimator name"),
    ("get_estimator name=None", lambda: get_estimator(None), "estimator name"),
    ("get_estimator name=list", lambda: get_estimator(["riskpo"]), "estimator name"),
    ("get_estimator unknown name", lambda: get_estimator("riskpo2"), "unknown estimator 'riskpo2'"),
    ("get_estimator unknown parameter", lambda: get_estimator("riskpo", gamma=1.0), "gamma"),
    # call arguments: generator, rewards
    ("riskpo generator=int", lambda: get_estimator("riskpo", bundle_size=1)(R, generator=3), "generator"),
    ("dr_grpo generator=list", lambda: get_estimator("dr_grpo")(R, generator=[0]), "generator"),
    ("passk_loo_max generator=int", lambda: get_estimator("passk_loo_max")(R, generator=0), "generator"),
    ("dr_grpo takes no eps", lambda: get_estimator("dr_grpo", eps=0.1), "eps"),
    ("passk_loo_max takes no k", lambda: get_estimator("passk_loo_max", k=2), "'k'"),
    ("grpo generator=str", lambda: get_estimator("grpo")(R, generator="cpu"), "generator"),
    ("riskpo rewards=list", lambda: get_estimator("riskpo", bundle_size=1)([[0.0, 1.0]]), "rewards"),
    ("riskpo rewards nan", lambda: get_estimator("riskpo", bundle_size=1)(R * NAN), "rewards"),
    ("bundle permutation device='gpu0'", lambda: _permutation(device="gpu0"), "device='gpu0'"),
    ("bundle permutation device=3", lambda: _permutation(device=3), "device=3"),
    ("bundle permutation generator=seed", lambda: _permutation(generator=0), "generator"),
    # quantile pair: inf as well as NaN
    ("mvar advantage q_alpha=-inf", lambda: adv.mvar_advantage_from_quantiles(R, -INF, 1.0, 0.5), "q_alpha"),
    ("mvar advantage q_beta=inf", lambda: adv.mvar_advantage_from_quantiles(R, 0.0, INF, 0.5), "q_beta"),
    ("seeking advantage q_beta=nan", lambda: adv.risk_seeking_mvar_advantage_from_quantiles(R, 0.0, NAN), "q_beta"),
    ("rvar advantage q_alpha=inf", lambda: adv.rvar_advantage_from_quantiles(R, INF, INF, 0.2, 0.8), "q_alpha"),
    ("cvar advantage q_alpha=inf", lambda: adv.cvar_advantage_from_quantile(R, INF, 0.2), "q_alpha"),
    # QuantileTracker constructor
    ("tracker levels=str", lambda: QuantileTracker(levels="0.2"), "levels"),
    ("tracker levels empty", lambda: QuantileTracker(levels=[]), "levels"),
    ("tracker levels decreasing", lambda: QuantileTracker(levels=[0.8, 0.2]), "levels"),
    ("tracker levels bool", lambda: QuantileTracker(levels=[True]), "levels[0]"),
    ("tracker levels str entry", lambda: QuantileTracker(levels=["0.2", 0.8]), "levels[0]"),
    ("tracker levels nan", lambda: QuantileTracker(levels=[0.2, NAN]), "levels[1]"),
    ("tracker step_size=0", lambda: QuantileTracker(step_size=0.0), "step_size"),
    ("tracker step_size=str", lambda: QuantileTracker(step_size="0.1"), "step_size"),
    ("tracker decay=bool", lambda: QuantileTracker(decay=True), "decay"),
    ("tracker init=unknown", lambda: QuantileTracker(init="first"), "init"),
    ("tracker init=int", lambda: QuantileTracker(init=0), "init"),
    ("tracker given nan", lambda: QuantileTracker(init="given", initial_values=[NAN, 1.0]), "initial_values[0]"),
    ("tracker given inf", lambda: QuantileTracker(init="given", initial_values=[0.0, INF]), "initial_values[1]"),
    ("tracker given -inf", lambda: QuantileTracker(init="given", initial_values=[-INF, 0.0]), "initial_values[0]"),
    ("tracker given wrong length", lambda: QuantileTracker(init="given", initial_values=[0.0]), "initial_values"),
    ("tracker given str", lambda: QuantileTracker(init="given", initial_values="01"), "initial_values"),
    ("tracker given bool entry", lambda: QuantileTracker(init="given", initial_values=[True, 1.0]), "initial_values"),
    (
        "tracker given 2-D tenso",
        lambda: QuantileTracker(init="given", initial_values=torch.zeros(2, 1)),
        "initial_values",
    ),
    ("tracker initial_values with init=batch", lambda: QuantileTracker(initial_values=[0.0, 1.0]), "initial_values"),
    ("tracker reduce_mean not callable", lambda: QuantileTracker(reduce_mean=3), "reduce_mean"),
    # QuantileTracker.update
    ("tracker update list", lambda: QuantileTracker().update([0.0, 1.0]), "scores"),
    ("tracker update inf", lambda: QuantileTracker().update(torch.tensor([0.0, INF])), "scores"),
    ("tracker update empty", lambda: QuantileTracker().update(torch.zeros(0)), "scores"),
    # QuantileTracker.load_state_dict: missing keys, wrong types, non-finite values
    ("tracker load None", lambda: QuantileTracker().load_state_dict(None), "QuantileTracker state"),
    ("tracker load list", lambda: QuantileTracker().load_state_dict([1, 2]), "QuantileTracker state"),
    ("tracker load missing values", lambda: _load_tracker(values=_DROP), "values"),
    ("tracker load missing levels", lambda: _load_tracker(levels=_DROP), "levels"),
    ("tracker load missing step", lambda: _load_tracker(step=_DROP), "step"),
    ("tracker load missing initialized", lambda: _load_tracker(initialized=_DROP), "initialized"),
    ("tracker load values nan", lambda: _load_tracker(values=[NAN, 0.9]), "values'][0]"),
    ("tracker load values inf", lambda: _load_tracker(values=[0.1, INF]), "values'][1]"),
    ("tracker load values -inf", lambda: _load_tracker(values=[-INF, 0.9]), "values'][0]"),
    ("tracker load values wrong length", lambda: _load_tracker(values=[0.1]), "values"),
    ("tracker load values str", lambda: _load_tracker(values="0.1"), "values"),
    ("tracker load values None", lambda: _load_tracker(values=None), "values"),
    ("tracker load values str entry", lambda: _load_tracker(values=["0.1", 0.9]), "values"),
    ("tracker load step str", lambda: _load_tracker(step="3"), "step"),
    ("tracker load step negative", lambda: _load_tracker(step=-1), "step"),
    ("tracker load step bool", lambda: _load_tracker(step=True), "step"),
    ("tracker load step float", lambda: _load_tracker(step=1.5), "step"),
    ("tracker load initialized str", lambda: _load_tracker(initialized="yes"), "initialized"),
    ("tracker load crossings negative", lambda: _load_tracker(crossings=-1), "crossings"),
    ("tracker load crossings str", lambda: _load_tracker(crossings="0"), "crossings"),
    ("tracker load other levels", lambda: _load_tracker(levels=[0.1, 0.9]), "levels"),
    ("tracker load levels nan", lambda: _load_tracker(levels=[NAN, 0.8]), "levels"),
    # estimator load_state_dict
    ("riskpo load None", lambda: get_estimator("riskpo").load_state_dict(None), "riskpo estimator state"),
    ("riskpo load missing tracker", lambda: _riskpo_state(tracker=_DROP), "tracker"),
    ("riskpo load missing generator", lambda: _riskpo_state(generator=_DROP), "generator"),
    ("riskpo load tracker list", lambda: _riskpo_state(tracker=[0.1, 0.9]), "tracker"),
    ("riskpo load generator list", lambda: _riskpo_state(generator=[1, 2]), "generator"),
    ("riskpo load generator float", lambda: _riskpo_state(generator=torch.zeros(5056)), "generator"),
    ("riskpo load generator short", lambda: _riskpo_state(generator=torch.zeros(7, dtype=torch.uint8)), "generator"),
    ("riskpo load tracker values inf", lambda: _riskpo_state(tracker=_state(values=[INF, INF])), "values"),
]


def _permutation(**kwargs):
    from theory.bundles import random_bundle_permutation

    return random_bundle_permutation(2, 4, **kwargs)


API_CASES = _parameter_cases() + EXPLICIT_CASES


@pytest.mark.parametrize("call, name", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_estimator_api_bad_input_names_the_argument(call, name):
    with pytest.raises((ValueError, TypeError)) as caught:
        call()
    assert name in str(caught.value), f"message does not name {name!r}: {caught.value}"


def test_the_estimator_api_table_covers_every_estimator_and_role():
    from theory import list_estimators

    assert len(API_CASES) >= 100 and len({c[0] for c in API_CASES}) == len(API_CASES)
    covered = {case[0].split()[0] for case in API_CASES}
    assert set(list_estimators()) <= covered and "tracker" in covered

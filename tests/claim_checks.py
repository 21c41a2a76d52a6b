"""What a simulation claim's test asserts, and the mutations that must turn it red.

``check_simulation_claim(result)`` recomputes every comparison of a claim (primary, secondary and
controls) from the claim's own training metrics, independently of ``sandbox.verdicts`` (scipy's
t interval, the rule written out below), and asserts that

1. each reported difference, interval and verdict matches the recomputation, and the claim's
   verdict follows from its primary verdicts (catches a flipped predicate);
2. the method's runs differ from every baseline's and every control's runs (catches a method that
   collapsed into a mean-based baseline or into its bundle-mean control, e.g. β ignored, MVaR
   replaced by a bundle mean);
3. every method trains: its mean reward after training exceeds its start on every seed, and
   its negated control's does not (catches a negated advantage, or a method made unable to learn).

``MUTATIONS`` lists the mutations of item 7 (issue 16) as monkeypatches; the slow tier runs every
one against every claim it targets and requires red.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from scipy import stats

import sandbox.common
import sandbox.verdicts
import theory.population
import theory.rs_lemmas
from theory.advantages import dr_grpo
from theory.estimators import RSGRPO, RiskPO, RiskSeekingMVaR

LEVEL = 0.95


def _table(metrics: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """seed × estimator values of the quantity a comparison names (parsed from its text)."""
    last = int(metrics.step.max())
    pivot = lambda col: metrics[metrics.step == last].pivot(index="seed", columns="estimator", values=col)  # noqa: E731
    if quantity.startswith("entropy at step"):
        return pivot("entropy")
    if quantity.startswith("pass@1 at step"):
        return pivot("pass_at_1")
    if quantity.startswith("pass@") and " at step " in quantity:
        return pivot("pass_at_k")
    if quantity.startswith("E[r] after"):
        return pivot("expected_reward")
    if quantity == "run-averaged entropy":
        return metrics.groupby(["seed", "estimator"]).entropy.mean().unstack()
    if quantity.startswith("run-mean share of all-fail"):
        return metrics.groupby(["seed", "estimator"]).allfail_varied_adv.mean().unstack()
    if quantity.startswith("run-mean share of zero-advantage"):
        return metrics.groupby(["seed", "estimator"]).frac_zero_adv_groups.mean().unstack()
    if quantity.startswith("updates to reach"):
        hit = metrics[metrics.expected_reward >= 0.9].groupby(["estimator", "seed"]).step.min().unstack(0)
        seeds, names = sorted(metrics.seed.unique()), sorted(metrics.estimator.unique())
        return hit.reindex(index=seeds, columns=names).fillna(last + 1)
    return None  # secondary framings not recomputed here (matched pass@1)


def _expected(diff: np.ndarray, side: str) -> tuple[float, float, float, str]:
    mean = float(diff.mean())
    sem = float(diff.std(ddof=1)) / np.sqrt(diff.size)
    low, high = (mean, mean) if sem == 0 else stats.t.interval(LEVEL, diff.size - 1, loc=mean, scale=sem)
    good, bad = (low > 0, high < 0) if side == "greater" else (high < 0, low > 0)
    return mean, float(low), float(high), "holds" if good else "fails" if bad else "not resolved"


def _check_comparison(metrics: pd.DataFrame, c: dict) -> None:
    table = _table(metrics, c["quantity"])
    if table is None:
        return
    diff = (table[c["method"]] - table[c["baseline"]]).to_numpy(float)
    mean, low, high, verdict = _expected(diff, c["side"])
    # 1e-9: the same float64 sums in a different order
    assert abs(c["difference"] - mean) <= 1e-9 * max(1.0, abs(mean)), (c, mean)
    assert abs(c["ci_low"] - low) <= 1e-9 * max(1.0, abs(low)) and abs(c["ci_high"] - high) <= 1e-9 * max(
        1.0, abs(high)
    ), (
        c,
        low,
        high,
    )
    assert c["verdict"] == verdict, (c, verdict)


def _rule(verdicts: list[str]) -> str:
    return "fails" if "fails" in verdicts else "holds" if all(v == "holds" for v in verdicts) else "not resolved"


def _runs(metrics: pd.DataFrame, column: str, name: str) -> np.ndarray:
    return metrics[metrics.estimator == name].sort_values(["seed", "step"])[column].to_numpy(float)


def check_simulation_claim(result: dict) -> None:
    """The assertions of a simulation claim's test (module docstring); raises AssertionError when broken."""
    m = result["metrics"]
    reward = "expected_reward" if "expected_reward" in m else "mean_reward"
    primary = [c for c in result["comparisons"] if c["framing"] == "equal_steps"]
    assert primary and all(c["primary"] for c in primary)
    assert result["seeds"] == m.seed.nunique() and all(c["seeds"] == result["seeds"] for c in primary)
    # 1. every comparison recomputed; the claim's and controls' verdicts by the rule
    for c in result["comparisons"]:
        _check_comparison(m, c)
    assert result["verdict"] == _rule([c["verdict"] for c in primary])
    for ctrl in result["controls"]:
        for c in ctrl["comparisons"]:
            _check_comparison(m, c)
        assert ctrl["verdict"] == _rule([c["verdict"] for c in ctrl["comparisons"]])
    assert result["controls_valid"] == all(ctrl["verdict"] != result["verdict"] for ctrl in result["controls"])
    # 2. methods differ from baselines and from controls (runs not identical)
    methods = {c["method"] for c in primary}
    others = {c["baseline"] for c in primary} | {
        c["method"] for ctrl in result["controls"] for c in ctrl["comparisons"]
    }
    for meth in methods:
        for other in others - {meth}:
            assert not np.array_equal(_runs(m, reward, meth), _runs(m, reward, other)), (meth, other)
    # 3. every method trains; negated controls do not
    first, last = int(m.step.min()), int(m.step.max())
    start = m[m.step == first].pivot(index="seed", columns="estimator", values=reward)
    end = m[m.step == last].pivot(index="seed", columns="estimator", values=reward)
    for meth in methods:
        assert bool((end[meth] > start[meth]).all()), (meth, "does not train")
    for name in end.columns:
        if name.startswith("negated["):
            assert not bool((end[name] > start[name]).all()), (name, "a negated advantage trains")


# --------------------------------------------------------------------------- mutations


def _flip_predicate(mp) -> None:
    rule = sandbox.verdicts.comparison_verdict
    mp.setattr(sandbox.verdicts, "comparison_verdict", lambda lo, hi, side="greater": rule(-hi, -lo, side))


def _bundle_mean_for_mvar(mp) -> None:
    def transform(self, scores, q_alpha, q_beta):
        return dr_grpo(scores)

    mp.setattr(RiskPO, "transform", transform)
    mp.setattr(RiskSeekingMVaR, "transform", transform)


def _negate_advantages(mp) -> None:
    for cls in (RiskPO, RiskSeekingMVaR):
        original = cls.transform
        mp.setattr(cls, "transform", lambda self, s, qa, qb, f=original: -f(self, s, qa, qb))
    compute = RSGRPO.compute
    mp.setattr(RSGRPO, "compute", lambda self, r, g, f=compute: (-f(self, r, g)[0], {}))
    batched = sandbox.common.rs_grpo_batched
    mp.setattr(sandbox.common, "rs_grpo_batched", lambda r, beta, f=batched: -f(r, beta))


def _ignore_beta_compute(mp) -> None:
    # β ignored: the β → 0 limit, r − mean (the mean-based advantage), on both paths of the simulators
    mp.setattr(RSGRPO, "compute", lambda self, r, g: (dr_grpo(r), {}))
    mp.setattr(sandbox.common, "rs_grpo_batched", lambda r, beta: dr_grpo(r))


def _ignore_beta_population(mp) -> None:
    original = theory.population.population_rs_grpo
    ignoring = lambda rewards, probs, beta=2.0: original(rewards, probs, 0.0)  # noqa: E731
    mp.setattr(theory.population, "population_rs_grpo", ignoring)
    mp.setattr(theory.rs_lemmas, "population_rs_grpo", ignoring)


def _riskpo_cannot_learn(mp) -> None:
    # RiskPO's half of the pass@k claim made impossible: its advantage is 0, so its policy never moves.
    mp.setattr(RiskPO, "transform", lambda self, scores, q_alpha, q_beta: torch.zeros_like(scores))


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    apply: Callable
    claims: tuple[str, ...]  # the claims whose test must turn red


SIMULATION = (
    "entropy_riskpo_vs_grpo",
    "risk_seeking_collapse",
    "bundling_nonzero_gradient",
    "passk_large_k",
    "bundle_size_sweep",
    "rs_bandit",
)
RISKPO_CLAIMS = SIMULATION[:5]

MUTATIONS = (
    Mutation("predicate flipped", _flip_predicate, SIMULATION),
    Mutation("MVaR replaced by the bundle-mean objective", _bundle_mean_for_mvar, RISKPO_CLAIMS),
    Mutation("advantage negated", _negate_advantages, (*RISKPO_CLAIMS, "rs_bandit")),
    Mutation("RS-GRPO β ignored in compute", _ignore_beta_compute, ("passk_large_k", "rs_bandit")),
    Mutation("RS-GRPO β ignored in population", _ignore_beta_population, ("rs_lemma3", "rs_lemma4")),
    Mutation("RiskPO's half of the pass@k claim made impossible", _riskpo_cannot_learn, ("passk_large_k",)),
)

#: small sizes at which the unmutated claims pass every check (and each mutation is seen red)
TEST_SIZES = {
    "entropy_riskpo_vs_grpo": {"seeds": 4, "steps": 60},
    "risk_seeking_collapse": {"seeds": 4, "steps": 60},
    "bundling_nonzero_gradient": {"seeds": 3, "steps": 8},
    "passk_large_k": {"seeds": 4, "steps": 60},
    "bundle_size_sweep": {"seeds": 3, "steps": 40},
    "rs_bandit": {"seeds": 2, "betas": (0, 2, 4, 8), "steps": 4000},
    "rs_lemma3": {"seeds": 30},
    "rs_lemma4": {"seeds": 30},
}


def run_and_check(name: str) -> dict:
    """Run claim ``name`` at its test size and assert its test (lemma claims: they hold)."""
    from sandbox import CLAIMS, get_claim

    kwargs = dict(TEST_SIZES[name])
    if get_claim(name).takes_progress:
        kwargs["progress"] = lambda fraction: None
    result = CLAIMS[name](**kwargs)
    if get_claim(name).kind == "simulation":
        check_simulation_claim(result)
    else:
        assert result["holds"], result["measured"]
    return result

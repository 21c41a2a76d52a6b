"""Negative-control estimators of the simulation claims (sandbox only; not in the theory registry).

* ``negated``: any registered estimator with its advantage negated, A ↦ −A. Its expected update is
  the method's reversed: a check that still "holds" with it cannot tell the method from its opposite.
* ``bundle_mean``: the bundle-mean objective E[R_B], i.e. Dr. GRPO on the bundle score,
  A = R_B − mean_j R_B over the G bundles of a block, broadcast to every response of the bundle
  (RiskPO's bundling, Eq. 7 of RiskPO v2, with the mean in place of MVaR). Against RiskPO it
  separates what MVaR does from what bundling does.

Both are built by ``sandbox.common`` from specs such as ``("negated", {"estimator": "riskpo",
"bundle_size": 5})`` or ``("bundle_mean", {"bundle_size": 5})``; the simulators treat them like any
other estimator (same samples, same random numbers).
"""

from __future__ import annotations

import torch

from theory import estimator_parameters, get_estimator
from theory.advantages import dr_grpo
from theory.bundles import broadcast_to_responses, bundle_scores, check_bundle_size, random_bundle_permutation
from theory.estimators import AdvantageEstimator

__all__ = ["NegatedAdvantage", "BundleMean", "CONTROL_ESTIMATORS", "control_parameters", "make_control"]


class NegatedAdvantage(AdvantageEstimator):
    """−A of the named estimator (its quantile tracker and bundle stream unchanged)."""

    name = "negated"
    description = "negative control: the named estimator's advantage, negated"

    def __init__(self, estimator: str, **params):
        if estimator in CONTROL_ESTIMATORS:
            raise ValueError(f"negated: estimator={estimator!r} must be a registered (non-control) estimator")
        self.inner = get_estimator(estimator, **params)
        self.estimator = estimator
        self.bundle_size = int(getattr(self.inner, "bundle_size", 1))
        if hasattr(self.inner, "quantile_source"):
            self.quantile_source = self.inner.quantile_source

    def compute(self, rewards, generator):
        adv, extra = self.inner.compute(rewards, generator)
        return -adv, extra

    def population(self, rewards, probs, group_size=None):
        return -self.inner.population(rewards, probs, group_size)

    def params(self):
        return {"estimator": self.estimator, **self.inner.params()}


class BundleMean(AdvantageEstimator):
    """Dr. GRPO on bundle scores: A = R_B − mean of the G bundle scores of its block."""

    name = "bundle_mean"
    description = "control: the bundle-mean objective (Dr. GRPO on the bundle score R_B)"

    def __init__(self, bundle_size: int = 5, seed: int = 1234567):
        if int(bundle_size) != bundle_size or bundle_size < 1:
            raise ValueError(f"bundle_size={bundle_size} must be a positive integer")
        self.bundle_size = int(bundle_size)
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def compute(self, rewards, generator):
        num_prompts, group_size = rewards.shape
        check_bundle_size(num_prompts, self.bundle_size)
        permutation = random_bundle_permutation(num_prompts, group_size, generator or self.generator)
        scores = bundle_scores(rewards, permutation, self.bundle_size)
        return broadcast_to_responses(dr_grpo(scores), permutation, self.bundle_size), {}

    def params(self):
        return {"bundle_size": self.bundle_size, "seed": self.seed}


CONTROL_ESTIMATORS: dict[str, type[AdvantageEstimator]] = {"negated": NegatedAdvantage, "bundle_mean": BundleMean}


def control_parameters(name: str, params: dict) -> dict[str, object]:
    """Accepted parameters (and defaults) of a control spec; ``negated`` accepts its inner estimator's."""
    if name == "negated":
        if "estimator" not in params:
            raise ValueError("negated: needs estimator=<registered estimator name>")
        return {"estimator": None, **estimator_parameters(str(params["estimator"]))}
    if name == "bundle_mean":
        return {"bundle_size": 5, "seed": 1234567}
    raise ValueError(f"unknown control estimator {name!r}; choose from {sorted(CONTROL_ESTIMATORS)}")


def make_control(name: str, params: dict) -> AdvantageEstimator:
    """Build a control; unknown parameters are errors naming them."""
    unknown = set(params) - set(control_parameters(name, params))
    if unknown:
        raise ValueError(f"control {name!r} got unknown parameter(s) {sorted(unknown)}")
    return CONTROL_ESTIMATORS[name](**params)

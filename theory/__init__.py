"""theory (riskrl): risk measures, advantage estimators and entropy identities, written once.

Everything is a small pure torch function (tensors in, tensors out) except the
stateful ``QuantileTracker`` and the estimator objects of the registry.
"""

from . import (
    advantages,
    assumptions,
    bundles,
    dynamics,
    estimators,  # registers every estimator class
    passk,
    population,
    quantiles,
    risk_measures,
    rs_lemmas,
)
from .estimator_registry import (
    AdvantageEstimator,
    AdvantageOutput,
    estimator_parameter_roles,
    estimator_parameters,
    get_estimator,
    list_estimators,
    register_estimator,
)
from .quantiles import QuantileTracker

__all__ = [
    "advantages",
    "assumptions",
    "estimators",
    "rs_lemmas",
    "estimator_parameter_roles",
    "register_estimator",
    "bundles",
    "dynamics",
    "passk",
    "population",
    "quantiles",
    "risk_measures",
    "AdvantageEstimator",
    "AdvantageOutput",
    "QuantileTracker",
    "estimator_parameters",
    "get_estimator",
    "list_estimators",
]

"""The estimator interface and its registry (by name, with aliases and a role per parameter).

Estimator classes live in ``theory/estimators.py`` and register themselves with
``@register_estimator``; the ``theory`` package exports the registry API.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from .checks import check_finite, check_group_size, check_nonempty_batch, check_rank

Tensor = torch.Tensor

__all__ = [
    "AdvantageOutput",
    "AdvantageEstimator",
    "get_estimator",
    "list_estimators",
    "register",
    "register_estimator",
    "estimator_parameters",
    "estimator_parameter_roles",
    "PARAMETER_ROLES",
    "ESTIMATORS",
]

# Advantages below this magnitude count as "no signal" in the zero-advantage metrics.
_ZERO_TOL = 1e-12


@dataclass
class AdvantageOutput:
    advantages: Tensor  # (P, G), one value per response
    metrics: dict[str, float] = field(default_factory=dict)


def _basic_metrics(advantages: Tensor) -> dict[str, float]:
    flat = advantages.detach().double()
    zero_groups = (flat.abs() <= _ZERO_TOL).all(-1).double().mean()
    return {
        "adv_mean": float(flat.mean()),
        "adv_std": float(flat.std()) if flat.numel() > 1 else 0.0,
        "adv_min": float(flat.min()),
        "adv_max": float(flat.max()),
        "adv_abs_mean": float(flat.abs().mean()),
        "frac_zero_adv_groups": float(zero_groups),
    }


class AdvantageEstimator:
    """Base class: subclasses implement ``compute`` (sample) and ``population`` (exact)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: prompts per bundle; the trainer's prompt batch must be a multiple of it.
    bundle_size: int = 1

    def __call__(self, rewards: Tensor, generator: torch.Generator | None = None) -> AdvantageOutput:
        check_finite("rewards", rewards)
        check_rank("rewards", rewards, 2)
        check_nonempty_batch("rewards", rewards)
        check_group_size("group size G (rewards.shape[1])", rewards.shape[1])
        if not rewards.is_floating_point():
            rewards = rewards.to(torch.get_default_dtype())
        advantages, extra = self.compute(rewards, generator)
        metrics = _basic_metrics(advantages)
        metrics.update(extra)
        return AdvantageOutput(advantages=advantages, metrics=metrics)

    def compute(self, rewards: Tensor, generator: torch.Generator | None) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError

    def population(self, rewards: Tensor, probs: Tensor, group_size: int | None = None) -> Tensor:
        """Ā(a) = E[A_1 | x_1 = a]: the expected sampled advantage of a response given its action, so
        that E[Σ_i A_i ∇log π(x_i)] = n Σ_a π(a) Ā(a) ∇log π(a). ``group_size`` (n) matters only for
        estimators whose advantage depends on it (the pass@k family, which require it)."""
        raise NotImplementedError(f"estimator {self.name!r} has no exact population form")

    def params(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


ESTIMATORS: dict[str, type[AdvantageEstimator]] = {}
_ALIASES: dict[str, str] = {}


#: What a constructor parameter means. The papers use β for two different things, and both
#: names are kept as printed (configs such as llm/configs/rs_grpo.yaml pass ``beta`` to RS-GRPO):
#: RiskPO's β is the upper quantile LEVEL in [0, 1]; RS-GRPO's β is the risk-sensitivity
#: TEMPERATURE of the exponential utility. Each estimator tags its parameters with a role, so a
#: UI asks ``estimator_parameter_roles(name)["beta"]`` instead of keeping lists of names.
PARAMETER_ROLES = {
    "quantile_level": "a probability level α or β in [0, 1] (RiskPO, RVaR, CVaR)",
    "risk_temperature": "the exponential-utility β of RS-GRPO, any finite real (> 0 risk seeking)",
    "tail_weight": "ω >= 0, the extra weight on the lower tail (MVaR)",
    "bundle_size": "prompts per bundle B",
    "k": "the k of pass@k / max@k",
    "quantile_value": "a fixed quantile value q (only with quantile_source='fixed')",
    "quantile_source": "where the quantiles come from",
    "tracker": "online quantile tracker setting",
    "seed": "random seed of the bundle permutations",
    "numerical": "a numerical safeguard (e.g. eps of a std division)",
    "option": "a switch between variants",
}
_ROLES: dict[str, dict[str, str]] = {}


def register(
    cls: type[AdvantageEstimator], *aliases: str, roles: dict[str, str] | None = None
) -> type[AdvantageEstimator]:
    """Adds ``cls`` to the registry under ``cls.name`` and ``aliases``; prefer ``@register_estimator``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no registry name")
    if cls.name in ESTIMATORS and ESTIMATORS[cls.name] is not cls:
        raise ValueError(f"estimator name {cls.name!r} is registered twice")
    roles = dict(roles or {})
    unknown = set(roles.values()) - set(PARAMETER_ROLES)
    if unknown:
        raise ValueError(
            f"{cls.name}: unknown parameter role(s) {sorted(unknown)}; choose from {sorted(PARAMETER_ROLES)}"
        )
    ESTIMATORS[cls.name] = cls
    _ROLES[cls.name] = roles
    for alias in aliases:
        _ALIASES[alias] = cls.name
    return cls


def register_estimator(*aliases: str, roles: dict[str, str] | None = None):
    """Class decorator: registers the estimator once, with its aliases and the role of each parameter."""
    return lambda cls: register(cls, *aliases, roles=roles)


def estimator_parameter_roles(name: str) -> dict[str, str]:
    """parameter -> role (a key of ``PARAMETER_ROLES``), for every constructor parameter of ``name``."""
    key = _ALIASES.get(name, name)
    params = estimator_parameters(key)
    roles = _ROLES[key]
    missing = set(params) - set(roles)
    if missing:  # a registration bug, caught by tests/theory/test_theory_estimators.py
        raise ValueError(f"estimator {key!r} has parameters without a role: {sorted(missing)}")
    return {p: roles[p] for p in params}


def list_estimators() -> dict[str, str]:
    """name -> one-line description, for CLIs and the app."""
    return {name: cls.description for name, cls in ESTIMATORS.items()}


def estimator_parameters(name: str) -> dict[str, object]:
    """Constructor parameters and their defaults, for building UIs."""
    key = _ALIASES.get(name, name)
    if key not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of {sorted(ESTIMATORS) + sorted(_ALIASES)}")
    sig = inspect.signature(ESTIMATORS[key].__init__)
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p: v.default for p, v in sig.parameters.items() if p != "self" and v.kind in keyword}


def get_estimator(name: str, **params) -> AdvantageEstimator:
    """Build an estimator by registry name; unknown names and parameters are errors naming them."""
    key = _ALIASES.get(name, name)
    if key not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of {sorted(ESTIMATORS) + sorted(_ALIASES)}")
    cls = ESTIMATORS[key]
    allowed = set(estimator_parameters(key))
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"estimator {key!r} got unknown parameter(s) {sorted(unknown)}; accepted: {sorted(allowed)}")
    return cls(**params)

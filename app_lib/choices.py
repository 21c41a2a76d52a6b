"""Which estimators to compare, with which parameters, built from the registry.

The sidebar exposes one slider per *shared* knob (α, β, ω, B, k, RS-GRPO β). Each estimator
parameter is fed by the knob of its registry role (``theory.estimator_parameter_roles``):
a ``quantile_level`` by the α or β slider of the same name, the ``tail_weight`` by ω, the
``bundle_size`` by B, ``k`` by k, and a ``risk_temperature`` (RS-GRPO's β, not a quantile
level) by its own slider, repeated for each value to compare. Other roles keep their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from theory import estimator_parameter_roles, get_estimator, list_estimators

#: Symbols of the quantile-level parameters in the labels.
LEVEL_SYMBOLS = {"alpha": "α", "beta": "β"}

DEFAULT_ESTIMATORS = ("grpo", "dr_grpo", "riskpo", "riskpo_seeking", "rs_grpo", "passk_chen")


@dataclass(frozen=True)
class Knobs:
    """The shared sidebar values (hashable, so cached functions can key on it)."""

    alpha: float = 0.2
    beta: float = 0.8
    omega: float = 0.5
    bundle_size: int = 5
    k: int = 4
    rs_betas: tuple[float, ...] = (2.0,)


@dataclass(frozen=True)
class Choice:
    """One curve in every plot: a display label, a registry name and its constructor kwargs."""

    label: str
    name: str
    params: tuple[tuple[str, object], ...]

    def kwargs(self) -> dict:
        return dict(self.params)

    def build(self):
        return get_estimator(self.name, **self.kwargs())


def is_quantile_band(name: str) -> bool:
    """RiskPO-family estimators (they take quantile levels and bundle questions)."""
    return "quantile_level" in estimator_parameter_roles(name).values()


def _fmt(x: float) -> str:
    return f"{x:g}"


BUNDLE_MODES = ("bundled", "per_question", "single_prompt")


def build_choices(names: tuple[str, ...], knobs: Knobs, *, mode: str = "bundled") -> tuple[list[Choice], list[str]]:
    """Turn selected registry names + shared knobs into constructible choices.

    mode (how quantile-band estimators are configured):
        "bundled"        bundle_size = B, default quantile source (tabular runs);
        "per_question"   bundle_size = 1, quantiles within the group (RiskPO
                         Theorem 1's single-question form), for one prompt's group;
        "single_prompt"  bundle_size = 1, default quantile source (a bandit has one prompt).
    Returns (choices, error messages); a choice whose constructor raises
    (e.g. α >= β) is dropped and its ValueError text kept, so the app can
    explain it instead of crashing.
    """
    if mode not in BUNDLE_MODES:
        raise ValueError(f"mode={mode!r} must be one of {BUNDLE_MODES}")
    registry = list_estimators()
    choices: list[Choice] = []
    errors: list[str] = []
    for name in dict.fromkeys(names):  # a name listed twice is one curve (not two identical ones)
        if name not in registry:
            errors.append(f"unknown estimator {name!r}")
            continue
        variants = _variants(name, estimator_parameter_roles(name), knobs, mode)
        for label, params in variants:
            choice = Choice(label, name, tuple(sorted(params.items())))
            try:
                choice.build()
            except ValueError as err:
                errors.append(f"{label}: {err}")
                continue
            choices.append(choice)
    return choices, errors


def _variants(name: str, roles: dict[str, str], knobs: Knobs, mode: str) -> list[tuple[str, dict]]:
    """(label, constructor kwargs) of one registry name: one per RS-GRPO β for a risk temperature,
    else one, each parameter set from the knob of its role (labels list α, β, ω, B, k in that order)."""
    temperature = [p for p, role in roles.items() if role == "risk_temperature"]
    if temperature:
        return [(f"{name} (β={_fmt(b)})", {temperature[0]: float(b)}) for b in knobs.rs_betas]
    params: dict = {}
    tags: list[str] = []
    for param in [p for p in LEVEL_SYMBOLS if roles.get(p) == "quantile_level"]:
        params[param] = float(getattr(knobs, param))
        tags.append(f"{LEVEL_SYMBOLS[param]}={_fmt(getattr(knobs, param))}")
    for param in [p for p, role in roles.items() if role == "tail_weight"]:
        params[param] = float(knobs.omega)
        tags.append(f"ω={_fmt(knobs.omega)}")
    if "bundle_size" in roles.values():
        if mode == "per_question":
            params.update(bundle_size=1, quantile_source="group")
        elif mode == "single_prompt":
            params["bundle_size"] = 1
        else:
            params["bundle_size"] = int(knobs.bundle_size)
            tags.append(f"B={knobs.bundle_size}")
    for param in [p for p, role in roles.items() if role == "k"]:
        params[param] = int(knobs.k)
        tags.append(f"k={knobs.k}")
    return [(f"{name} ({', '.join(tags)})" if tags else name, params)]

"""Which estimators to compare, with which parameters, built from the registry.

The sidebar exposes one slider per *shared* knob (α, β, ω, B, k, RS-GRPO β);
each estimator receives only the knobs its constructor accepts
(``theory.estimator_parameters``). RS-GRPO's ``beta`` is the risk-seeking
temperature, not a quantile level, so it is fed from its own slider and may be
repeated for several values to compare.
"""

from __future__ import annotations

from dataclasses import dataclass

from theory import estimator_parameters, get_estimator, list_estimators

#: Registry names whose ``beta`` parameter is the exponential-utility temperature.
RISK_SEEKING_TEMPERATURE = ("rs_grpo",)

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
    accepted = estimator_parameters(name)
    return "alpha" in accepted and name not in RISK_SEEKING_TEMPERATURE


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
        accepted = estimator_parameters(name)
        variants: list[tuple[str, dict]] = []
        if name in RISK_SEEKING_TEMPERATURE:
            for b in knobs.rs_betas:
                variants.append((f"{name} (β={_fmt(b)})", {"beta": float(b)}))
        else:
            params: dict = {}
            tags: list[str] = []
            if "alpha" in accepted:
                params["alpha"] = float(knobs.alpha)
                tags.append(f"α={_fmt(knobs.alpha)}")
            if "beta" in accepted:
                params["beta"] = float(knobs.beta)
                tags.append(f"β={_fmt(knobs.beta)}")
            if "omega" in accepted:
                params["omega"] = float(knobs.omega)
                tags.append(f"ω={_fmt(knobs.omega)}")
            if "bundle_size" in accepted:
                if mode == "per_question":
                    params["bundle_size"] = 1
                    params["quantile_source"] = "group"
                elif mode == "single_prompt":
                    params["bundle_size"] = 1
                else:
                    params["bundle_size"] = int(knobs.bundle_size)
                    tags.append(f"B={knobs.bundle_size}")
            if "k" in accepted:
                params["k"] = int(knobs.k)
                tags.append(f"k={knobs.k}")
            variants.append((f"{name} ({', '.join(tags)})" if tags else name, params))
        for label, params in variants:
            choice = Choice(label, name, tuple(sorted(params.items())))
            try:
                choice.build()
            except ValueError as err:
                errors.append(f"{label}: {err}")
                continue
            choices.append(choice)
    return choices, errors

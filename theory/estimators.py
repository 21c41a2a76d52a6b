"""One interface for every advantage estimator, and a registry by name.

    est = get_estimator("riskpo", alpha=0.2, beta=0.8, omega=0.5, bundle_size=5)
    out = est(rewards)            # rewards (P, G) -> out.advantages (P, G), out.metrics
    est.population(r, probs)      # exact advantage per action under π (sandbox)
    est.state_dict()              # quantile tracker + RNG, for checkpoints

The sandbox, the app and the LLM trainer select estimators by name through
``get_estimator``; the formulas themselves live in advantages.py, bundles.py,
passk.py and population.py and are not repeated here.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from . import advantages as adv
from . import passk as pk
from . import population as pop
from ._checks import check_finite, check_group_size, check_k, check_levels, check_nonempty_batch, check_nonnegative, check_rank
from .bundles import broadcast_to_responses, bundle_scores, check_bundle_size, random_bundle_permutation
from .quantiles import QuantileTracker
from .risk_measures import empirical_quantile

Tensor = torch.Tensor

__all__ = ["AdvantageOutput", "AdvantageEstimator", "get_estimator", "list_estimators", "register", "register_estimator",
           "estimator_parameter_roles", "PARAMETER_ROLES", "ESTIMATORS"]

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


def register(cls: type[AdvantageEstimator], *aliases: str, roles: dict[str, str] | None = None) -> type[AdvantageEstimator]:
    """Adds ``cls`` to the registry under ``cls.name`` and ``aliases``; prefer ``@register_estimator``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no registry name")
    if cls.name in ESTIMATORS and ESTIMATORS[cls.name] is not cls:
        raise ValueError(f"estimator name {cls.name!r} is registered twice")
    roles = dict(roles or {})
    unknown = set(roles.values()) - set(PARAMETER_ROLES)
    if unknown:
        raise ValueError(f"{cls.name}: unknown parameter role(s) {sorted(unknown)}; choose from {sorted(PARAMETER_ROLES)}")
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
    if missing:  # a registration bug, caught by tests/test_theory_estimators.py
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


# --------------------------------------------------------------------------- group-relative


@register_estimator(roles={"eps": "numerical", "unbiased_std": "option"})
class GRPO(AdvantageEstimator):
    name = "grpo"
    description = "GRPO: (r − mean)/(std + eps) per group"

    def __init__(self, eps: float = 1e-6, unbiased_std: bool = True):
        check_nonnegative("eps", eps)
        self.eps, self.unbiased_std = float(eps), bool(unbiased_std)

    def compute(self, rewards, generator):
        return adv.grpo(rewards, self.eps, self.unbiased_std), {}

    def population(self, rewards, probs, group_size=None):
        return pop.population_grpo(rewards, probs, self.eps)

    def params(self):
        return {"eps": self.eps, "unbiased_std": self.unbiased_std}


@register_estimator("drgrpo")
class DrGRPO(AdvantageEstimator):
    name = "dr_grpo"
    description = "Dr. GRPO: r − mean per group (no std normalisation)"

    def compute(self, rewards, generator):
        return adv.dr_grpo(rewards), {}

    def population(self, rewards, probs, group_size=None):
        return pop.population_dr_grpo(rewards, probs)


@register_estimator("rsgrpo", roles={"beta": "risk_temperature"})
class RSGRPO(AdvantageEstimator):
    name = "rs_grpo"
    description = "RS-GRPO: (1/β)(e^{βr}/mean e^{βr} − 1), exponential-utility risk seeking"

    def __init__(self, beta: float = 2.0):
        self.beta = float(beta)
        if self.beta != self.beta or abs(self.beta) == float("inf"):
            raise ValueError(f"beta={beta} must be a finite number")

    def compute(self, rewards, generator):
        return adv.rs_grpo(rewards, self.beta), {}

    def population(self, rewards, probs, group_size=None):
        return pop.population_rs_grpo(rewards, probs, self.beta)

    def params(self):
        return {"beta": self.beta}


# --------------------------------------------------------------------------- pass@k baselines


class _PassKEstimator(AdvantageEstimator):
    def __init__(self, k: int = 4):
        if int(k) != k or k < 1:
            raise ValueError(f"k={k} must be a positive integer")
        self.k = int(k)

    def params(self):
        return {"k": self.k}

    def _check_k(self, rewards):
        check_k(self.k, rewards.shape[1], n_name="group size G")

    def _group_size(self, group_size):
        if group_size is None:
            raise ValueError(f"{self.name} has no exact population form without group_size: its expected advantage depends on the group size n")
        return group_size


@register_estimator(roles={"k": "k"})
class ChenPassK(_PassKEstimator):
    name = "passk_chen"
    description = "Pass@k training (Chen et al.): analytic group advantage of the pass@k reward"

    def compute(self, rewards, generator):
        self._check_k(rewards)
        return pk.chen_passk_advantage(rewards, self.k).to(rewards.dtype), {}

    def population(self, rewards, probs, group_size=None):
        return pop.population_chen_passk(rewards, probs, self.k, self._group_size(group_size))


@register_estimator()
class LeaveOneOutMax(AdvantageEstimator):
    name = "passk_loo_max"
    description = "Leave-one-out max (Tang et al.): max_j r_j − max_{j≠i} r_j"

    def compute(self, rewards, generator):
        return pk.leave_one_out_max_advantage(rewards), {}

    def population(self, rewards, probs, group_size=None):
        if group_size is None:
            raise ValueError("passk_loo_max has no exact population form without group_size: its expected advantage depends on the group size n")
        return pop.population_loo_max(rewards, probs, group_size)


@register_estimator(roles={"k": "k"})
class PKPO(_PassKEstimator):
    name = "pkpo"
    description = "PKPO (Walder & Karkhanis): max@k effective rewards (paper scale) minus a leave-one-out baseline"

    def compute(self, rewards, generator):
        self._check_k(rewards)
        return pk.pkpo_advantage(rewards, self.k).to(rewards.dtype), {}

    def population(self, rewards, probs, group_size=None):
        return pop.population_pkpo(rewards, probs, self.k, self._group_size(group_size))


@register_estimator(roles={"k": "k"})
class PassKReweight(_PassKEstimator):
    name = "passk_reweight"
    description = "Pass@k reweighting (Mahdavi et al.): k(1−p̂)^{k−1}(r − p̂)"

    def compute(self, rewards, generator):
        self._check_k(rewards)
        return pk.passk_reweighted_advantage(rewards, self.k).to(rewards.dtype), {}

    def population(self, rewards, probs, group_size=None):
        return pop.population_passk_reweight(rewards, probs, self.k, self._group_size(group_size))


# --------------------------------------------------------------------------- quantile-band (RiskPO family)

QUANTILE_SOURCES = ("tracker", "batch", "group", "fixed")
_BAND_ROLES = {"alpha": "quantile_level", "beta": "quantile_level", "omega": "tail_weight", "bundle_size": "bundle_size", "quantile_source": "quantile_source", "q_alpha": "quantile_value", "q_beta": "quantile_value", "tracker_step_size": "tracker", "tracker_decay": "tracker", "seed": "seed"}


class _QuantileBandEstimator(AdvantageEstimator):
    """Bundles B prompts, scores bundles, finds quantiles, maps scores to advantages.

    quantile_source:
        "tracker"  online QuantileTracker over training steps (RiskPO default)
        "batch"    empirical quantiles of this batch's bundle scores
        "group"    empirical quantiles within each block of G bundles
                   (with bundle_size=1: per question, Theorem 1's single-question form)
        "fixed"    the given q_alpha, q_beta (e.g. exact population quantiles)
    """

    def __init__(
        self,
        alpha: float = 0.2,
        beta: float = 0.8,
        omega: float = 0.5,
        bundle_size: int = 5,
        quantile_source: str = "tracker",
        q_alpha: float | None = None,
        q_beta: float | None = None,
        tracker_step_size: float = 0.1,
        tracker_decay: float = 0.0,
        seed: int = 1234567,
    ):
        check_levels(alpha, beta)
        check_nonnegative("omega", omega)
        if int(bundle_size) != bundle_size or bundle_size < 1:
            raise ValueError(f"bundle_size={bundle_size} must be a positive integer")
        if quantile_source not in QUANTILE_SOURCES:
            raise ValueError(f"quantile_source={quantile_source!r} must be one of {QUANTILE_SOURCES}")
        if quantile_source == "fixed":
            if q_alpha is None or q_beta is None:
                raise ValueError("quantile_source='fixed' needs q_alpha and q_beta")
            for field, value in (("q_alpha", q_alpha), ("q_beta", q_beta)):
                if not math.isfinite(float(value)):
                    raise ValueError(f"{field}={value} must be finite")
            if q_alpha > q_beta:
                raise ValueError(f"q_alpha={q_alpha} must be <= q_beta={q_beta}")
        elif q_alpha is not None or q_beta is not None:
            # A value that would be silently ignored is a configuration error, not a default.
            raise ValueError(f"q_alpha={q_alpha}, q_beta={q_beta} are used only with quantile_source='fixed' "
                             f"(got quantile_source={quantile_source!r})")
        self.alpha, self.beta, self.omega = float(alpha), float(beta), float(omega)
        self.bundle_size = int(bundle_size)
        self.quantile_source = quantile_source
        self.q_alpha, self.q_beta = q_alpha, q_beta
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.tracker = QuantileTracker((self.alpha, self.beta), step_size=tracker_step_size, decay=tracker_decay)

    def params(self):
        """Constructor arguments, so that get_estimator(name, **est.params()) rebuilds it."""
        values = {
            "alpha": self.alpha,
            "beta": self.beta,
            "omega": self.omega,
            "bundle_size": self.bundle_size,
            "quantile_source": self.quantile_source,
            "q_alpha": self.q_alpha,
            "q_beta": self.q_beta,
            "tracker_step_size": self.tracker.step_size,
            "tracker_decay": self.tracker.decay,
            "seed": self.seed,
        }
        accepted = estimator_parameters(self.name)
        return {key: value for key, value in values.items() if key in accepted}

    def transform(self, scores: Tensor, q_alpha: Tensor, q_beta: Tensor) -> Tensor:
        raise NotImplementedError

    def _quantiles(self, scores: Tensor) -> tuple[Tensor, Tensor]:
        """(q_α, q_β), each broadcastable against ``scores`` (blocks, G)."""
        if self.quantile_source == "tracker":
            # The tracker keeps Algorithm 1's independent iterates, which may cross; the advantage
            # needs q_α <= q_β, so the pair is ordered here, where it is used (docs/theory.md).
            q = torch.sort(self.tracker.update(scores)).values.to(scores.dtype)
            return q[0], q[1]
        if self.quantile_source == "batch":
            flat = scores.reshape(-1)
            return empirical_quantile(flat, self.alpha), empirical_quantile(flat, self.beta)
        if self.quantile_source == "group":
            return empirical_quantile(scores, self.alpha).unsqueeze(-1), empirical_quantile(scores, self.beta).unsqueeze(-1)
        return (torch.tensor(float(self.q_alpha), dtype=scores.dtype), torch.tensor(float(self.q_beta), dtype=scores.dtype))

    def compute(self, rewards, generator):
        num_prompts, group_size = rewards.shape
        check_bundle_size(num_prompts, self.bundle_size)
        permutation = random_bundle_permutation(num_prompts, group_size, generator or self.generator, device=rewards.device)
        scores = bundle_scores(rewards, permutation, self.bundle_size)
        q_alpha, q_beta = self._quantiles(scores)
        bundle_adv = self.transform(scores, q_alpha.to(scores.device), q_beta.to(scores.device))
        advantages = broadcast_to_responses(bundle_adv, permutation, self.bundle_size)
        metrics = {
            "q_alpha": float(q_alpha.double().mean()),
            "q_beta": float(q_beta.double().mean()),
            "bundle_score_mean": float(scores.double().mean()),
            "frac_zero_adv_bundles": float((bundle_adv.abs() <= _ZERO_TOL).double().mean()),
        }
        if self.quantile_source == "tracker":
            metrics["quantile_crossings"] = float(self.tracker.crossings)
        return advantages, metrics

    def state_dict(self):
        return {"tracker": self.tracker.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.tracker.load_state_dict(state["tracker"])
        self.generator.set_state(state["generator"])


@register_estimator("mvar", "riskpo_mvar", roles=_BAND_ROLES)
class RiskPO(_QuantileBandEstimator):
    name = "riskpo"
    description = "RiskPO: MVaR bundle advantage −(1+ω)(q_α − R_B)⁺ + g(R_B, q_α, q_β)"

    def transform(self, scores, q_alpha, q_beta):
        return adv.mvar_advantage_from_quantiles(scores, q_alpha, q_beta, self.omega)

    def population(self, rewards, probs, group_size=None):
        return pop.population_mvar(rewards, probs, self.alpha, self.beta, self.omega)


@register_estimator("mvar_seeking", roles=_BAND_ROLES)
class RiskSeekingMVaR(_QuantileBandEstimator):
    name = "riskpo_seeking"
    description = "Risk-seeking MVaR: (1+ω)(R_B − q_β)⁺ + clip(R_B, q_α, q_β) − q_α"

    def transform(self, scores, q_alpha, q_beta):
        return adv.risk_seeking_mvar_advantage_from_quantiles(scores, q_alpha, q_beta, self.omega)

    def population(self, rewards, probs, group_size=None):
        return pop.population_risk_seeking_mvar(rewards, probs, self.alpha, self.beta, self.omega)


@register_estimator(roles=_BAND_ROLES)
class RVaR(_QuantileBandEstimator):
    name = "rvar"
    description = "RVaR_{α:β} (RiskPO Theorem 1): g(R, q_α, q_β)/(β − α)"

    def __init__(self, alpha: float = 0.2, beta: float = 0.8, bundle_size: int = 1, quantile_source: str = "group",
                 q_alpha: float | None = None, q_beta: float | None = None, tracker_step_size: float = 0.1,
                 tracker_decay: float = 0.0, seed: int = 1234567):
        super().__init__(alpha, beta, 0.0, bundle_size, quantile_source, q_alpha, q_beta, tracker_step_size, tracker_decay, seed)

    def transform(self, scores, q_alpha, q_beta):
        return adv.rvar_advantage_from_quantiles(scores, q_alpha, q_beta, self.alpha, self.beta)

    def population(self, rewards, probs, group_size=None):
        return pop.population_rvar(rewards, probs, self.alpha, self.beta)


@register_estimator(roles=_BAND_ROLES)
class CVaR(_QuantileBandEstimator):
    name = "cvar"
    description = "Lower-tail CVaR_α: −(q_α − R)⁺/α"

    def __init__(self, alpha: float = 0.2, bundle_size: int = 1, quantile_source: str = "group",
                 q_alpha: float | None = None, tracker_step_size: float = 0.1, tracker_decay: float = 0.0, seed: int = 1234567):
        # β = 1 only to satisfy the shared band machinery; CVaR ignores q_β.
        super().__init__(alpha, 1.0, 0.0, bundle_size, quantile_source, q_alpha,
                         q_alpha, tracker_step_size, tracker_decay, seed)

    def transform(self, scores, q_alpha, q_beta):
        return adv.cvar_advantage_from_quantile(scores, q_alpha, self.alpha)

    def population(self, rewards, probs, group_size=None):
        return pop.population_cvar(rewards, probs, self.alpha)

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

import math

import torch

from . import advantages as adv
from . import passk as pk
from . import population as pop
from .bundles import broadcast_to_responses, bundle_scores, check_bundle_size, random_bundle_permutation
from .checks import check_k, check_levels, check_nonnegative
from .estimator_registry import (
    _ZERO_TOL,
    AdvantageEstimator,
    estimator_parameters,
    register_estimator,
)
from .quantiles import QuantileTracker
from .risk_measures import empirical_quantile

Tensor = torch.Tensor


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

    def population(self, rewards, probs, group_size=None):
        """The exact E[A_1 | x_1 = a] of the sampled estimator for groups of n = ``group_size``; there is
        none without a group size (the gradient of the max@k objective itself is
        ``population.population_max_at_k``, a different quantity)."""
        if group_size is None:
            raise ValueError(
                f"{self.name} has no exact population form without group_size: "
                "its expected advantage depends on the group size n"
            )
        return self._expected_sampled(rewards, probs, int(group_size))

    def _expected_sampled(self, rewards, probs, group_size):
        raise NotImplementedError


@register_estimator(roles={"k": "k"})
class ChenPassK(_PassKEstimator):
    name = "passk_chen"
    description = "Pass@k training (Chen et al.): analytic group advantage of the pass@k reward"

    def compute(self, rewards, generator):
        self._check_k(rewards)
        return pk.chen_passk_advantage(rewards, self.k).to(rewards.dtype), {}

    def _expected_sampled(self, rewards, probs, group_size):
        return pop.population_chen_passk(rewards, probs, self.k, group_size)


@register_estimator()
class LeaveOneOutMax(AdvantageEstimator):
    name = "passk_loo_max"
    description = "Leave-one-out max (Tang et al.): max_j r_j − max_{j≠i} r_j"

    def compute(self, rewards, generator):
        return pk.leave_one_out_max_advantage(rewards), {}

    def population(self, rewards, probs, group_size=None):
        if group_size is None:
            raise ValueError(
                "passk_loo_max has no exact population form without group_size: its expected advantage depends on "
                "the group size n"
            )
        return pop.population_loo_max(rewards, probs, group_size)


@register_estimator(roles={"k": "k"})
class PKPO(_PassKEstimator):
    name = "pkpo"
    description = "PKPO (Walder & Karkhanis): max@k effective rewards (paper scale) minus a leave-one-out baseline"

    def compute(self, rewards, generator):
        self._check_k(rewards)
        return pk.pkpo_advantage(rewards, self.k).to(rewards.dtype), {}

    def _expected_sampled(self, rewards, probs, group_size):
        return pop.population_pkpo(rewards, probs, self.k, group_size)


@register_estimator(roles={"k": "k"})
class PassKReweight(_PassKEstimator):
    name = "passk_reweight"
    description = "Pass@k reweighting (Mahdavi et al.): k(1−p̂)^{k−1}(r − p̂)"

    def compute(self, rewards, generator):
        self._check_k(rewards)
        return pk.passk_reweighted_advantage(rewards, self.k).to(rewards.dtype), {}

    def _expected_sampled(self, rewards, probs, group_size):
        return pop.population_passk_reweight(rewards, probs, self.k, group_size)


# --------------------------------------------------------------------------- quantile-band (RiskPO family)

QUANTILE_SOURCES = ("tracker", "batch", "group", "fixed")
_BAND_ROLES = {
    "alpha": "quantile_level",
    "beta": "quantile_level",
    "omega": "tail_weight",
    "bundle_size": "bundle_size",
    "quantile_source": "quantile_source",
    "q_alpha": "quantile_value",
    "q_beta": "quantile_value",
    "tracker_step_size": "tracker",
    "tracker_decay": "tracker",
    "seed": "seed",
}


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
            raise ValueError(
                f"q_alpha={q_alpha}, q_beta={q_beta} are used only with quantile_source='fixed' "
                f"(got quantile_source={quantile_source!r})"
            )
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
            return empirical_quantile(scores, self.alpha).unsqueeze(-1), empirical_quantile(
                scores, self.beta
            ).unsqueeze(-1)
        return (
            torch.tensor(float(self.q_alpha), dtype=scores.dtype),
            torch.tensor(float(self.q_beta), dtype=scores.dtype),
        )

    def compute(self, rewards, generator):
        num_prompts, group_size = rewards.shape
        check_bundle_size(num_prompts, self.bundle_size)
        permutation = random_bundle_permutation(
            num_prompts, group_size, generator or self.generator, device=rewards.device
        )
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

    def __init__(
        self,
        alpha: float = 0.2,
        beta: float = 0.8,
        bundle_size: int = 1,
        quantile_source: str = "group",
        q_alpha: float | None = None,
        q_beta: float | None = None,
        tracker_step_size: float = 0.1,
        tracker_decay: float = 0.0,
        seed: int = 1234567,
    ):
        super().__init__(
            alpha, beta, 0.0, bundle_size, quantile_source, q_alpha, q_beta, tracker_step_size, tracker_decay, seed
        )

    def transform(self, scores, q_alpha, q_beta):
        return adv.rvar_advantage_from_quantiles(scores, q_alpha, q_beta, self.alpha, self.beta)

    def population(self, rewards, probs, group_size=None):
        return pop.population_rvar(rewards, probs, self.alpha, self.beta)


@register_estimator(roles=_BAND_ROLES)
class CVaR(_QuantileBandEstimator):
    name = "cvar"
    description = "Lower-tail CVaR_α: −(q_α − R)⁺/α"

    def __init__(
        self,
        alpha: float = 0.2,
        bundle_size: int = 1,
        quantile_source: str = "group",
        q_alpha: float | None = None,
        tracker_step_size: float = 0.1,
        tracker_decay: float = 0.0,
        seed: int = 1234567,
    ):
        # β = 1 only to satisfy the shared band machinery; CVaR ignores q_β.
        super().__init__(
            alpha, 1.0, 0.0, bundle_size, quantile_source, q_alpha, q_alpha, tracker_step_size, tracker_decay, seed
        )

    def transform(self, scores, q_alpha, q_beta):
        return adv.cvar_advantage_from_quantile(scores, q_alpha, self.alpha)

    def population(self, rewards, probs, group_size=None):
        return pop.population_cvar(rewards, probs, self.alpha)


@register_estimator(roles=_BAND_ROLES)
class RiskPOCentred(RiskPO):
    """Non-paper ablation: RiskPO's MVaR bundle advantage minus its mean over the batch's bundles.

    The camera-ready advantage A(z) = −(1+ω)(q_α − z)⁺ + g(z, q_α, q_β) is <= 0 everywhere, so every
    sampled response is pushed down by a common offset. A constant c multiplies Σ_i ∇log π(y_i), whose
    expectation is 0: centring (A − mean_batch A) removes no expected signal, only that term's variance.
    Population form: Ā(a) − E_π Ā (the batch mean's limit).
    """

    name = "riskpo_centred"
    description = "Non-paper ablation: RiskPO's MVaR bundle advantage centred per batch (A − batch mean of A)"

    def transform(self, scores, q_alpha, q_beta):
        bundle_adv = super().transform(scores, q_alpha, q_beta)
        return bundle_adv - bundle_adv.mean()

    def population(self, rewards, probs, group_size=None):
        a = super().population(rewards, probs, group_size)
        return a - (probs * a).sum(-1, keepdim=True)

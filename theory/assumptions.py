"""Pure quantities behind the sandbox's checks of RiskPO Assumption 1 and Theorems 2–3.

Small functions, tensors in and out; the experiments that use them live in
``sandbox/claims/``. Every law here is discrete: response a has reward
``rewards[..., a]``, probability ``probs[..., a]`` and score ``log_probs[..., a]``
(SF = log π(y|x) in the paper's notation).

Two readings of Assumption 1 (RiskPO v2, line ~136) are kept apart on purpose:

* ``assumption_1_holds`` is the assumption **as printed**: ψ(r) = E[SF | R = r] is
  non-increasing for r <= F⁻¹(α), non-decreasing for r >= F⁻¹(β), and
  ψ(F⁻¹(α)), ψ(F⁻¹(β)) >= E[SF].
* ``tail_covariance_signs_hold`` is the weaker condition the proof of Theorem 2
  derives from it (Appendix A.3, line ~369): k(t) = Cov(1{R > t}, SF) <= 0 for
  t < F⁻¹(α) and >= 0 for t >= F⁻¹(β). The literal assumption implies it; the
  converse fails (see tests/theory/test_theory_assumptions.py).
"""

from __future__ import annotations

import torch

from .checks import check_finite, check_levels
from .dynamics import layer_cake_slices, softmax_policy_gradient
from .risk_measures import _check_distribution, quantile

Tensor = torch.Tensor

__all__ = [
    "threshold_covariances",
    "layer_cake_transform_covariance",
    "conditional_score",
    "assumption_1_report",
    "assumption_1_holds",
    "finite_score_moment",
    "tail_covariance_signs_hold",
    "tail_masses",
    "positively_dependent",
    "slope_dominates",
    "softmax_prob_derivative",
]


def threshold_covariances(rewards: Tensor, log_probs: Tensor, probs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The layer-cake slices of Lemma 1 (RiskPO) for a discrete reward R and Y = log π:
    k(t) = Cov_π(1{R > t}, log π) is constant on [x_(i), x_(i+1)); see ``dynamics.layer_cake_slices``."""
    return layer_cake_slices(rewards, log_probs, probs)


def layer_cake_transform_covariance(transformed: Tensor, rewards: Tensor, log_probs: Tensor, probs: Tensor) -> Tensor:
    """Cov(h(R), log π) = Σ_i [h(x_(i+1)) − h(x_(i))] · Cov(1{R > x_(i)}, log π)  (Lemma 1 with X = h(R)
    for a nondecreasing h; ``transformed`` holds h(r) per response)."""
    order = torch.argsort(rewards, dim=-1, stable=True)
    h_sorted = torch.gather(transformed, -1, order)
    increments = h_sorted[..., 1:] - h_sorted[..., :-1]
    _, _, slices = threshold_covariances(rewards, log_probs, probs)
    return (increments * slices).sum(-1)


def _check_law(rewards: Tensor, log_probs: Tensor, probs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    rewards, probs = _check_distribution(rewards, probs)
    if log_probs.shape != rewards.shape:
        raise ValueError(f"log_probs {tuple(log_probs.shape)} must have the shape of rewards {tuple(rewards.shape)}")
    if torch.is_complex(log_probs):
        raise ValueError("log_probs must be real, got a complex tensor")
    if bool(torch.isnan(log_probs).any()):
        raise ValueError("log_probs contains NaN")
    return rewards, log_probs.to(rewards.dtype), probs


def conditional_score(rewards: Tensor, log_probs: Tensor, probs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """ψ(r) = E[SF | R = r] on a discrete law, per response (ties share their atom's value).

    Returns (psi, atom_mass, in_support), each shaped like ``rewards``: psi[..., a] is
    ψ(rewards[..., a]) = Σ_{b: r_b = r_a} p_b SF_b / Σ_{b: r_b = r_a} p_b, atom_mass the
    probability P(R = r_a), in_support whether that atom has positive mass. ψ is
    undefined off the support (an atom of mass 0 conditions on a null event): there
    psi is NaN and in_support False, and every predicate below ignores it.
    Responses with p = 0 contribute nothing, even if their score is −inf.
    """
    rewards, log_probs, probs = _check_law(rewards, log_probs, probs)
    weighted = torch.where(probs > 0, probs * log_probs, torch.zeros_like(probs))
    same_atom = rewards.unsqueeze(-1) == rewards.unsqueeze(-2)  # (..., K, K); K is small (a group)
    mass = (same_atom * probs.unsqueeze(-2)).sum(-1)
    weighted_sum = (same_atom * weighted.unsqueeze(-2)).sum(-1)
    in_support = mass > 0
    psi = torch.where(
        in_support,
        weighted_sum / torch.where(in_support, mass, torch.ones_like(mass)),
        torch.full_like(mass, float("nan")),
    )
    return psi, mass, in_support


def finite_score_moment(log_probs: Tensor, probs: Tensor) -> Tensor:
    """E|SF| < ∞, the integrability condition of Theorems 2 and 3.

    On a finite support this holds iff every score with positive probability is finite,
    so it bites only when a response of positive probability has SF = ±inf (e.g. a
    log-probability that underflowed to −inf in low precision). Returns a bool per law.
    """
    if bool(torch.isnan(log_probs).any()):
        raise ValueError("log_probs contains NaN")
    return torch.where(probs > 0, torch.isfinite(log_probs), True).all(-1)


def assumption_1_report(
    rewards: Tensor, log_probs: Tensor, probs: Tensor, alpha: float, beta: float, tol: float = 1e-12
) -> dict[str, Tensor]:
    """RiskPO Assumption 1 exactly as printed (v2, line ~136), clause by clause, on a discrete law.

    With q_α = F⁻¹(α), q_β = F⁻¹(β) the generalised inverses (``risk_measures.quantile``,
    always support points of a discrete law):

        lower_monotone: ψ non-increasing on the support points r <= q_α,
        upper_monotone: ψ non-decreasing on the support points r >= q_β,
        lower_level:    ψ(q_α) >= E[SF],
        upper_level:    ψ(q_β) >= E[SF],
        finite_moment:  E|SF| < ∞ (the extra hypothesis of Theorems 2–3),
        holds:          all four clauses of the assumption (finite_moment is reported apart).

    "Monotone on the support" compares every pair of support points in the tail
    (ties are one atom, see ``conditional_score``); ``tol`` absorbs float64 round-off only.
    Returns bool tensors of the batch shape, plus psi, the atom masses and the quantiles.
    """
    check_levels(alpha, beta)
    psi, mass, in_support = conditional_score(rewards, log_probs, probs)
    rewards, log_probs, probs = _check_law(rewards, log_probs, probs)
    q_alpha = quantile(rewards, probs, alpha).unsqueeze(-1)
    q_beta = quantile(rewards, probs, beta).unsqueeze(-1)
    finite = finite_score_moment(log_probs, probs)
    mean_score = torch.where(probs > 0, probs * log_probs, torch.zeros_like(probs)).sum(-1, keepdim=True)

    r_i, r_j = rewards.unsqueeze(-1), rewards.unsqueeze(-2)
    psi_i, psi_j = psi.unsqueeze(-1), psi.unsqueeze(-2)
    both = in_support.unsqueeze(-1) & in_support.unsqueeze(-2) & (r_i < r_j)  # ordered pairs of atoms
    in_lower = (r_i <= q_alpha.unsqueeze(-1)) & (r_j <= q_alpha.unsqueeze(-1))
    in_upper = (r_i >= q_beta.unsqueeze(-1)) & (r_j >= q_beta.unsqueeze(-1))
    lower_monotone = torch.where(both & in_lower, psi_j <= psi_i + tol, True).flatten(-2).all(-1)
    upper_monotone = torch.where(both & in_upper, psi_j >= psi_i - tol, True).flatten(-2).all(-1)

    def psi_at(q: Tensor) -> Tensor:
        at = in_support & (rewards == q)
        return torch.where(at, psi, torch.full_like(psi, -float("inf"))).amax(-1, keepdim=True)

    psi_alpha, psi_beta = psi_at(q_alpha), psi_at(q_beta)
    lower_level = (psi_alpha >= mean_score - tol).squeeze(-1)
    upper_level = (psi_beta >= mean_score - tol).squeeze(-1)
    holds = lower_monotone & upper_monotone & lower_level & upper_level
    return {
        "holds": holds,
        "lower_monotone": lower_monotone,
        "upper_monotone": upper_monotone,
        "lower_level": lower_level,
        "upper_level": upper_level,
        "finite_moment": finite,
        "psi": psi,
        "atom_mass": mass,
        "q_alpha": q_alpha.squeeze(-1),
        "q_beta": q_beta.squeeze(-1),
        "mean_score": mean_score.squeeze(-1),
        "psi_at_q_alpha": psi_alpha.squeeze(-1),
        "psi_at_q_beta": psi_beta.squeeze(-1),
    }


def assumption_1_holds(
    rewards: Tensor, log_probs: Tensor, probs: Tensor, alpha: float, beta: float, tol: float = 1e-12
) -> Tensor:
    """RiskPO Assumption 1 as printed (all four clauses); a bool per law. See ``assumption_1_report``."""
    return assumption_1_report(rewards, log_probs, probs, alpha, beta, tol)["holds"]


def tail_covariance_signs_hold(
    rewards: Tensor, log_probs: Tensor, probs: Tensor, q_alpha: Tensor, q_beta: Tensor, tol: float = 1e-12
) -> Tensor:
    """The weaker condition the proof of Theorem 2 uses (Appendix A.3, line ~369), NOT Assumption 1:

        k(t) = Cov_π(1{R > t}, SF) <= 0  for t < q_α,    k(t) >= 0  for t >= q_β.

    Checked on the threshold intervals [x_(i), x_(i+1)) of positive width.
    ``q_alpha``/``q_beta`` broadcast against rewards[..., :1]. Assumption 1 implies this
    (ψ >= E[SF] on both tails and k(±∞) = 0), which is why Theorem 2 holds under it; on
    its own it makes Theorem 2 a tautology (the MVaR–mean gap is a sum of signed k(t)).
    """
    lower, upper, slices = threshold_covariances(rewards, log_probs, probs)
    width = upper - lower
    in_lower_tail = (upper <= q_alpha) & (width > 0)
    in_upper_tail = (lower >= q_beta) & (width > 0)
    ok_lower = torch.where(in_lower_tail, slices <= tol, True).all(-1)
    ok_upper = torch.where(in_upper_tail, slices >= -tol, True).all(-1)
    return ok_lower & ok_upper


def tail_masses(rewards: Tensor, probs: Tensor, q_alpha: Tensor, q_beta: Tensor) -> tuple[Tensor, Tensor]:
    """(P(R < q_α), P(R > q_β)) on a discrete law; ``q_alpha``/``q_beta`` have the batch shape.

    When both are 0 the MVaR advantage −(1+ω)(q_α − R)⁺ + clip(R, q_α, q_β) equals R on the
    support, so the Theorem 2 gap Cov(SF, A_mean) − Cov(SF, A_MVaR) is exactly 0 (a trivial
    instance); when P(R > q_β) = 0 the Theorem 3 transforms coincide on the support.
    """
    rewards, probs = _check_distribution(rewards, probs)
    below = torch.where(rewards < q_alpha.unsqueeze(-1), probs, torch.zeros_like(probs)).sum(-1)
    above = torch.where(rewards > q_beta.unsqueeze(-1), probs, torch.zeros_like(probs)).sum(-1)
    return below, above


def positively_dependent(rewards: Tensor, probs: Tensor, tol: float = 1e-12) -> Tensor:
    """Cov_π(1{R > t}, log π) >= 0 for every threshold t (positive quadrant dependence of R and log π)."""
    check_finite("rewards", rewards)
    lower, upper, slices = threshold_covariances(rewards, probs.clamp_min(1e-300).log(), probs)
    return torch.where(upper > lower, slices >= -tol, True).all(-1)


def slope_dominates(h_low: Tensor, h_high: Tensor, rewards: Tensor, tol: float = 1e-12) -> Tensor:
    """0 <= h_low(x_(i+1)) − h_low(x_(i)) <= h_high(x_(i+1)) − h_high(x_(i)) on every support interval."""
    order = torch.argsort(rewards, dim=-1, stable=True)
    d_low = torch.diff(torch.gather(h_low, -1, order), dim=-1)
    d_high = torch.diff(torch.gather(h_high, -1, order), dim=-1)
    return ((d_low >= -tol) & (d_low <= d_high + tol)).all(-1)


# d/dη softmax(θ + η d) at η = 0 is π ⊙ (d − E_π d), the same expression as the exact softmax
# policy gradient; RS-GRPO Lemmas 2–4 read it as the first-order change of each action probability.
softmax_prob_derivative = softmax_policy_gradient

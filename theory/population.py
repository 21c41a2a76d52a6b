"""Exact (population) advantages under a known policy.

Same formulas as ``theory.advantages``/``theory.passk`` with the sample
statistics replaced by exact ones under π: the response a has reward
``rewards[..., a]`` and probability ``probs[..., a]``. E_π[A ∇log π] with
these is the exact policy gradient of the corresponding objective, which is
what the sandbox uses to check the theorems without sampling noise.
"""

from __future__ import annotations

import torch

from . import passk as pk
from .advantages import (
    cvar_advantage_from_quantile,
    mvar_advantage_from_quantiles,
    risk_seeking_mvar_advantage_from_quantiles,
    rvar_advantage_from_quantiles,
)
from .checks import check_k, check_levels
from .risk_measures import _check_distribution, quantile, shifted_log_mean_exp

Tensor = torch.Tensor

__all__ = [
    "population_dr_grpo",
    "population_grpo",
    "population_rs_grpo",
    "population_mvar",
    "population_risk_seeking_mvar",
    "population_rvar",
    "population_cvar",
    "population_passk",
    "population_max_at_k",
    "population_pkpo",
    "population_loo_max",
    "population_chen_passk",
    "population_passk_reweight",
]


def _exact_mean(rewards: Tensor, probs: Tensor) -> Tensor:
    return (rewards * probs).sum(-1, keepdim=True)


def population_dr_grpo(rewards: Tensor, probs: Tensor) -> Tensor:
    """A(a) = r(a) − E_π r: the gradient of E_π[r]."""
    rewards, probs = _check_distribution(rewards, probs)
    return rewards - _exact_mean(rewards, probs)


def population_grpo(rewards: Tensor, probs: Tensor, eps: float = 1e-6) -> Tensor:
    """A(a) = (r(a) − E_π r) / (std_π r + eps)."""
    rewards, probs = _check_distribution(rewards, probs)
    centred = rewards - _exact_mean(rewards, probs)
    std = torch.sqrt((probs * centred**2).sum(-1, keepdim=True))
    return centred / (std + eps)


def population_rs_grpo(rewards: Tensor, probs: Tensor, beta: float | Tensor = 2.0) -> Tensor:
    """A(a) = (1/β)(e^{β r(a)} / E_π e^{β r} − 1): the gradient of (1/β) log E_π e^{βr} (RS-GRPO, Eq. 5).

    ``beta`` is a float or a tensor broadcasting against rewards[..., :1] (one β per law); β = 0 gives r − E_π r.
    """
    rewards, probs = _check_distribution(rewards, probs)
    if torch.is_tensor(beta):
        if torch.is_complex(beta) or not bool(torch.isfinite(beta).all()):
            raise ValueError("beta must be real and finite")
        beta_t = beta.to(torch.float64)
    else:
        beta = float(beta)
        if beta != beta or abs(beta) == float("inf"):
            raise ValueError(f"beta={beta} must be finite")
        if beta == 0.0:
            return rewards - _exact_mean(rewards, probs)
        beta_t = torch.tensor(beta, dtype=torch.float64)
    # e^{βr}/E e^{βr} = exp(β(r − c) − log E e^{β(R−c)}); both terms are O(β)
    # for small β, so expm1 of their difference keeps every digit.
    shift, log_mean_exp = shifted_log_mean_exp(rewards, probs, beta_t)
    zero = beta_t == 0
    scaled = torch.expm1(beta_t * (rewards.to(torch.float64) - shift) - log_mean_exp) / torch.where(
        zero, torch.ones_like(beta_t), beta_t
    )
    centred = (rewards - _exact_mean(rewards, probs)).to(torch.float64)
    return torch.where(zero, centred, scaled).to(rewards.dtype)


def _exact_quantiles(rewards: Tensor, probs: Tensor, alpha: float, beta: float) -> tuple[Tensor, Tensor]:
    return quantile(rewards, probs, alpha).unsqueeze(-1), quantile(rewards, probs, beta).unsqueeze(-1)


def population_mvar(
    rewards: Tensor, probs: Tensor, alpha: float = 0.2, beta: float = 0.8, omega: float = 0.5
) -> Tensor:
    """RiskPO MVaR advantage with the exact quantiles of r under π."""
    check_levels(alpha, beta)
    rewards, probs = _check_distribution(rewards, probs)
    q_a, q_b = _exact_quantiles(rewards, probs, alpha, beta)
    return mvar_advantage_from_quantiles(rewards, q_a, q_b, omega)


def population_risk_seeking_mvar(
    rewards: Tensor, probs: Tensor, alpha: float = 0.2, beta: float = 0.8, omega: float = 0.5
) -> Tensor:
    """Risk-seeking MVaR advantage with the exact quantiles of r under π."""
    check_levels(alpha, beta)
    rewards, probs = _check_distribution(rewards, probs)
    q_a, q_b = _exact_quantiles(rewards, probs, alpha, beta)
    return risk_seeking_mvar_advantage_from_quantiles(rewards, q_a, q_b, omega)


def population_rvar(rewards: Tensor, probs: Tensor, alpha: float = 0.2, beta: float = 0.8) -> Tensor:
    """RiskPO Theorem 1: A = g(r, q_α, q_β)/(β − α) with exact quantiles."""
    check_levels(alpha, beta)
    rewards, probs = _check_distribution(rewards, probs)
    q_a, q_b = _exact_quantiles(rewards, probs, alpha, beta)
    return rvar_advantage_from_quantiles(rewards, q_a, q_b, alpha, beta)


def population_cvar(rewards: Tensor, probs: Tensor, alpha: float = 0.2) -> Tensor:
    """A = −(q_α − r)⁺/α with the exact α-quantile."""
    check_levels(0.0, alpha, alpha_name="0", beta_name="alpha")
    rewards, probs = _check_distribution(rewards, probs)
    return cvar_advantage_from_quantile(rewards, quantile(rewards, probs, alpha).unsqueeze(-1), alpha)


def population_passk(rewards: Tensor, probs: Tensor, k: int = 8) -> Tensor:
    """A = k(1 − p)^{k−1}(r − p), p = E_π r: the exact gradient of pass@k = 1 − (1 − p)^k for binary r
    (the objective's gradient, not the expectation of any finite-group estimator)."""
    check_k(k, 10**9)
    rewards, probs = _check_distribution(rewards, probs)
    _check_binary_rewards(rewards, probs)
    return pk.passk_chain_rule_advantage(rewards, _exact_mean(rewards, probs), k)


def population_max_at_k(rewards: Tensor, probs: Tensor, k: int = 8) -> Tensor:
    """A(a) = k (E[max(r(a), M_{k−1})] − E[M_k]): the exact gradient advantage of the max@k objective
    E[M_k] (M_j the max of j i.i.d. draws), i.e. Σ_a π(a) A(a) ∇log π(a) = ∇ E[M_k]. On binary rewards
    it equals ``population_passk`` (pass@k = max@k there); on graded rewards it is max@k, not
    1 − (1 − E r)^k. The objective's gradient, not the expectation of a finite-group estimator."""
    check_k(k, 10**9)
    rewards, probs = _check_distribution(rewards, probs)
    return k * (pk.expected_max_with(rewards, probs, k - 1) - pk.expected_max(rewards, probs, k))


# --------------------------------------------------------------------------- expectations of sampled pass@k estimators
#
# E[Σ_i A_i ∇log π(x_i)] over a group of n i.i.d. responses equals n Σ_a π(a) Ā(a) ∇log π(a) with
# Ā(a) = E[A_1 | x_1 = a], the expected advantage of a response given its own action (the others
# are i.i.d.). The functions below return Ā exactly; tests check them by enumeration and Monte Carlo.


def _check_group_size(group_size: int, minimum: int) -> int:
    if group_size is None or int(group_size) != group_size or group_size < minimum:
        raise ValueError(f"group_size={group_size} must be an integer >= {minimum} (the sampled estimator's n)")
    return int(group_size)


def _check_binary_rewards(rewards: Tensor, probs: Tensor) -> None:
    if not bool(((rewards == 0) | (rewards == 1) | (probs == 0)).all()):
        raise ValueError("rewards must be binary (0 or 1) on the support for this pass@k form")


def population_pkpo(rewards: Tensor, probs: Tensor, k: int, group_size: int) -> Tensor:
    """E[A_1 | x_1 = a] of ``passk.pkpo_advantage`` for groups of n = ``group_size``:

        Ā(a) = (k/n) (E[max(r(a), M_{k−1})] − E[M_{k'}]),   k' = min(k, n − 1),

    M_j the max of j i.i.d. draws from π (the k−1 other members of a k-subset containing a;
    the baseline's law does not involve x_1). n·Σ_a π(a) Ā(a) ∇log π(a) = ∇ E[M_k] exactly.
    """
    n = _check_group_size(group_size, 2)
    check_k(k, n, n_name="group_size")
    rewards, probs = _check_distribution(rewards, probs)
    own = pk.expected_max_with(rewards, probs, k - 1)
    return (k / n) * (own - pk.expected_max(rewards, probs, min(k, n - 1)))


def population_loo_max(rewards: Tensor, probs: Tensor, group_size: int) -> Tensor:
    """E[A_1 | x_1 = a] of ``passk.leave_one_out_max_advantage`` (Tang et al.) for groups of n:
    Ā(a) = E[max(r(a), M_{n−1})] − E[M_{n−1}]; n·Σ π Ā ∇log π = ∇ E[M_n]."""
    n = _check_group_size(group_size, 2)
    rewards, probs = _check_distribution(rewards, probs)
    return pk.expected_max_with(rewards, probs, n - 1) - pk.expected_max(rewards, probs, n - 1)


def _binary_group_expectation(rewards: Tensor, probs: Tensor, group_size: int, advantage) -> Tensor:
    """E[A_1 | x_1 = a] for a group-level estimator ``advantage`` on binary rewards: the other n − 1
    rewards are c ~ Binomial(n − 1, p) ones, p = E_π r. Evaluates ``advantage`` itself on the 2n
    representative groups (own reward v, then c ones, then zeros), so the formula is not retyped."""
    n = _check_group_size(group_size, 2)
    rewards, probs = _check_distribution(rewards, probs)
    _check_binary_rewards(rewards, probs)
    c = torch.arange(n, dtype=torch.float64)  # ones among the others
    slots = torch.arange(n - 1, dtype=torch.float64)
    others = (slots < c[:, None]).to(torch.float64)  # (n, n−1): row c has c ones
    groups = torch.cat(
        [torch.stack([torch.zeros(n), torch.ones(n)]).to(torch.float64)[:, :, None], others.expand(2, n, n - 1)], -1
    )  # (2 own values, n counts, n)
    own_adv = advantage(groups.reshape(2 * n, n))[:, 0].reshape(2, n).to(torch.float64)  # (v, c)
    p = _exact_mean(rewards, probs).to(torch.float64)  # (..., 1)
    log_pmf = pk.log_binom(torch.full_like(c, n - 1.0), c) + torch.xlogy(c, p) + torch.xlogy(n - 1 - c, 1 - p)
    pmf = torch.exp(log_pmf)  # (..., n)
    expected = pmf @ own_adv.T  # (..., 2): E over c for v = 0 and v = 1
    return torch.where(rewards == 1, expected[..., 1:2], expected[..., 0:1]).to(rewards.dtype)


def population_chen_passk(rewards: Tensor, probs: Tensor, k: int, group_size: int) -> Tensor:
    """E[A_1 | x_1 = a] of ``passk.chen_passk_advantage`` (Chen et al., pass@k training) for groups of n.
    Binary rewards only: on graded rewards the expectation would run over every multiset of n − 1 rewards."""
    n = _check_group_size(group_size, 2)
    check_k(k, n, n_name="group_size")
    return _binary_group_expectation(rewards, probs, n, lambda g: pk.chen_passk_advantage(g, k))


def population_passk_reweight(rewards: Tensor, probs: Tensor, k: int, group_size: int) -> Tensor:
    """E[A_1 | x_1 = a] of ``passk.passk_reweighted_advantage`` (Mahdavi et al.) for groups of n (binary rewards)."""
    n = _check_group_size(group_size, 2)
    if int(k) != k or k < 1:
        raise ValueError(f"k={k} must be a positive integer")
    return _binary_group_expectation(rewards, probs, n, lambda g: pk.passk_reweighted_advantage(g, k))

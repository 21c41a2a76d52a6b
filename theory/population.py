"""Exact (population) advantages under a known policy.

Same formulas as ``theory.advantages``/``theory.passk`` with the sample
statistics replaced by exact ones under π: the response a has reward
``rewards[..., a]`` and probability ``probs[..., a]``. E_π[A ∇log π] with
these is the exact policy gradient of the corresponding objective, which is
what the sandbox uses to check the theorems without sampling noise.
"""
from __future__ import annotations

import torch

from ._checks import check_k, check_levels, check_unit_interval
from .advantages import (
    cvar_advantage_from_quantile,
    mvar_advantage_from_quantiles,
    risk_seeking_mvar_advantage_from_quantiles,
    rvar_advantage_from_quantiles,
)
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
    scaled = torch.expm1(beta_t * (rewards.to(torch.float64) - shift) - log_mean_exp) / torch.where(zero, torch.ones_like(beta_t), beta_t)
    centred = (rewards - _exact_mean(rewards, probs)).to(torch.float64)
    return torch.where(zero, centred, scaled).to(rewards.dtype)


def _exact_quantiles(rewards: Tensor, probs: Tensor, alpha: float, beta: float) -> tuple[Tensor, Tensor]:
    return quantile(rewards, probs, alpha).unsqueeze(-1), quantile(rewards, probs, beta).unsqueeze(-1)


def population_mvar(rewards: Tensor, probs: Tensor, alpha: float = 0.2, beta: float = 0.8, omega: float = 0.5) -> Tensor:
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
    """A = k(1 − p)^{k−1}(r − p), p = E_π r: the exact gradient of 1 − (1 − p)^k for binary r."""
    check_k(k, 10**9)
    rewards, probs = _check_distribution(rewards, probs)
    check_unit_interval("rewards", rewards)
    p = _exact_mean(rewards, probs)
    return k * (1.0 - p) ** (k - 1) * (rewards - p)

"""Sample advantage estimators: rewards (prompts, G) -> advantages (prompts, G).

Each function is one formula. Group statistics run over the last dim (the G
responses of one prompt); any leading dims are batch dims.

The MVaR-family transforms at the bottom map a score and two quantiles to an
advantage; they are shared by the bundle estimator (``theory.bundles``), the
exact population advantages (``theory.population``) and the quantile-band
single-question estimators here.
"""

from __future__ import annotations

import math

import torch

from .checks import check_finite, check_group_size, check_levels, check_nonnegative, check_quantile_pair

Tensor = torch.Tensor

__all__ = [
    "grpo",
    "dr_grpo",
    "rs_grpo",
    "rs_grpo_batched",
    "quantile_band_gain",
    "mvar_advantage_from_quantiles",
    "risk_seeking_mvar_advantage_from_quantiles",
    "rvar_advantage_from_quantiles",
    "cvar_advantage_from_quantile",
]


def _check_group_rewards(rewards: Tensor) -> Tensor:
    check_finite("rewards", rewards)
    if rewards.dim() < 1:
        raise ValueError("rewards must have shape (..., G)")
    check_group_size("group size G (rewards.shape[-1])", rewards.shape[-1])
    if not rewards.is_floating_point():
        rewards = rewards.to(torch.get_default_dtype())
    return rewards


def dr_grpo(rewards: Tensor) -> Tensor:
    """Dr. GRPO (Liu et al., 2025, "Understanding R1-Zero-Like Training"): A_i = r_i − mean_j r_j."""
    rewards = _check_group_rewards(rewards)
    return rewards - rewards.mean(-1, keepdim=True)


def grpo(rewards: Tensor, eps: float = 1e-6, unbiased_std: bool = True) -> Tensor:
    """GRPO (Shao et al., 2024, DeepSeekMath): A_i = (r_i − mean_j r_j) / (std_j r_j + eps).

    ``unbiased_std`` uses Bessel's correction (what TRL and verl compute);
    all-equal groups give exactly 0.
    """
    rewards = _check_group_rewards(rewards)
    centred = rewards - rewards.mean(-1, keepdim=True)
    std = rewards.std(-1, keepdim=True, correction=1 if unbiased_std else 0)
    return centred / (std + eps)


def rs_grpo(rewards: Tensor, beta: float = 2.0) -> Tensor:
    """RS-GRPO risk-seeking advantage (Jiang et al., 2025, Eq. 6):

        Â_i = (1/β) (e^{β r_i} / mean_j e^{β r_j} − 1)
            = expm1(β r_i − logmeanexp_j(β r_j)) / β.

    Computed with the max-shifted weights e_i = expm1(β r_i − max_j β r_j):

        Â_i = (e_i − mean_j e_j) / (β (1 + mean_j e_j)),

    the same quantity rearranged (a logsumexp in disguise) so large β cannot
    overflow and small β keeps its digits (expm1 is exact to relative
    precision, so no 1 − 1 cancellation). Properties: Σ_i Â_i = 0; for β > 0,
    Â_i in [−1/β, (G−1)/β]; β -> 0 gives r_i − mean (returned exactly at
    β = 0); all-equal groups give exactly 0 (every e_i is expm1(0) = 0).
    """
    rewards = _check_group_rewards(rewards)
    beta = float(beta)
    if not math.isfinite(beta):
        raise ValueError(f"beta={beta} must be finite")
    if beta == 0.0:
        return rewards - rewards.mean(-1, keepdim=True)
    scaled = beta * rewards
    shifted = torch.expm1(scaled - scaled.amax(-1, keepdim=True))
    mean_shifted = shifted.mean(-1, keepdim=True)
    return (shifted - mean_shifted) / (beta * (1.0 + mean_shifted))


def _broadcastable(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """numpy/torch broadcasting: aligned from the right, each pair of sizes equal or one of them 1.
    (Not ``torch.broadcast_shapes``: its first call imports sympy, ~0.7 s of CPU.)"""
    return all(x == y or x == 1 or y == 1 for x, y in zip(reversed(a), reversed(b)))


def rs_grpo_batched(rewards: Tensor, beta: Tensor) -> Tensor:
    """RS-GRPO's advantage (Jiang et al., 2025, Eq. 6) with one β per group, in one call:

        Â_i = (1/β) (e^{β r_i} / mean_j e^{β r_j} − 1),   β = 0: r_i − mean_j r_j,

    computed exactly as ``rs_grpo`` (max-shifted expm1 weights), for ``rewards`` (..., G) and
    ``beta`` a tensor broadcastable to ``rewards.shape[:-1]`` (e.g. (E, 1, 1) for E estimators'
    temperatures over (E, S, P, G) rewards). Each group's row equals ``rs_grpo(row, β)``.
    """
    rewards = _check_group_rewards(rewards)
    if not isinstance(beta, Tensor):
        raise ValueError(f"beta must be a tensor (use rs_grpo for a float), got {type(beta).__name__}")
    check_finite("beta", beta)
    if not _broadcastable(beta.shape, rewards.shape[:-1]):
        raise ValueError(
            f"beta shape {tuple(beta.shape)} must broadcast to rewards.shape[:-1] = {tuple(rewards.shape[:-1])}"
        )
    beta = beta.to(rewards.dtype).unsqueeze(-1)
    zero = beta == 0
    safe = torch.where(zero, torch.ones_like(beta), beta)
    scaled = safe * rewards
    shifted = torch.expm1(scaled - scaled.amax(-1, keepdim=True))
    mean_shifted = shifted.mean(-1, keepdim=True)
    risk_seeking = (shifted - mean_shifted) / (safe * (1.0 + mean_shifted))
    return torch.where(zero, rewards - rewards.mean(-1, keepdim=True), risk_seeking)


def quantile_band_gain(scores: Tensor, q_low: Tensor | float, q_high: Tensor | float) -> Tensor:
    """g(z, a, b) = (z − a)⁺ − (z − b)⁺ + a − b  (RiskPO, Theorem 1).

    Equals (a − z)⁺ − (b − z)⁺: the score-function weight whose expectation
    against ∇log π is ∇∫_a^b F⁻¹ (with a, b the quantiles). It is a − b below
    a, z − b inside [a, b], and 0 above b.
    """
    q_low = torch.as_tensor(q_low, dtype=scores.dtype, device=scores.device)
    q_high = torch.as_tensor(q_high, dtype=scores.dtype, device=scores.device)
    return (scores - q_low).clamp(min=0) - (scores - q_high).clamp(min=0) + q_low - q_high


def _check_quantile_pair(q_low: Tensor | float, q_high: Tensor | float) -> None:
    check_quantile_pair(q_low, q_high)


def mvar_advantage_from_quantiles(
    scores: Tensor, q_alpha: Tensor | float, q_beta: Tensor | float, omega: float = 0.5
) -> Tensor:
    """RiskPO MVaR advantage (camera-ready form):

        A(z) = −(1+ω)(q_α − z)⁺ + g(z, q_α, q_β).

    Its expectation against ∇log π is the gradient of
    MVaR^ω_{α:β} = (1+ω)∫_0^α F⁻¹ + ∫_α^β F⁻¹. A <= 0 everywhere and A = 0 for
    z >= q_β: the update only pushes probability away from poor outcomes.
    """
    check_finite("scores", scores)
    check_nonnegative("omega", omega)
    _check_quantile_pair(q_alpha, q_beta)
    q_alpha_t = torch.as_tensor(q_alpha, dtype=scores.dtype, device=scores.device)
    lower_tail = (q_alpha_t - scores).clamp(min=0)
    return -(1.0 + float(omega)) * lower_tail + quantile_band_gain(scores, q_alpha, q_beta)


def risk_seeking_mvar_advantage_from_quantiles(
    scores: Tensor, q_alpha: Tensor | float, q_beta: Tensor | float, omega: float = 0.5
) -> Tensor:
    """Risk-seeking MVaR counterpart (RiskPO ablation; sign conventions are ours):

        objective  ∫_α^β F⁻¹ + (1+ω) ∫_β^1 F⁻¹       (upper tail weighted by 1+ω)
        A(z) = (1+ω)(z − q_β)⁺ + g(z, q_α, q_β) + (q_β − q_α)
             = (1+ω)(z − q_β)⁺ + clip(z, q_α, q_β) − q_α.

    ∇∫_β^1 F⁻¹ = E[(z − q_β)⁺ ∇log π] and the band term is the usual g; the
    constant q_β − q_α is a baseline (E[∇log π] = 0) chosen so that A >= 0 and
    A = 0 for z <= q_α, mirroring the risk-averse form.
    """
    check_finite("scores", scores)
    check_nonnegative("omega", omega)
    _check_quantile_pair(q_alpha, q_beta)
    q_alpha_t = torch.as_tensor(q_alpha, dtype=scores.dtype, device=scores.device)
    q_beta_t = torch.as_tensor(q_beta, dtype=scores.dtype, device=scores.device)
    upper_tail = (scores - q_beta_t).clamp(min=0)
    return (1.0 + float(omega)) * upper_tail + quantile_band_gain(scores, q_alpha_t, q_beta_t) + (q_beta_t - q_alpha_t)


def rvar_advantage_from_quantiles(
    scores: Tensor, q_alpha: Tensor | float, q_beta: Tensor | float, alpha: float, beta: float
) -> Tensor:
    """Single-question RVaR advantage (RiskPO, Theorem 1):

    ∇RVaR_{α:β} = E[ g(R, q_α, q_β) / (β − α) · ∇log π ],  so  A = g(R, q_α, q_β) / (β − α).
    """
    check_levels(alpha, beta)
    check_finite("scores", scores)
    _check_quantile_pair(q_alpha, q_beta)
    return quantile_band_gain(scores, q_alpha, q_beta) / (float(beta) - float(alpha))


def cvar_advantage_from_quantile(scores: Tensor, q_alpha: Tensor | float, alpha: float) -> Tensor:
    """Lower-tail CVaR advantage, the α' = 0 case of Theorem 1: A = −(q_α − R)⁺ / α.

    (With a = ess inf R, (a − R)⁺ = 0 and g(R, a, q_α) reduces to −(q_α − R)⁺.)
    """
    check_levels(0.0, alpha, alpha_name="0", beta_name="alpha")
    check_finite("scores", scores)
    check_quantile_pair(q_alpha, q_alpha, low_name="q_alpha", high_name="q_alpha")
    q = torch.as_tensor(q_alpha, dtype=scores.dtype, device=scores.device)
    return -(q - scores).clamp(min=0) / float(alpha)

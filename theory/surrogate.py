"""Clipped policy surrogates: the PPO/GRPO token ratio and the GSPO/RiskPO sequence ratio.

One definition, used by the LLM trainer (``llm/loss.py``) and the tabular
simulator (``sandbox/tabular.py``), so that "the same update rule" is one
function rather than two copies that can drift apart.

Notation (rows i = sampled responses, columns t = tokens, m_it ∈ {0, 1} the mask):

    ℓ_it = log π_θ(y_it | x_i, y_i,<t)        (``logprobs``)
    ℓ'_it = log π_θ'(y_it | x_i, y_i,<t)      (``old_logprobs``, the sampling policy θ')

Token ratio (PPO, Schulman et al. 2017, eq. 7; GRPO, Shao et al. 2024):

    w_it = exp(ℓ_it − ℓ'_it)

Sequence ratio (GSPO, Zheng et al. 2025; RiskPO v2 §3.3 eq. 3, where
s_j^i = (π_θ(y|x)/π_θ'(y|x))^{1/|y|} is shared by every token of the response):

    s_i = exp( Σ_t m_it (ℓ_it − ℓ'_it) / Σ_t m_it ),   w_it = s_i  for every t

Per-token clipped surrogate loss (the negative of the objective), with DAPO's
asymmetric "clip-higher" bounds (Yu et al. 2025):

    L_it = −min( w_it A_i,  clip(w_it, 1 − ε_low, 1 + ε_high) A_i ) · m_it

A token is *clipped* when the clipped branch is the active one and its
gradient is zero: (A_i > 0 and w_it > 1 + ε_high) or (A_i < 0 and w_it < 1 − ε_low).

``aggregate`` reduces L to a scalar (token-mean, DAPO; seq-mean-token-mean,
GRPO; seq-mean-token-sum, Dr. GRPO); ``k3_kl`` is Schulman's k3 estimator of
KL(π_θ ‖ π_ref); ``truncated_importance_weights`` is the truncated
importance-sampling correction for a rollout engine whose log-probs differ
from the trainer's (Yao et al. 2025, "Your efficient RL framework secretly
brings you off-policy RL training"; TRL and verl call it TIS).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from theory.checks import check_choice, check_nonnegative, check_probability, check_rank

Tensor = torch.Tensor

IMPORTANCE_RATIOS = ("token", "sequence")
LOSS_AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")


class SurrogateOutput(NamedTuple):
    per_token_loss: Tensor  # (N, L) L_it, zero where the mask is zero; differentiable w.r.t. logprobs
    ratio: Tensor  # (N, L) w_it (the sequence ratio repeated along t for "sequence"); detached
    is_clipped: Tensor  # (N, L) bool, the clipped branch is active (zero gradient); False where masked
    clip_frac: Tensor  # () masked mean of is_clipped
    ratio_mean: Tensor  # () masked mean of w_it


def _check_pair(logprobs: Tensor, old_logprobs: Tensor, mask: Tensor) -> None:
    check_rank("logprobs", logprobs, 2)
    if old_logprobs.shape != logprobs.shape or mask.shape != logprobs.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)} and mask "
            f"{tuple(mask.shape)} must have the same (N, L) shape"
        )


def importance_log_ratio(
    logprobs: Tensor, old_logprobs: Tensor, mask: Tensor, importance_ratio: str = "token"
) -> Tensor:
    """log w_it: ℓ_it − ℓ'_it ("token") or the masked mean over t of it, repeated along t ("sequence").

    Rows whose mask is all zero get a sequence log-ratio of 0 (ratio 1); the
    mask zeroes their loss anyway. Shapes: (N, L) in, (N, L) out.
    """
    _check_pair(logprobs, old_logprobs, mask)
    check_choice("importance_ratio", importance_ratio, IMPORTANCE_RATIOS)
    log_ratio = logprobs - old_logprobs
    if importance_ratio == "token":
        return log_ratio
    mask_f = mask.to(logprobs.dtype)
    seq = (log_ratio * mask_f).sum(-1) / mask_f.sum(-1).clamp(min=1.0)
    return seq.unsqueeze(-1).expand_as(logprobs)


def clipped_surrogate(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps_low: float = 0.2,
    clip_eps_high: float = 0.2,
    importance_ratio: str = "token",
) -> SurrogateOutput:
    """Per-token clipped surrogate loss L_it (see the module docstring) and its clip statistics.

    Args:
      logprobs: (N, L) log π_θ of the sampled tokens (carries the gradient).
      old_logprobs: (N, L) log π_θ' of the same tokens (treated as constants).
      advantages: (N,) one advantage per response, A_i.
      mask: (N, L) 1 for completion tokens, 0 for padding.
      clip_eps_low: ε_low ∈ [0, 1): the ratio's lower bound 1 − ε_low stays positive.
      clip_eps_high: ε_high ≥ 0 (> ε_low is DAPO's clip-higher).
      importance_ratio: "token" (PPO/GRPO) or "sequence" (GSPO, RiskPO).

    The gradient is ∂L_it/∂ℓ = −A_i w_it m_it on unclipped tokens and 0 on clipped
    ones (for "sequence", spread over the row's tokens by the 1/|y_i| of the mean).
    """
    check_rank("advantages", advantages, 1)
    if advantages.shape[0] != logprobs.shape[0]:
        raise ValueError(f"advantages has {advantages.shape[0]} rows, logprobs has {logprobs.shape[0]}")
    check_probability("clip_eps_low", clip_eps_low, open_high=True)
    check_nonnegative("clip_eps_high", clip_eps_high)
    log_ratio = importance_log_ratio(logprobs, old_logprobs.detach(), mask, importance_ratio)
    ratio = torch.exp(log_ratio)
    adv = advantages.to(logprobs.dtype).unsqueeze(-1)
    mask_f = mask.to(logprobs.dtype)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip_eps_low, 1.0 + clip_eps_high) * adv
    per_token_loss = -torch.minimum(unclipped, clipped) * mask_f
    with torch.no_grad():
        is_clipped = (((ratio > 1.0 + clip_eps_high) & (adv > 0)) | ((ratio < 1.0 - clip_eps_low) & (adv < 0))) & (
            mask_f > 0
        )
        denom = mask_f.sum().clamp(min=1.0)
        clip_frac = is_clipped.to(mask_f.dtype).sum() / denom
        ratio_mean = (ratio * mask_f).sum() / denom
    return SurrogateOutput(per_token_loss, ratio.detach(), is_clipped, clip_frac, ratio_mean)


def aggregate(
    per_token: Tensor,
    mask: Tensor,
    mode: str = "token-mean",
    *,
    num_tokens: float | Tensor | None = None,
    num_sequences: float | Tensor | None = None,
) -> Tensor:
    """Reduce an (N, L) per-token loss to a scalar.

        token-mean            Σ_it L_it m_it / Σ_it m_it              (DAPO: long answers weigh more)
        seq-mean-token-mean   (1/N) Σ_i Σ_t L_it m_it / Σ_t m_it      (GRPO, Shao et al. 2024)
        seq-mean-token-sum    (1/N) Σ_i Σ_t L_it m_it                 (Dr. GRPO, Liu et al. 2025)

    ``num_tokens`` / ``num_sequences`` replace Σ m and N, so that micro-batches
    of one mini-batch (and ranks) add up to the loss of the whole mini-batch.
    """
    check_rank("per_token", per_token, 2)
    if mask.shape != per_token.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must match per_token {tuple(per_token.shape)}")
    check_choice("loss_agg", mode, LOSS_AGGREGATIONS)
    mask_f = mask.to(per_token.dtype)
    masked = per_token * mask_f
    if mode == "token-mean":
        return masked.sum() / (num_tokens if num_tokens is not None else mask_f.sum().clamp(min=1.0))
    sequences = num_sequences if num_sequences is not None else per_token.shape[0]
    if mode == "seq-mean-token-mean":
        return (masked.sum(-1) / mask_f.sum(-1).clamp(min=1.0)).sum() / sequences
    return masked.sum() / sequences


def k3_kl(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """Per-token k3 estimator of KL(π_θ ‖ π_ref) (Schulman 2020, "Approximating KL divergence").

    k3 = e^d − d − 1,  d = log π_ref − log π_θ   (≥ 0, unbiased under y ~ π_θ, 0 iff equal)
    """
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(f"ref_logprobs {tuple(ref_logprobs.shape)} must match logprobs {tuple(logprobs.shape)}")
    d = ref_logprobs - logprobs
    return torch.exp(d) - d - 1.0


class ImportanceCorrection(NamedTuple):
    weights: Tensor  # (N, L) min(ρ_it, cap), 0 where masked; constants (no gradient)
    mean_abs_log_diff: Tensor  # () masked mean of |log π_train − log π_rollout|
    max_ratio: Tensor  # () largest un-truncated ρ_it over unmasked tokens
    truncated_frac: Tensor  # () share of unmasked tokens with ρ_it > cap


def truncated_importance_weights(
    train_logprobs: Tensor, rollout_logprobs: Tensor, mask: Tensor, cap: float
) -> ImportanceCorrection:
    """Truncated importance sampling (TIS) for the rollout/trainer mismatch.

    The rollout engine samples y ~ μ (its kernels and precision), while the
    surrogate assumes y ~ π_θ' (the trainer's own numbers for the same weights).
    Re-weighting each token by

        ρ_it = π_θ'(y_it) / μ(y_it) = exp(ℓ'_it − log μ_it),   w_it = min(ρ_it, C)

    corrects the expectation; the cap C bounds the variance (Yao et al. 2025;
    TRL's ``vllm_importance_sampling_cap``, verl's ``rollout_is_threshold``).
    Shapes: (N, L) in; weights (N, L), detached.
    """
    _check_pair(train_logprobs, rollout_logprobs, mask)
    if not cap >= 1.0:
        raise ValueError(f"tis_cap={cap} must be >= 1 (a cap below 1 would down-weight agreeing tokens)")
    with torch.no_grad():
        mask_b = mask > 0
        log_diff = (train_logprobs - rollout_logprobs).double()
        rho = torch.exp(log_diff)
        weights = torch.clamp(rho, max=cap).to(train_logprobs.dtype) * mask_b.to(train_logprobs.dtype)
        count = mask_b.sum().clamp(min=1)
        mean_abs = (log_diff.abs() * mask_b).sum() / count
        max_ratio = rho[mask_b].max() if bool(mask_b.any()) else torch.ones((), dtype=rho.dtype)
        truncated = ((rho > cap) & mask_b).sum() / count
    return ImportanceCorrection(weights, mean_abs.float(), max_ratio.float(), truncated.float())

"""Pure quantities behind the sandbox's claim checks (RiskPO, RS-GRPO).

Small functions, tensors in and out; the experiments that use them live in
``sandbox/claims.py``.
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor

from .bundles import bundle_score_law  # re-exported: the sandbox reads bundle laws from here
from .dynamics import layer_cake_slices, softmax_policy_gradient

__all__ = [
    "exact_pass_at_k",
    "bundle_score_law",
    "threshold_covariances",
    "layer_cake_transform_covariance",
    "assumption_1_holds",
    "positively_dependent",
    "slope_dominates",
    "softmax_prob_derivative",
]


def exact_pass_at_k(success_prob: Tensor, k: int) -> Tensor:
    """Population pass@k of a prompt solved with probability p per draw: 1 − (1 − p)^k.

    (Chen et al., 2021: the quantity the unbiased estimator ρ(n, c, k) estimates.)
    """
    if int(k) != k or k < 1:
        raise ValueError(f"k={k} must be a positive integer")
    p = torch.as_tensor(success_prob)
    if bool(((p < 0) | (p > 1)).any()):
        raise ValueError("success_prob must lie in [0, 1]")
    return 1.0 - (1.0 - p) ** int(k)


def threshold_covariances(rewards: Tensor, log_probs: Tensor, probs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The layer-cake slices of Lemma 1 (RiskPO) for a discrete reward R and Y = log π:
    C_i = Cov_π(1{R > x_(i)}, log π) on [x_(i), x_(i+1)); see ``dynamics.layer_cake_slices``."""
    return layer_cake_slices(rewards, log_probs, probs)


def layer_cake_transform_covariance(transformed: Tensor, rewards: Tensor, log_probs: Tensor, probs: Tensor) -> Tensor:
    """Cov(h(R), log π) = Σ_i [h(x_(i+1)) − h(x_(i))] · Cov(1{R > x_(i)}, log π)  (Lemma 1 with X = h(R)
    for a nondecreasing h; ``transformed`` holds h(r) per response)."""
    order = torch.argsort(rewards, dim=-1, stable=True)
    h_sorted = torch.gather(transformed, -1, order)
    increments = h_sorted[..., 1:] - h_sorted[..., :-1]
    _, _, slices = threshold_covariances(rewards, log_probs, probs)
    return (increments * slices).sum(-1)


def assumption_1_holds(rewards: Tensor, probs: Tensor, q_alpha: Tensor, q_beta: Tensor, tol: float = 1e-12) -> Tensor:
    """RiskPO Assumption 1 in the form Theorem 2 uses (our reconstruction, see docs/sandbox.md):

        Cov_π(1{R > t}, log π) <= 0  for t below q_α   (in the lower tail, likelier responses are worse),
        Cov_π(1{R > t}, log π) >= 0  for t at or above q_β (in the upper tail, likelier responses are better).

    Checked on the threshold intervals [x_(i), x_(i+1)) of the discrete support with positive width.
    ``q_alpha``/``q_beta`` broadcast against rewards[..., :1]. Returns a bool per instance.
    """
    lower, upper, slices = threshold_covariances(rewards, probs.clamp_min(1e-300).log(), probs)
    width = upper - lower
    in_lower_tail = (upper <= q_alpha) & (width > 0)
    in_upper_tail = (lower >= q_beta) & (width > 0)
    ok_lower = torch.where(in_lower_tail, slices <= tol, True).all(-1)
    ok_upper = torch.where(in_upper_tail, slices >= -tol, True).all(-1)
    return ok_lower & ok_upper


def positively_dependent(rewards: Tensor, probs: Tensor, tol: float = 1e-12) -> Tensor:
    """Cov_π(1{R > t}, log π) >= 0 for every threshold t (the condition of Theorem 3 as we check it)."""
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

"""Entropy and covariance identities of a tabular softmax policy.

The policy over K actions (responses) is π = softmax(θ) on the last dim.
These are the objects behind "entropy collapse": under the natural policy
gradient step θ ← θ + η A (Cui et al., 2025, "The Entropy Mechanism of RL for
Reasoning LMs"; RiskPO Proposition 1)

    H(θ + ηA) − H(θ) = −η Cov_{a~π}(log π(a), A(a)) + O(η²),

so an advantage that correlates with log-probability drains entropy.
"""

from __future__ import annotations

import torch

from .checks import check_finite

Tensor = torch.Tensor

__all__ = [
    "softmax_entropy",
    "covariance",
    "policy_logp_advantage_covariance",
    "natural_gradient_step",
    "first_order_entropy_change",
    "softmax_policy_gradient",
    "layer_cake_slices",
    "layer_cake_covariance",
]


def softmax_entropy(logits: Tensor) -> Tensor:
    """H(π) = −Σ_a π(a) log π(a), π = softmax(logits). (..., K) -> (...)."""
    check_finite("logits", logits)
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def covariance(x: Tensor, y: Tensor, probs: Tensor) -> Tensor:
    """Cov_p(X, Y) = Σ p (x − E x)(y − E y) under a discrete law p. (..., K) -> (...)."""
    ex = (probs * x).sum(-1, keepdim=True)
    ey = (probs * y).sum(-1, keepdim=True)
    return (probs * (x - ex) * (y - ey)).sum(-1)


def policy_logp_advantage_covariance(logits: Tensor, advantages: Tensor) -> Tensor:
    """Cov_{a~π}(log π(a), A(a)), the first-order entropy driver (RiskPO Proposition 1)."""
    check_finite("logits", logits)
    check_finite("advantages", advantages)
    log_p = torch.log_softmax(logits, dim=-1)
    return covariance(log_p, advantages, log_p.exp())


def natural_gradient_step(logits: Tensor, advantages: Tensor, lr: float) -> Tensor:
    """Tabular softmax natural policy gradient: θ ← θ + η A (the Fisher-preconditioned step)."""
    check_finite("advantages", advantages)
    return logits + lr * advantages


def first_order_entropy_change(logits: Tensor, advantages: Tensor, lr: float) -> Tensor:
    """−η Cov_π(log π, A): the O(η) term of H(θ + ηA) − H(θ)."""
    return -lr * policy_logp_advantage_covariance(logits, advantages)


def softmax_policy_gradient(logits: Tensor, advantages: Tensor) -> Tensor:
    """Exact vanilla gradient ∂/∂θ E_{a~π}[A(a)] with A held fixed: π ⊙ (A − E_π A)."""
    probs = torch.softmax(logits, dim=-1)
    return probs * (advantages - (probs * advantages).sum(-1, keepdim=True))


def layer_cake_slices(x: Tensor, y: Tensor, probs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The integrand of the layer-cake identity on each interval of X's support:

        C_i = Cov(1{X > x_(i)}, Y),   constant for t in [x_(i), x_(i+1)),

    with x_(1) <= … <= x_(K) the sorted values of X. Returns (x_(i), x_(i+1), C_i),
    each (..., K−1). For any nondecreasing h, Cov(h(X), Y) = Σ_i [h(x_(i+1)) − h(x_(i))] C_i.
    """
    check_finite("x", x)
    check_finite("y", y)
    support = torch.sort(x, dim=-1).values
    lower, upper = support[..., :-1], support[..., 1:]
    above = (x.unsqueeze(-2) > lower.unsqueeze(-1)).to(x.dtype)  # (..., K−1, K)
    return lower, upper, covariance(above, y.unsqueeze(-2), probs.unsqueeze(-2))


def layer_cake_covariance(x: Tensor, y: Tensor, probs: Tensor) -> Tensor:
    """Right side of the layer-cake identity (RiskPO Lemma 1):

        Cov(X, Y) = ∫ Cov(1{X > t}, Y) dt = Σ_i (x_(i+1) − x_(i)) Cov(1{X > x_(i)}, Y)

    for discrete X (the integrand is constant between support points).
    Computed this way (not via the direct formula) so tests can compare the two.
    """
    lower, upper, slices = layer_cake_slices(x, y, probs)
    return ((upper - lower) * slices).sum(-1)

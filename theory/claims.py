"""Pure quantities behind the sandbox's claim checks (RiskPO, RS-GRPO).

Small functions, tensors in and out; the experiments that use them live in
``sandbox/claims.py``.
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor

__all__ = ["exact_pass_at_k"]


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


def bundle_score_law(level_probs: Tensor) -> Tensor:
    """Law of a bundle score Σ_b R_b for independent questions whose rewards live on a common
    grid of L equally spaced levels (RiskPO §4.1 bundling, general-reward form):

        P[Σ_b R_b = j] = (p_1 * p_2 * … * p_B)[j],   j = 0 … B(L−1)   (* = discrete convolution).

    level_probs (..., B, L) -> (..., B(L−1)+1), float64. Binary rewards (L = 2) give
    the Poisson-binomial law of ``theory.bundles.bundle_score_distribution``.
    """
    p = torch.as_tensor(level_probs, dtype=torch.float64)
    if p.dim() < 2:
        raise ValueError("level_probs must have shape (..., B, L)")
    if bool((p < 0).any()):
        raise ValueError("level_probs must be non-negative")
    num_q, num_levels = p.shape[-2], p.shape[-1]
    law = p[..., 0, :]
    for b in range(1, num_q):
        size = law.shape[-1] + num_levels - 1
        out = torch.zeros(*law.shape[:-1], size, dtype=torch.float64)
        for j in range(num_levels):
            out[..., j : j + law.shape[-1]] += law * p[..., b, j : j + 1]
        law = out
    return law

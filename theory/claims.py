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

"""Policy-update rules of a tabular softmax policy, shared by the bandit and tabular simulators.

A softmax policy π = softmax(θ) over K actions (last dim). An estimator gives
advantages; these functions turn them into an ascent direction on θ, and
``ascent_optimizer`` applies it with torch.optim.

    sampled    ĝ = (1/N) Σ_i A_i ∇_θ log π(a_i) = (1/N) Σ_i A_i (e_{a_i} − π)
               (score function of the softmax; REINFORCE, Williams 1992)
    exact      g = E_{a~π}[Ā(a) ∇_θ log π(a)] = π ⊙ (Ā − E_π Ā)
               (``theory.dynamics.softmax_policy_gradient``; RS-GRPO §3, RiskPO Prop. 1)
    natural    θ ← θ + η Ā  (Fisher-preconditioned; ``theory.dynamics.natural_gradient_step``)

The clipped (PPO/GSPO) step lives in ``theory.surrogate`` with the trainer's loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .checks import check_finite
from .dynamics import natural_gradient_step, softmax_policy_gradient

Tensor = torch.Tensor

__all__ = [
    "sampled_policy_gradient",
    "softmax_policy_gradient",
    "natural_gradient_step",
    "bernoulli_outcomes",
    "population_arm_advantage",
    "OPTIMIZERS",
    "AscentSGD",
    "ascent_optimizer",
    "ascent_step",
]

#: The optimizers the simulators accept, by name: torch.optim classes ("sgd" runs as ``AscentSGD``,
#: the same arithmetic without torch.optim's machinery).
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


def sampled_policy_gradient(probs: Tensor, actions: Tensor, advantages: Tensor) -> Tensor:
    """ĝ = (1/N) Σ_i A_i (e_{a_i} − π): the sampled score-function gradient of a softmax policy.

    probs (..., K) = softmax(θ) of the policy that drew the actions; actions (..., N) int64 in
    [0, K); advantages (..., N), held fixed. Returns (..., K). It is the gradient of the
    surrogate (1/N) Σ_i A_i log π_θ(a_i) at θ, and its expectation over a_i ~ π is
    E_π[A ∇ log π] (``softmax_policy_gradient`` when A depends on the action only).
    """
    if actions.shape != advantages.shape or actions.shape[:-1] != probs.shape[:-1]:
        raise ValueError(
            f"actions {tuple(actions.shape)} and advantages {tuple(advantages.shape)} must share "
            f"shape (..., N) with leading dims of probs {tuple(probs.shape)}"
        )
    check_finite("advantages", advantages)
    n = actions.shape[-1]
    # −π ΣA first, then each A_i added onto its action's entry: two passes over (..., K), not four.
    grad = probs * -advantages.sum(-1, keepdim=True)
    return grad.scatter_add_(-1, actions, advantages).div_(n)


def bernoulli_outcomes(mean_rewards: Tensor, probs: Tensor) -> tuple[Tensor, Tensor]:
    """Every (arm, reward) outcome of a Bernoulli bandit and its probability under π.

    r ~ Bern(μ_a) after a ~ π: outcomes are (arm a, r = 0) with mass π_a(1 − μ_a) and
    (arm a, r = 1) with mass π_a μ_a. mean_rewards (..., K), probs (..., K) ->
    (rewards, masses), each (..., 2K), zeros first.
    """
    mu = mean_rewards.expand_as(probs)
    return torch.cat([torch.zeros_like(probs), torch.ones_like(probs)], -1), torch.cat(
        [probs * (1 - mu), probs * mu], -1
    )


def population_arm_advantage(
    population: Callable[[Tensor, Tensor], Tensor], mean_rewards: Tensor, probs: Tensor, bernoulli: bool = False
) -> Tensor:
    """Ā(a) = E[A | a]: the exact (population) advantage of each arm, (..., K).

    ``population(rewards, probs)`` is an estimator's population form (e.g.
    ``theory.population.population_grpo``) over a discrete outcome law. With
    deterministic rewards the outcomes are the arms; with Bernoulli rewards
    Ā(a) = (1 − μ_a) A(a, 0) + μ_a A(a, 1).
    """
    if not bernoulli:
        return population(mean_rewards.expand_as(probs), probs)
    rewards, masses = bernoulli_outcomes(mean_rewards, probs)
    adv = population(rewards, masses)
    k = probs.shape[-1]
    return (1 - mean_rewards) * adv[..., :k] + mean_rewards * adv[..., k:]


class AscentSGD:
    """Plain SGD ascent θ ← θ + η g, bit for bit what ``torch.optim.SGD([θ], lr=η, maximize=True,
    foreach=False)`` does (no momentum, no weight decay: ``θ.add_(−g, alpha=−η)``, and (−η)(−g) = η g
    exactly), without torch.optim: its first optimizer imports torch._dynamo (~1.5 s of CPU), which a
    cold explorer server would pay on its first simulation. Same use: set ``param.grad``, call ``step``.
    """

    def __init__(self, param: Tensor, lr: float):
        self.param = param
        self.lr = float(lr)

    @torch.no_grad()
    def step(self) -> None:
        self.param.add_(self.param.grad, alpha=self.lr)


def ascent_optimizer(name: str, param: Tensor, lr: float) -> AscentSGD | torch.optim.Optimizer:
    """SGD (θ ← θ + η g, ``AscentSGD``: torch.optim.SGD's arithmetic) or torch.optim Adam (default
    β₁ = 0.9, β₂ = 0.999, ε = 1e-8, ``maximize=True``) climbing g.

    ``param`` must be a leaf tensor; ``ascent_step`` hands it its direction.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer={name!r} must be one of {tuple(OPTIMIZERS)}")
    if name == "sgd":
        return AscentSGD(param, lr)
    # foreach=False: one small tensor, the per-parameter loop is the cheaper path.
    return OPTIMIZERS[name]([param], lr=lr, maximize=True, foreach=False)


def ascent_step(optimizer: AscentSGD | torch.optim.Optimizer, param: Tensor, direction: Tensor) -> None:
    """One optimizer step of ``param`` along the ascent direction ``direction`` (same shape)."""
    if direction.shape != param.shape:
        raise ValueError(f"direction {tuple(direction.shape)} must match the parameter {tuple(param.shape)}")
    param.grad = direction
    optimizer.step()

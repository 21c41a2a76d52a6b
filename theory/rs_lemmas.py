"""RS-GRPO Lemmas 2–4 (Jiang et al., 2025, arXiv:2509.24261, §5.2 and Appendix C.2) as computations.

The setting of the lemmas: a K-armed bandit with deterministic rewards r(a), a softmax
policy π = softmax(θ) and ONE exact policy-gradient step on the risk-sensitive objective
J_β(π) = (1/β) log E_π e^{β r}  (β = 0: the mean E_π r), with an arbitrary shared learning
rate η (Eqs. 13–14 of the appendix):

    θ'_a = θ_a + η ∂J_β/∂θ_a = θ_a + η π(a) (A_β(a) − E_π A_β),
    A_β(a) = (1/β)(e^{β r(a)} / E_π e^{β r} − 1)     (E_π A_β = 0).

The lemmas are about π'(A*) − π(A*), the change of the total mass on the optimal arms
A* = argmax r (the formal versions allow several optimal arms):

* Lemma 3 / formal Lemma 7: there is β₀ such that for every β > β₀ the change is > 0
  (for any learning rate);
* Lemma 4 / formal Lemma 8: there is β₁ such that for β' > β > β₁ the change at β' is
  smaller than at β (for any fixed learning rate).

``optimal_mass_step_change`` computes the exact finite-step change on a (β, η) grid;
``lemma3_threshold``/``lemma4_threshold`` read β₀/β₁ off such a grid (the one definition the
sandbox and the app share). ``optimal_mass_derivative`` is the first-order (η → 0) layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .dynamics import softmax_policy_gradient
from .population import population_rs_grpo
from .risk_measures import _check_distribution

Tensor = torch.Tensor

__all__ = [
    "optimal_mask",
    "rs_grpo_gradient",
    "optimal_mass_step_change",
    "optimal_mass_derivative",
    "optimal_mass_derivative_curve",
    "value_gap",
    "raises_optimal_mass_for_every_lr",
    "optimal_gradient_gaps",
    "gaps_shrink_threshold",
    "lemma3_threshold",
    "lemma4_threshold",
]


def optimal_mask(rewards: Tensor) -> Tensor:
    """A* = argmax r as a bool mask (ties: every maximiser is optimal, as in the formal lemmas)."""
    return rewards == rewards.amax(-1, keepdim=True)


def rs_grpo_gradient(rewards: Tensor, logits: Tensor, beta: float) -> Tensor:
    """∂J_β/∂θ = π ⊙ (A_β − E_π A_β), the exact softmax policy gradient of (1/β) log E_π e^{βr}."""
    probs = torch.softmax(logits, -1)
    _check_distribution(rewards, probs)
    return softmax_policy_gradient(logits, population_rs_grpo(rewards, probs, float(beta)))


def _check_grid(name: str, values, *, positive: bool) -> Tensor:
    """A β or η grid: a sequence shared by every law, or a tensor (..., n) with one grid per law;
    finite, strictly increasing along the last dim."""
    grid = (
        values.to(torch.float64)
        if torch.is_tensor(values)
        else torch.as_tensor([float(v) for v in values], dtype=torch.float64)
    )
    if grid.dim() == 0 or grid.shape[-1] == 0:
        raise ValueError(f"{name} must be a non-empty grid")
    if not bool(torch.isfinite(grid).all()):
        raise ValueError(f"{name} must be finite")
    if positive and bool((grid <= 0).any()):
        raise ValueError(f"{name} must be > 0")
    if grid.shape[-1] > 1 and not bool((torch.diff(grid, dim=-1) > 0).all()):
        raise ValueError(f"{name} must be strictly increasing")
    return grid


def _gradients_on_grid(rewards: Tensor, logits: Tensor, beta_grid: Tensor) -> tuple[Tensor, Tensor]:
    """Logits and ∂J_β/∂θ for every β of the grid, both (..., n_β, K)."""
    n_beta = beta_grid.shape[-1]
    batch = rewards.shape[:-1]
    beta_grid = beta_grid.expand(*batch, n_beta)
    r = rewards.unsqueeze(-2).expand(*batch, n_beta, rewards.shape[-1])
    z = logits.unsqueeze(-2).expand_as(r)
    probs = torch.softmax(z, -1)
    _check_distribution(r, probs)
    return z, softmax_policy_gradient(z, population_rs_grpo(r, probs, beta_grid.unsqueeze(-1)))


def value_gap(rewards: Tensor) -> Tensor:
    """Δ = r* − max{r(a) : r(a) < r*}, the gap to the runner-up (the scale of β in the proof of Lemma 7).
    NaN where every action is optimal (the trivial case the paper excludes, Remark 5)."""
    best = rewards.amax(-1, keepdim=True)
    runner_up = torch.where(rewards < best, rewards, torch.full_like(rewards, -torch.inf)).amax(-1)
    gap = best.squeeze(-1) - runner_up
    return torch.where(torch.isinf(gap), torch.full_like(gap, float("nan")), gap)


def optimal_mass_derivative_curve(rewards: Tensor, logits: Tensor, betas) -> Tensor:
    """d/dη π'(A*) at η = 0 for every β of a shared (n_β,) or per-law (..., n_β) grid: (..., n_β)."""
    if rewards.shape != logits.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and logits {tuple(logits.shape)} must have the same shape")
    z, grads = _gradients_on_grid(rewards, logits, _check_grid("betas", betas, positive=False))
    return (softmax_policy_gradient(z, grads) * optimal_mask(rewards).unsqueeze(-2)).sum(-1)


def optimal_mass_step_change(rewards: Tensor, logits: Tensor, betas, lrs: Sequence[float]) -> Tensor:
    """π'(A*) − π(A*) after one exact step θ' = θ + η ∂J_β/∂θ, for every β in ``betas`` and η in ``lrs``.

    rewards, logits: (..., K) float64; ``betas`` a shared grid (n_β,) or one grid per law (..., n_β).
    Returns (..., n_β, n_η).
    """
    if rewards.shape != logits.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and logits {tuple(logits.shape)} must have the same shape")
    beta_grid = _check_grid("betas", betas, positive=False)
    lr_grid = _check_grid("lrs", lrs, positive=True)
    if lr_grid.dim() != 1:
        raise ValueError("lrs must be one shared grid")
    z, grads = _gradients_on_grid(rewards, logits, beta_grid)
    best = optimal_mask(rewards).unsqueeze(-2).unsqueeze(-2)
    before = (torch.softmax(logits, -1) * optimal_mask(rewards)).sum(-1)
    stepped = z.unsqueeze(-2) + lr_grid.to(logits.dtype)[:, None] * grads.unsqueeze(-2)  # (..., n_β, n_η, K)
    after = (torch.softmax(stepped, -1) * best).sum(-1)
    return after - before.unsqueeze(-1).unsqueeze(-1)


def optimal_mass_derivative(rewards: Tensor, logits: Tensor, beta: float) -> Tensor:
    """d/dη π'(A*) at η = 0: the first-order change Σ_{a∈A*} π(a)(g(a) − E_π g), g = ∂J_β/∂θ."""
    direction = rs_grpo_gradient(rewards, logits, beta)
    return (softmax_policy_gradient(logits, direction) * optimal_mask(rewards)).sum(-1)


def raises_optimal_mass_for_every_lr(rewards: Tensor, logits: Tensor, betas) -> Tensor:
    """Whether one exact step raises π(A*) for EVERY learning rate η > 0, per β: (..., n_β) bool.

    With g = ∂J_β/∂θ the step multiplies π(a) by e^{η g(a)} before renormalising, so if every optimal
    arm's g is larger than every other arm's, π'(A*) > π(A*) for all η > 0. For a unique optimal arm
    this is also necessary (up to exact ties of g): f(η) = Σ_a π(a) e^{η(g(a) − g(a*))} is convex
    with f(0) = 1, and it exceeds 1 for large η as soon as some g(a) > g(a*). This checks the formal
    Lemma 7's "for any learning rate" exactly, where a grid of η can only sample it.
    """
    if rewards.shape != logits.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and logits {tuple(logits.shape)} must have the same shape")
    _, grads = _gradients_on_grid(rewards, logits, _check_grid("betas", betas, positive=False))
    best = optimal_mask(rewards).unsqueeze(-2)
    lowest_optimal = torch.where(best, grads, torch.full_like(grads, torch.inf)).amin(-1)
    highest_other = torch.where(best, torch.full_like(grads, -torch.inf), grads).amax(-1)
    return lowest_optimal > highest_other


def optimal_gradient_gaps(rewards: Tensor, logits: Tensor, betas) -> Tensor:
    """g(a*) − g(a) for every arm and β, g = ∂J_β/∂θ, (..., n_β, K); 0 on the optimal arms (unique optimum assumed).

    π'_β(a*) = 1 / (1 + Σ_{a≠a*} (π(a)/π(a*)) e^{−η (g(a*) − g(a))}), so if every gap shrinks as β grows,
    π'_β(a*) shrinks too, for EVERY learning rate η > 0: a sufficient, η-free form of Lemma 4.
    """
    if rewards.shape != logits.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and logits {tuple(logits.shape)} must have the same shape")
    _, grads = _gradients_on_grid(rewards, logits, _check_grid("betas", betas, positive=False))
    best = optimal_mask(rewards).unsqueeze(-2)
    top = torch.where(best, grads, torch.full_like(grads, -torch.inf)).amax(-1, keepdim=True)
    return torch.where(best, torch.zeros_like(grads), top - grads)


def _first_of_trailing_run(ok: Tensor) -> Tensor:
    """Index of the first position of the maximal all-True suffix of ``ok`` (..., n); n if ok[..., -1] is False."""
    n = ok.shape[-1]
    suffix = torch.flip(torch.cumprod(torch.flip(ok.to(torch.int64), [-1]), -1), [-1]).bool()
    return n - suffix.sum(-1)


def _grid_value(grid: Tensor, index: Tensor) -> Tensor:
    """grid[..., index] (a shared or a per-law grid), NaN where index == grid length (no such point)."""
    nan = torch.full_like(grid[..., :1], float("nan"))
    padded = torch.cat([grid, nan], -1)
    if padded.dim() == 1:
        return padded[index]
    return torch.gather(padded.expand(*index.shape, padded.shape[-1]), -1, index.unsqueeze(-1)).squeeze(-1)


def _beta_axis_last(grid: Tensor, changes: Tensor, lr_axis: bool) -> Tensor:
    if torch.is_complex(changes) or not (changes.is_floating_point() or changes.dtype == torch.bool):
        raise ValueError("changes must be a real floating tensor (or bool)")
    axis = -2 if lr_axis else -1
    if changes.dim() < (2 if lr_axis else 1) or changes.shape[axis] != grid.shape[-1]:
        raise ValueError(f"changes {tuple(changes.shape)} must have {grid.shape[-1]} betas on dim {axis}")
    return changes


def lemma3_threshold(betas, changes: Tensor, lr_axis: bool = False) -> Tensor:
    """β₀ of Lemma 3 read off a grid: the smallest grid β from which the change of π(A*) is > 0 at
    that and at every larger grid β (for every learning rate, when ``lr_axis``).

    ``betas``: a shared grid (n_β,) or one grid per law (..., n_β); ``changes``: (..., n_β), or
    (..., n_β, n_lr) with ``lr_axis=True``, or a bool (..., n_β) such as
    ``raises_optimal_mass_for_every_lr`` (True counts as positive).
    NaN where the change at the last grid β is not positive.
    """
    grid = _check_grid("betas", betas, positive=False)
    positive = _beta_axis_last(grid, changes, lr_axis) > 0
    if lr_axis:
        positive = positive.all(-1)
    return _grid_value(grid, _first_of_trailing_run(positive))


def gaps_shrink_threshold(betas, gaps: Tensor, tol: float = 1e-14) -> Tensor:
    """The smallest grid β from which every gap of ``optimal_gradient_gaps`` (..., n_β, K) is non-increasing
    on every later grid interval (then the improvement shrinks with β at every learning rate). NaN if none."""
    grid = _check_grid("betas", betas, positive=False)
    if gaps.dim() < 2 or gaps.shape[-2] != grid.shape[-1]:
        raise ValueError(f"gaps {tuple(gaps.shape)} must have {grid.shape[-1]} betas on dim -2")
    steps = (torch.diff(gaps, dim=-2) <= tol).all(-1)
    first = _first_of_trailing_run(steps)
    start = _grid_value(grid, first)
    return torch.where(first == steps.shape[-1], torch.full_like(start, float("nan")), start)


def lemma4_threshold(betas, changes: Tensor, lr_axis: bool = False, tol: float = 1e-14) -> Tensor:
    """β₁ of Lemma 4 read off a grid: the smallest grid β >= β₀ from which the change of π(A*) is
    non-increasing on every later grid interval (for every learning rate, when ``lr_axis``).

    ``tol`` absorbs float64 round-off of π' − π (O(1) numbers, ulp ~1e-16). NaN where β₀ is NaN
    or where the last grid interval still rises.
    """
    grid = _check_grid("betas", betas, positive=False)
    beta0 = lemma3_threshold(betas, changes, lr_axis)
    steps = torch.diff(changes, dim=-2 if lr_axis else -1) <= tol  # (..., n−1 intervals[, n_lr])
    if lr_axis:
        steps = steps.all(-1)
    first = _first_of_trailing_run(steps)  # interval index; == n−1 when the last interval rises
    start = _grid_value(grid, first)
    start = torch.where(first == steps.shape[-1], torch.full_like(start, float("nan")), start)
    return torch.where(
        torch.isnan(start) | torch.isnan(beta0), torch.full_like(start, float("nan")), torch.maximum(start, beta0)
    )

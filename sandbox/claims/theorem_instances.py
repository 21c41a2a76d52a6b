"""Exact discrete laws for the RiskPO Theorem 2/3 checks: G responses with rewards r_a and logits θ_a,
π = softmax(θ), SF = log π. The families never look at the conclusion (see ``riskpo_covariance``);
``tail_mass`` is constructed to meet the literal Assumption 1 with mass strictly below q_α and above q_β.
"""

from __future__ import annotations

import math

import torch

__all__ = ["DTYPE", "INSTANCE_FAMILIES", "INSTANCE_FAMILY_TEXT", "random_instances", "tail_mass_instances"]

DTYPE = torch.float64
INSTANCE_FAMILIES = ("u_shaped", "lm_like", "random", "tail_mass")
#: one line per family, for display next to the Theorem 2/3 checks.
INSTANCE_FAMILY_TEXT = {
    "u_shaped": "graded rewards on {0, 1/8, …, 1}; log π a random parabola in the reward (+ noise)",
    "lm_like": "rewards k/16 from an arcsine law (mass at both ends); log π rising towards both tails, flat on "
    "[0.3, 0.7] (the profile of RiskPO Fig. 3) + noise",
    "random": "graded rewards on {0, 1/8, …, 1}; i.i.d. N(0, 4) logits",
    "tail_mass": "constructed: distinct rewards k/32; π chosen so that q_α, q_β fall on given atoms with mass "
    "strictly below q_α and above q_β, log π decreasing on the lower tail and increasing on the upper one",
}
#: sharpness of the tail-mass shapes in ``tail_mass_instances``: weights E^(1/c), E ~ Exp(1), so c = 10 gives
#: nearly equal (but strictly ordered) tail probabilities; smaller c fails the level clauses more often
#: (acceptance at G = 10, α = 0.2, β = 0.8: c = 4 → 36 %, c = 10 → 77 %, measured on 4000 draws).
TAIL_SHAPE = 10.0
#: reward grid of ``tail_mass_instances`` (distinct rewards k/32, so each atom is one response and ψ = log π).
TAIL_GRID = 32


def tail_mass_instances(
    g: torch.Generator, n: int, size: int, alpha: float = 0.2, beta: float = 0.8
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards, logits), each (n, size): laws built to meet Assumption 1 with tail mass on both sides.

    Construction (responses sorted by reward; rewards distinct, so ψ(r_a) = log π_a):
      1. a, b ∈ {2, …, max(2, size // 5)} responses in the lower / upper tail, the rest in the middle;
      2. lower tail probabilities T_L·s_1 ≥ … ≥ T_L·s_a (s a random decreasing shape summing to 1) with
         T_L drawn in (α, α/(1 − s_a)): then P(R < r_a) = T_L(1 − s_a) < α ≤ T_L = F(r_a), so q_α = r_a with
         mass strictly below it, and ψ is non-increasing on r ≤ q_α. The upper tail mirrors this
         (T_U in (1 − β, (1 − β)/(1 − s_1')): q_β = the lowest upper-tail reward, mass strictly above it,
         ψ non-decreasing);
      3. the middle shares 1 − T_L − T_U almost uniformly (±10 %);
      4. the level clauses ψ(q_α), ψ(q_β) ≥ E[log π] are not implied: draws failing them (plain
         arithmetic on π, not the predicate) are redrawn until n remain.
    Columns are shuffled so no check may rely on the order. Rows whose middle would get less than
    2 % mass are redrawn too (that needs α, β far enough from 0 and 1).
    """
    if size < 5:
        raise ValueError(f"size={size} must be >= 5 (two responses per tail and one in the middle)")
    if size > TAIL_GRID + 1:
        raise ValueError(f"size={size} must be <= {TAIL_GRID + 1} (distinct rewards on the grid k/{TAIL_GRID})")
    rewards_out, probs_out, have = [], [], 0
    idx = torch.arange(size)
    t_max = max(2, size // 5)
    for _ in range(100):
        m = 2 * (n - have) + 16
        a = torch.randint(2, t_max + 1, (m, 1), generator=g)
        b = torch.randint(2, t_max + 1, (m, 1), generator=g)
        lower, upper = idx < a, idx >= size - b
        middle = ~lower & ~upper
        w = (-torch.log(torch.rand(m, size, generator=g, dtype=DTYPE))) ** (1 / TAIL_SHAPE)
        # Descending sort sends the zeros (non-tail slots) last, ascending sends them first.
        s_low = torch.where(lower, w, 0.0).sort(-1, descending=True).values
        s_low = s_low / s_low.sum(-1, keepdim=True)
        s_up = torch.where(upper, w, 0.0).sort(-1).values
        s_up = s_up / s_up.sum(-1, keepdim=True)
        s_a = s_low.gather(-1, a - 1)
        s_b = s_up.gather(-1, size - b)
        u = 0.05 + 0.9 * torch.rand(m, 2, generator=g, dtype=DTYPE)  # keep away from the quantile edges
        t_low = alpha + u[:, :1] * (alpha / (1 - s_a) - alpha)
        t_up = (1 - beta) + u[:, 1:] * ((1 - beta) / (1 - s_b) - (1 - beta))
        rest = 1 - t_low - t_up
        w_mid = torch.where(middle, 0.9 + 0.2 * torch.rand(m, size, generator=g, dtype=DTYPE), 0.0)
        probs = t_low * s_low + t_up * s_up + rest.clamp(min=0) * w_mid / w_mid.sum(-1, keepdim=True)
        mean_log = (probs * probs.log()).sum(-1, keepdim=True)
        level = (probs.gather(-1, a - 1).log() >= mean_log) & (probs.gather(-1, size - b).log() >= mean_log)
        keep = (level & (rest > 0.02)).squeeze(-1)
        grid = torch.rand(m, TAIL_GRID + 1, generator=g).argsort(-1)[:, :size].sort(-1).values
        rewards = grid.to(DTYPE) / TAIL_GRID
        perm = torch.rand(m, size, generator=g).argsort(-1)
        rewards_out.append(rewards.gather(-1, perm)[keep])
        probs_out.append(probs.gather(-1, perm)[keep])
        have += int(keep.sum())
        if have >= n:
            break
    else:
        raise ValueError(
            f"tail_mass_instances: fewer than {n} draws met the level clauses at alpha={alpha}, beta={beta}"
        )
    rewards, probs = torch.cat(rewards_out)[:n], torch.cat(probs_out)[:n]
    return rewards, probs.log()


def random_instances(
    g: torch.Generator, n: int, size: int, family: str, alpha: float = 0.2, beta: float = 0.8
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards, logits), each (n, size), from one documented family (see the module docstring).
    ``alpha``/``beta`` are read by ``tail_mass`` only (it places its quantiles)."""
    if family == "tail_mass":
        return tail_mass_instances(g, n, size, alpha, beta)
    if family == "u_shaped":
        rewards = torch.floor(torch.rand(n, size, generator=g, dtype=DTYPE) * 9) / 8
        centre = torch.rand(n, 1, generator=g, dtype=DTYPE)
        curvature = 2 + 6 * torch.rand(n, 1, generator=g, dtype=DTYPE)
        logits = curvature * (rewards - centre) ** 2 + 0.3 * torch.randn(n, size, generator=g, dtype=DTYPE)
    elif family == "lm_like":
        arcsine = torch.sin(0.5 * math.pi * torch.rand(n, size, generator=g, dtype=DTYPE)) ** 2  # Beta(½, ½)
        rewards = torch.round(arcsine * 16) / 16
        low_tail = (0.3 - rewards).clamp(min=0) / 0.3
        high_tail = (rewards - 0.7).clamp(min=0) / 0.3
        logits = (
            (1 + 2 * torch.rand(n, 1, generator=g, dtype=DTYPE)) * low_tail
            + (1 + 2 * torch.rand(n, 1, generator=g, dtype=DTYPE)) * high_tail
            + 0.3 * torch.randn(n, size, generator=g, dtype=DTYPE)
        )
    elif family == "random":
        rewards = torch.floor(torch.rand(n, size, generator=g, dtype=DTYPE) * 9) / 8
        logits = 2 * torch.randn(n, size, generator=g, dtype=DTYPE)
    else:
        raise ValueError(f"family={family!r} must be one of {INSTANCE_FAMILIES}")
    return rewards, logits

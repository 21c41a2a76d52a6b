"""Pass@k: the unbiased estimator and the pass@k-oriented advantage baselines.

All functions take a group of G = n samples per prompt on the last dim.
Combinatorial ratios are evaluated in log space with lgamma, so n up to
thousands neither overflows nor loses precision.
"""

from __future__ import annotations

import torch

from .checks import check_finite, check_group_size, check_k, check_unit_interval

Tensor = torch.Tensor

__all__ = [
    "exact_pass_at_k",
    "exact_pass_at_ks",
    "log_binom",
    "pass_at_k",
    "pass_at_k_from_rewards",
    "chen_passk_advantage",
    "leave_one_out_max_advantage",
    "max_at_k_estimate",
    "pkpo_effective_rewards",
    "pkpo_advantage",
    "passk_chain_rule_advantage",
    "passk_reweighted_advantage",
    "max_of_draws_weights",
    "expected_max",
    "expected_max_with",
]


def exact_pass_at_k(success_prob: Tensor, k: int) -> Tensor:
    """Population pass@k of a prompt solved with probability p per draw: 1 − (1 − p)^k.

    (Chen et al., 2021: the quantity the unbiased estimator ρ(n, c, k) estimates.) The one
    place this formula is written; the sandbox, population forms and tests call it.
    """
    return exact_pass_at_ks(success_prob, (k,))[0]


def exact_pass_at_ks(success_prob: Tensor, ks) -> list[Tensor]:
    """``[exact_pass_at_k(success_prob, k) for k in ks]``, the input checked once (a simulator logs
    pass@k for a whole grid of k every step)."""
    ks = list(ks)
    for k in ks:
        if int(k) != k or k < 1:
            raise ValueError(f"k={k} must be a positive integer")
    p = torch.as_tensor(success_prob)
    if torch.is_complex(p) or bool(torch.isnan(p).any()) or bool(((p < 0) | (p > 1)).any()):
        raise ValueError("success_prob must lie in [0, 1]")
    return [1.0 - (1.0 - p) ** int(k) for k in ks]


def log_binom(n: Tensor, k: Tensor) -> Tensor:
    """log C(n, k) for 0 <= k <= n (float64); −inf where k > n or k < 0."""
    n = torch.as_tensor(n, dtype=torch.float64)
    k = torch.as_tensor(k, dtype=torch.float64)
    valid = (k >= 0) & (k <= n)
    safe_k = torch.where(valid, k, torch.zeros_like(k))
    safe_n = torch.where(valid, n, torch.zeros_like(n))
    value = torch.lgamma(safe_n + 1) - torch.lgamma(safe_k + 1) - torch.lgamma(safe_n - safe_k + 1)
    return torch.where(valid, value, torch.full_like(value, -torch.inf))


def _binom_ratio(n_top: Tensor, k_top: Tensor, n_bottom: Tensor, k_bottom: Tensor) -> Tensor:
    """C(n_top, k_top) / C(n_bottom, k_bottom), zero where the numerator is empty."""
    return torch.exp(log_binom(n_top, k_top) - log_binom(n_bottom, k_bottom))


def pass_at_k(n: Tensor | int, c: Tensor | int, k: int) -> Tensor:
    """Unbiased pass@k estimator (Chen et al., 2021, Codex): ρ(n, c, k) = 1 − C(n−c, k) / C(n, k).

    n samples of which c are correct; exactly 1 when n − c < k.
    """
    n_t = torch.as_tensor(n, dtype=torch.float64)
    c_t = torch.as_tensor(c, dtype=torch.float64)
    if bool((c_t < 0).any()) or bool((c_t > n_t).any()):
        raise ValueError("c must satisfy 0 <= c <= n")
    check_k(k, int(n_t.min()), n_name="n")
    return 1.0 - _binom_ratio(n_t - c_t, torch.full_like(n_t, float(k)), n_t, torch.full_like(n_t, float(k)))


def _check_binary(rewards: Tensor) -> Tensor:
    check_finite("rewards", rewards)
    check_group_size("group size G (rewards.shape[-1])", rewards.shape[-1])
    if not bool(((rewards == 0) | (rewards == 1)).all()):
        raise ValueError("rewards must be binary (0 or 1) for this pass@k estimator")
    return rewards.to(torch.float64)


def pass_at_k_from_rewards(rewards: Tensor, k: int) -> Tensor:
    """ρ(n, c, k) per group of binary rewards (..., n) -> (...)."""
    rewards = _check_binary(rewards)
    n = rewards.shape[-1]
    return pass_at_k(torch.full(rewards.shape[:-1], n, dtype=torch.float64), rewards.sum(-1), k)


def chen_passk_advantage(rewards: Tensor, k: int) -> Tensor:
    """Analytic pass@k advantage (Chen et al., 2025, "Pass@k Training for Adaptively
    Balancing Exploration and Exploitation"). Binary rewards, group of N with c correct:

        R̄ = 1 − C(N−c, k)/C(N, k),   σ = sqrt(R̄ (1 − R̄)),
        A⁺ = (1 − R̄) / σ,
        A⁻ = (1 − R̄ − C(N−c−1, k−1)/C(N−1, k−1)) / σ.

    That is A_i = (mean over k-subsets S ∋ i of max_S − mean over all S of max_S) / std_S(max_S),
    the group-normalised advantage of the k-subset reward. Graded rewards use the
    same definition with max@k in place of pass@k (our generalisation; identical on
    binary rewards): mean_{S∋i} max_S is (n/k) times the PKPO effective reward r_i, and the
    subset-max law puts weight C(j−1, k−1)/C(N, k) on the j-th smallest reward.

    When every k-subset has the same max (no correct sample, or every k-subset
    already passes) σ = 0 and there is no signal: those groups get exactly 0.
    Σ_i A_i = 0 for every group.
    """
    check_finite("rewards", rewards)
    n = rewards.shape[-1]
    check_group_size("group size G (rewards.shape[-1])", n)
    check_k(k, n, n_name="group size")
    # Pass rates live in [0, 1]; a reward of 2.0 or −1 is not a pass outcome (graded rewards in [0, 1] are).
    check_unit_interval("rewards", rewards)
    values = rewards.to(torch.float64)
    ordered = torch.sort(values, dim=-1).values
    weights = _max_at_k_weights(n, k)
    mean_max = (ordered * weights).sum(-1, keepdim=True)
    mean_max_sq = (ordered**2 * weights).sum(-1, keepdim=True)
    # Every k-subset has the same max iff the smallest possible max, x_(k), is the largest value.
    constant = ordered[..., k - 1 : k] == ordered[..., n - 1 :]
    std = torch.sqrt((mean_max_sq - mean_max**2).clamp(min=0.0))
    safe_std = torch.where(constant | (std == 0), torch.ones_like(std), std)
    subset_mean_containing_i = (n / k) * pkpo_effective_rewards(values, k)  # mean over k-subsets S ∋ i of max_S
    advantage = (subset_mean_containing_i - mean_max) / safe_std
    return torch.where(constant | (std == 0), torch.zeros_like(advantage), advantage)


def leave_one_out_max_advantage(rewards: Tensor) -> Tensor:
    """Leave-one-out max baseline (Tang et al., 2025, "Optimizing Language Models for
    Inference Time Objectives using RL"), the pass@N objective:  A_i = max_j r_j − max_{j≠i} r_j.

    Only the unique best sample gets a positive weight (the gap to the runner-up).
    """
    check_finite("rewards", rewards)
    check_group_size("group size G (rewards.shape[-1])", rewards.shape[-1])
    top2 = torch.topk(rewards, 2, dim=-1).values
    best, runner_up = top2[..., :1], top2[..., 1:2]
    max_without_i = torch.where(rewards == best, runner_up, best)
    return best - max_without_i


def _max_at_k_weights(n: int, k: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """w_i = C(i−1, k−1)/C(n, k) for ascending order statistics i = 1..n (P[x_(i) is the max of a k-subset])."""
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return _binom_ratio(
        i - 1, torch.full_like(i, k - 1.0), torch.full_like(i, float(n)), torch.full_like(i, float(k))
    ).to(dtype)


def max_at_k_estimate(rewards: Tensor, k: int) -> Tensor:
    """Unbiased estimate of E[max of k draws] from n >= k draws: Σ_i C(i−1, k−1)/C(n, k) · x_(i).

    For binary rewards this is exactly pass@k.
    """
    check_finite("rewards", rewards)
    n = rewards.shape[-1]
    check_k(k, n, n_name="group size")
    ordered = torch.sort(rewards.to(torch.float64), dim=-1).values
    return (ordered * _max_at_k_weights(n, k)).sum(-1)


def pkpo_effective_rewards(rewards: Tensor, k: int) -> Tensor:
    """PKPO effective rewards (Walder & Karkhanis, 2025, "Pass@K Policy Optimization", arXiv:2505.15201),
    with the paper's normalisation:

        r_i = (1/C(n,k)) Σ_{|S|=k, S∋i} max_{j∈S} x_j,

    so that Σ_i r_i ∇log π(x_i) is an unbiased estimate of ∇ E[max of k draws] (maxg@k). On
    binary rewards with c correct this is the paper's r_i = k/n (correct) and
    r_i = (k/n)·ρ(n−1, c, k−1) (incorrect), ρ the unbiased pass@k of ``pass_at_k``.
    In sorted order (ascending, 1-based)
    r_(i) = [C(i−1, k−1) x_(i) + Σ_{j>i} C(j−2, k−2) x_(j)] / C(n,k).
    (Before this version the function returned (n/k)·r_i, i.e. the average over subsets.)
    """
    check_finite("rewards", rewards)
    n = rewards.shape[-1]
    check_group_size("group size G (rewards.shape[-1])", n, minimum=1)
    check_k(k, n, n_name="group size")
    values = rewards.to(torch.float64)
    ordered, order = torch.sort(values, dim=-1)
    pos = torch.arange(1, n + 1, dtype=torch.float64)
    own = _binom_ratio(
        pos - 1, torch.full_like(pos, k - 1.0), torch.full_like(pos, float(n)), torch.full_like(pos, float(k))
    )
    # Subsets whose max is x_(j) > i and that contain i: choose the other k−2 from j−2 below j.
    above = _binom_ratio(
        pos - 2, torch.full_like(pos, k - 2.0), torch.full_like(pos, float(n)), torch.full_like(pos, float(k))
    )
    weighted_above = ordered * above
    # suffix sum over j > i
    suffix = torch.flip(torch.cumsum(torch.flip(weighted_above, [-1]), -1), [-1])
    strictly_above = suffix - weighted_above
    sorted_r = ordered * own + strictly_above
    return (
        torch.empty_like(sorted_r)
        .scatter_(-1, order, sorted_r)
        .to(rewards.dtype if rewards.is_floating_point() else torch.float64)
    )


def pkpo_advantage(rewards: Tensor, k: int) -> Tensor:
    """PKPO effective reward (paper scale, ``pkpo_effective_rewards``) minus a leave-one-out baseline:

        A_i = r_i − (k/n)·max@k'(x_{−i}),   k' = min(k, n − 1),

    where max@k'(x_{−i}) is the unbiased estimate from the other n − 1 samples (the
    baseline on the scale of r_i, whose mean is (k/n)·max@k). The baseline does not
    depend on x_i, so Σ_i A_i ∇log π(x_i) stays an unbiased estimate of ∇ maxg@k
    (tests/theory/test_theory_passk.py checks the ratio is 1 by exact enumeration). The
    baseline is our choice; PKPO (arXiv:2505.15201) discusses several. For k = n it is
    the leave-one-out max advantage of Tang et al. times k/n = 1.
    """
    check_finite("rewards", rewards)
    n = rewards.shape[-1]
    check_group_size("group size G (rewards.shape[-1])", n)
    check_k(k, n, n_name="group size")
    s = pkpo_effective_rewards(rewards, k).to(torch.float64)
    k_loo = min(k, n - 1)
    # Dropping the m-th smallest leaves the others sorted: x_(j) keeps rank j below m
    # and takes rank j − 1 above it, so with the (n−1)-sample weights w'
    #   max@k'(x_{−(m)}) = Σ_{j<m} w'_j x_(j) + Σ_{j>m} w'_{j−1} x_(j)
    # is a prefix sum plus a suffix sum: O(n) per group instead of n sorts.
    ordered, order = torch.sort(rewards.to(torch.float64), dim=-1)
    w = _max_at_k_weights(n - 1, k_loo)
    kept_rank = ordered[..., :-1] * w  # x_(j) w'_j, j = 1..n−1
    shifted_rank = ordered[..., 1:] * w  # x_(j) w'_{j−1}, j = 2..n
    zero = torch.zeros_like(ordered[..., :1])
    below = torch.cat([zero, torch.cumsum(kept_rank, -1)], -1)  # Σ_{j<m}, m = 1..n
    above = torch.cat([torch.flip(torch.cumsum(torch.flip(shifted_rank, [-1]), -1), [-1]), zero], -1)  # Σ_{j>m}
    baseline = torch.empty_like(ordered).scatter_(-1, order, below + above)
    return s - (k / n) * baseline


def passk_chain_rule_advantage(rewards: Tensor, success_prob: Tensor, k: int) -> Tensor:
    """A = k (1 − p)^{k−1} (r − p): the chain rule ∇[1 − (1 − p)^k] = k (1 − p)^{k−1} ∇p applied to the
    Dr. GRPO advantage r − p. With the exact p = E_π r it is the exact pass@k gradient
    (``population.population_passk``); with the group mean p̂ it is Mahdavi et al.'s reweighting."""
    if int(k) != k or k < 1:
        raise ValueError(f"k={k} must be a positive integer")
    return int(k) * (1.0 - success_prob) ** (int(k) - 1) * (rewards - success_prob)


def passk_reweighted_advantage(rewards: Tensor, k: int) -> Tensor:
    """Pass@k policy-gradient reweighting (Mahdavi et al., 2025, "Beyond Accuracy: A Policy Gradient
    Reweighting Approach for Pass@K Maximization in LLMs", AI4Math@ICML 2025). Source formula:
    pass@k = 1 − (1 − ρ)^k with ρ the success probability, so ∇ pass@k = k (1 − ρ)^{k−1} ∇ρ, a
    focal-loss-like weight that up-weights hard prompts. Sample form used here (plug-in ρ̂):

        A_i = k (1 − p̂)^{k−1} (r_i − p̂),   p̂ = mean_j r_j,   r_i ∈ {0, 1}.

    Binary rewards only (ρ is a success probability). The plug-in weight makes the gradient
    biased for finite groups; ``population.population_passk_reweight`` is its exact expectation.
    """
    values = _check_binary(rewards)
    if int(k) != k or k < 1:
        raise ValueError(f"k={k} must be a positive integer")
    p_hat = values.mean(-1, keepdim=True)
    return passk_chain_rule_advantage(values, p_hat, k)


# --------------------------------------------------------------------------- exact laws of the max of draws


def _pairwise_cdf(rewards: Tensor, probs: Tensor) -> tuple[Tensor, Tensor]:
    """F(r_a) and F(r_a−) under the discrete law (rewards, probs), per response (ties share their atom)."""
    below_or_equal = rewards.unsqueeze(-2) <= rewards.unsqueeze(-1)  # [a, b]: r_b <= r_a
    strictly_below = rewards.unsqueeze(-2) < rewards.unsqueeze(-1)
    p = probs.unsqueeze(-2)
    return (below_or_equal * p).sum(-1), (strictly_below * p).sum(-1)


def max_of_draws_weights(rewards: Tensor, probs: Tensor, draws: int) -> Tensor:
    """w_a with Σ_a w_a h(r_a) = E[h(M)], M the max of ``draws`` i.i.d. draws from (rewards, probs).

    P(M = u) = F(u)^d − F(u−)^d, shared among the responses of atom u in proportion to p_a.
    """
    if int(draws) != draws or draws < 1:
        raise ValueError(f"draws={draws} must be a positive integer")
    upper, lower = _pairwise_cdf(rewards, probs)
    mass = upper - lower
    atom_prob = upper ** int(draws) - lower ** int(draws)
    return torch.where(
        mass > 0, probs / torch.where(mass > 0, mass, torch.ones_like(mass)) * atom_prob, torch.zeros_like(mass)
    )


def expected_max(rewards: Tensor, probs: Tensor, draws: int) -> Tensor:
    """E[max of ``draws`` i.i.d. draws] (maxg@k of PKPO; pass@k on binary rewards), keepdim."""
    return (max_of_draws_weights(rewards, probs, draws) * rewards).sum(-1, keepdim=True)


def expected_max_with(rewards: Tensor, probs: Tensor, draws: int) -> Tensor:
    """E[max(r_a, M)] for every response a, M the max of ``draws`` other i.i.d. draws (draws = 0: r_a)."""
    if int(draws) != draws or draws < 0:
        raise ValueError(f"draws={draws} must be a non-negative integer")
    if draws == 0:
        return rewards
    w = max_of_draws_weights(rewards, probs, draws)
    # max(c, M) = M + (c − M)⁺
    shortfall = (rewards.unsqueeze(-1) - rewards.unsqueeze(-2)).clamp(min=0)  # [a, b]: (r_a − r_b)⁺
    return expected_max(rewards, probs, draws) + (shortfall * w.unsqueeze(-2)).sum(-1)

"""RiskPO bundling (Ren et al., 2025, §4.1).

B questions form a bundle block. Each question's G responses are shuffled by
an independent random permutation and the j-th shuffled response of every
question in the block goes to bundle j, giving G disjoint bundles per block.
The bundle score is the sum of its B rewards, so with binary rewards
R_B ∈ {0, …, B}: a block where one question always fails still produces
bundles of different scores, and hence a gradient.

Layout: ``rewards`` is (P, G) with prompts in block order (prompts
bB … bB+B−1 form block b). ``permutation[p, j]`` is the response of prompt p
placed in bundle j of its block.
"""

from __future__ import annotations

import torch

from .checks import check_device, check_finite, check_generator, check_rank

Tensor = torch.Tensor

__all__ = [
    "check_bundle_size",
    "random_bundle_permutation",
    "bundle_scores",
    "broadcast_to_responses",
    "bundle_ids",
    "bundle_score_law",
    "bundle_score_distribution",
]


def check_bundle_size(num_prompts: int, bundle_size: int) -> int:
    """Number of bundle blocks; a bundle size that does not divide the prompts is an error, never trimmed."""
    if int(bundle_size) != bundle_size or bundle_size < 1:
        raise ValueError(f"bundle_size={bundle_size} must be a positive integer")
    if num_prompts % bundle_size != 0:
        raise ValueError(
            f"bundle_size={bundle_size} must divide the number of prompts in the batch ({num_prompts}); "
            f"use a prompt batch that is a multiple of {bundle_size}"
        )
    return num_prompts // bundle_size


def random_bundle_permutation(
    num_prompts: int, group_size: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> Tensor:
    """One independent uniform permutation of range(G) per prompt, shape (P, G), int64."""
    if group_size < 1:
        raise ValueError(f"group_size={group_size} must be >= 1")
    check_generator("generator", generator)
    device = check_device("device", device)
    keys = torch.rand(
        num_prompts, group_size, generator=generator, device=generator.device if generator is not None else device
    )
    return torch.argsort(keys, dim=-1).to(device)


def bundle_scores(rewards: Tensor, permutation: Tensor, bundle_size: int) -> Tensor:
    """R_B[b, j] = Σ_{p in block b} rewards[p, permutation[p, j]],  (P, G) -> (P/B, G)."""
    check_finite("rewards", rewards)
    check_rank("rewards", rewards, 2)
    if permutation.shape != rewards.shape:
        raise ValueError(f"permutation {tuple(permutation.shape)} must match rewards {tuple(rewards.shape)}")
    num_blocks = check_bundle_size(rewards.shape[0], bundle_size)
    shuffled = torch.gather(rewards, 1, permutation)
    return shuffled.reshape(num_blocks, bundle_size, rewards.shape[1]).sum(1)


def broadcast_to_responses(bundle_values: Tensor, permutation: Tensor, bundle_size: int) -> Tensor:
    """Inverse of the bundling: every response gets the value of the bundle it sits in, (P/B, G) -> (P, G)."""
    num_prompts, group_size = permutation.shape
    num_blocks = check_bundle_size(num_prompts, bundle_size)
    if bundle_values.shape != (num_blocks, group_size):
        raise ValueError(f"bundle_values {tuple(bundle_values.shape)} must be {(num_blocks, group_size)}")
    per_slot = bundle_values.repeat_interleave(bundle_size, dim=0)
    out = torch.empty_like(per_slot)
    return out.scatter_(1, permutation, per_slot)


def bundle_ids(permutation: Tensor, bundle_size: int) -> Tensor:
    """Flat id (block·G + j) of the bundle that holds each response, (P, G) int64."""
    num_prompts, group_size = permutation.shape
    num_blocks = check_bundle_size(num_prompts, bundle_size)
    ids = torch.arange(num_blocks * group_size, device=permutation.device).reshape(num_blocks, group_size)
    return broadcast_to_responses(ids, permutation, bundle_size)


def bundle_score_law(level_probs: Tensor) -> Tensor:
    """Law of a bundle score Σ_b R_b for independent questions whose rewards live on a common
    grid of L equally spaced levels (RiskPO §4.1 bundling, general-reward form):

        P[Σ_b R_b = j] = (p_1 * p_2 * … * p_B)[j],   j = 0 … B(L−1)   (* = discrete convolution).

    level_probs (..., B, L) -> (..., B(L−1)+1), float64. Binary rewards (L = 2) give
    the Poisson-binomial law of ``bundle_score_distribution``.
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


def bundle_score_distribution(accuracies: Tensor) -> tuple[Tensor, Tensor]:
    """Exact law of one bundle's score for binary rewards (RiskPO §4.1 bundling):

        R_B = Σ_b Bernoulli(p_b)  (independent),   P[R_B = z], z = 0..B  (Poisson binomial).

    Each bundle draws one uniformly shuffled response per question, so with
    question accuracies p_b its score is a sum of independent Bernoulli(p_b).
    The binary case of ``bundle_score_law`` (two levels per question).
    accuracies (B,) in [0, 1] -> (values (B+1,), probs (B+1,)), float64.
    """
    check_finite("accuracies", accuracies)
    check_rank("accuracies", accuracies, 1)
    if accuracies.numel() < 1:
        raise ValueError("accuracies must name at least one question")
    p = accuracies.to(torch.float64)
    if bool(((p < 0) | (p > 1)).any()):
        raise ValueError(f"accuracies={p.tolist()} must lie in [0, 1]")
    probs = bundle_score_law(torch.stack([1 - p, p], dim=-1))
    return torch.arange(p.numel() + 1, dtype=torch.float64), probs

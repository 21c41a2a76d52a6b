"""RiskPO bundling (theory.bundles) against brute-force loops and exact counts."""

from __future__ import annotations

import itertools
from collections import Counter

import mpmath
import pytest
import torch

from theory import bundles


def chi_square_p_value(counts: Counter, cells: list, total: int) -> float:
    """Pearson χ² test against the uniform law on ``cells``; p-value from the regularised upper gamma."""
    expected = total / len(cells)
    stat = sum((counts.get(c, 0) - expected) ** 2 / expected for c in cells)
    df = len(cells) - 1
    return float(mpmath.gammainc(df / 2, stat / 2, mpmath.inf, regularized=True))


def test_each_row_is_a_permutation():
    gen = torch.Generator().manual_seed(0)
    perm = bundles.random_bundle_permutation(12, 9, gen)
    assert perm.shape == (12, 9) and perm.dtype == torch.int64
    assert torch.equal(torch.sort(perm, -1).values, torch.arange(9).expand(12, 9))


def test_permutations_are_uniform_and_independent_across_prompts():
    # Seeded, so deterministic; the 1e-4 threshold only says "a biased shuffle would fail".
    gen = torch.Generator().manual_seed(2024)
    draws = 60_000
    perm = bundles.random_bundle_permutation(2 * draws, 3, gen)
    rows = [tuple(r) for r in perm.tolist()]
    singles = list(itertools.permutations(range(3)))
    assert chi_square_p_value(Counter(rows), singles, len(rows)) > 1e-4
    # Joint law of the two prompts of a block: uniform on 6 × 6 cells iff independent and uniform.
    pairs = Counter(zip(rows[0::2], rows[1::2]))
    assert chi_square_p_value(pairs, list(itertools.product(singles, singles)), draws) > 1e-4
    # The position of response 0 of prompt 0 alone: uniform over G = 3 slots.
    slots = Counter(r.index(0) for r in rows)
    assert chi_square_p_value(slots, [0, 1, 2], len(rows)) > 1e-4
    # A constant (or reversed) permutation must be caught by the same test: sanity of the test itself.
    assert chi_square_p_value(Counter([singles[0]] * len(rows)), singles, len(rows)) < 1e-10


def test_every_bundle_takes_exactly_one_response_of_each_prompt_in_its_block():
    gen = torch.Generator().manual_seed(5)
    num_prompts, group, size = 12, 6, 4
    perm = bundles.random_bundle_permutation(num_prompts, group, gen)
    ids = bundles.bundle_ids(perm, size)
    members: dict[int, list[tuple[int, int]]] = {}
    for p in range(num_prompts):
        for r in range(group):
            members.setdefault(int(ids[p, r]), []).append((p, r))
    assert sorted(members) == list(range(num_prompts // size * group))
    for bundle_id, responses in members.items():
        block = bundle_id // group
        prompts = sorted(p for p, _ in responses)
        assert prompts == list(range(block * size, (block + 1) * size)), bundle_id


def test_bundle_scores_are_sums_and_broadcast_is_the_inverse():
    gen = torch.Generator().manual_seed(7)
    num_prompts, group, size = 15, 8, 5
    rewards = torch.randint(0, 2, (num_prompts, group), generator=gen).double() + torch.rand(
        num_prompts, group, generator=gen, dtype=torch.float64
    )
    perm = bundles.random_bundle_permutation(num_prompts, group, gen)
    scores = bundles.bundle_scores(rewards, perm, size)
    assert scores.shape == (num_prompts // size, group)
    for block in range(num_prompts // size):
        for j in range(group):
            total = sum(rewards[p, perm[p, j]].item() for p in range(block * size, (block + 1) * size))
            assert scores[block, j].item() == pytest.approx(total, abs=1e-13)
    spread = bundles.broadcast_to_responses(scores, perm, size)
    for p in range(num_prompts):
        for j in range(group):
            # Response perm[p, j] sits in bundle j of block p // size.
            assert spread[p, perm[p, j]].item() == scores[p // size, j].item()


def test_bundle_size_must_divide_the_prompts():
    rewards = torch.zeros(10, 4)
    perm = bundles.random_bundle_permutation(10, 4, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="bundle_size"):
        bundles.bundle_scores(rewards, perm, 4)
    with pytest.raises(ValueError, match="bundle_size"):
        bundles.broadcast_to_responses(torch.zeros(3, 4), perm, 3)
    with pytest.raises(ValueError, match="bundle_size"):
        bundles.check_bundle_size(10, 0)
    with pytest.raises(ValueError, match="permutation"):
        bundles.bundle_scores(rewards, perm[:, :3], 5)
    with pytest.raises(ValueError, match="rewards"):
        bundles.bundle_scores(torch.full((10, 4), float("nan")), perm, 5)


def test_bundle_score_distribution_matches_enumeration():
    accuracies = [0.1, 0.5, 0.75, 0.0]
    values, probs = bundles.bundle_score_distribution(torch.tensor(accuracies, dtype=torch.float64))
    expected = [0.0] * (len(accuracies) + 1)
    for outcome in itertools.product([0, 1], repeat=len(accuracies)):
        weight = 1.0
        for hit, p in zip(outcome, accuracies):
            weight *= p if hit else 1 - p
        expected[sum(outcome)] += weight
    assert values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert torch.allclose(probs, torch.tensor(expected, dtype=torch.float64), atol=1e-15, rtol=0)
    with pytest.raises(ValueError, match="accuracies"):
        bundles.bundle_score_distribution(torch.tensor([1.2]))

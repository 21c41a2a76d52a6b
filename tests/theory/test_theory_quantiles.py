"""QuantileTracker (RiskPO Algorithm 1): convergence, initialisation, checkpoints, all-reduce hook."""

from __future__ import annotations

import json
import math
import threading

import pytest
import torch

from theory.quantiles import QuantileTracker, fraction_below


def test_fraction_below_is_a_strict_count():
    scores = torch.tensor([0.0, 1.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    q = torch.tensor([1.0, 2.5, -1.0], dtype=torch.float64)
    assert fraction_below(q, scores).tolist() == [1 / 5, 4 / 5, 0.0]


def test_first_update_initialises_from_batch_quantiles_then_follows_the_update_rule():
    tracker = QuantileTracker((0.2, 0.8), step_size=0.5, decay=0.7)
    first = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 7.0, 6.0, 8.0, 0.0])
    q = tracker.update(first)
    # Order statistics ⌈10·0.2⌉ = 2nd and ⌈10·0.8⌉ = 8th of 0..9.
    assert q.tolist() == [1.0, 7.0]
    assert tracker.step == 0
    second = torch.tensor([0.0, 0.5, 3.0, 8.0])
    q = tracker.update(second)
    # k = 1: γ = 0.5; below 1.0: 2/4, below 7.0: 3/4.
    assert q.tolist() == pytest.approx([1.0 + 0.5 * (0.2 - 0.5), 7.0 + 0.5 * (0.8 - 0.75)], abs=1e-15)
    q = tracker.update(second)
    gamma = 0.5 / 2**0.7
    expected = [0.85 + gamma * (0.2 - 0.5), 7.025 + gamma * (0.8 - 0.75)]
    assert q.tolist() == pytest.approx(expected, abs=1e-15)
    assert tracker.current_step_size() == pytest.approx(0.5 / 3**0.7, abs=1e-15)


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_converges_to_the_true_quantile(distribution):
    levels = (0.2, 0.8)
    gen = torch.Generator().manual_seed(17)
    tracker = QuantileTracker(levels, step_size=1.0, decay=0.8)
    batch, steps = 256, 1500
    for _ in range(steps):
        u = torch.rand(batch, generator=gen, dtype=torch.float64)
        x = u if distribution == "uniform" else torch.special.ndtri(u)
        tracker.update(x)
    if distribution == "uniform":
        truth = torch.tensor(levels, dtype=torch.float64)
        density = torch.ones(2, dtype=torch.float64)
    else:
        normal = torch.distributions.Normal(0.0, 1.0)
        truth = normal.icdf(torch.tensor(levels, dtype=torch.float64))
        density = normal.log_prob(truth).exp()
    # Robbins–Monro with γ_k = 1/k^0.8: the iterate's std is about
    # sqrt(γ_k · u(1−u)/batch / (2 f(q))) ≈ sqrt(2.9e-3 · 6.3e-4 / (2·0.28)) ≈ 1.8e-3 at
    # k = 1500 for the normal (smaller for the uniform); 0.015 is > 8 such stds.
    gamma = 1.0 / steps**0.8
    std = math.sqrt(gamma * 0.16 / batch / (2 * float(density.min())))
    tol = 0.015
    assert tol > 8 * std
    assert torch.allclose(tracker.values, truth, atol=tol, rtol=0), (tracker.values, truth)


def test_state_dict_round_trip_continues_identically():
    gen = torch.Generator().manual_seed(3)
    stream = [torch.randint(0, 6, (40,), generator=gen).double() for _ in range(12)]
    original = QuantileTracker((0.1, 0.5, 0.9), step_size=0.3, decay=0.6)
    for scores in stream[:5]:
        original.update(scores)
    state = json.loads(json.dumps(original.state_dict()))  # checkpoints go through plain containers
    restored = QuantileTracker((0.1, 0.5, 0.9), step_size=0.3, decay=0.6)
    restored.load_state_dict(state)
    for scores in stream[5:]:
        assert torch.equal(original.update(scores), restored.update(scores))
    assert restored.step == original.step == 11
    assert restored.crossings == original.crossings
    with pytest.raises(ValueError, match="levels"):
        QuantileTracker((0.2, 0.8)).load_state_dict(state)


def test_reduce_mean_hook_makes_ranks_identical():
    """Two "ranks" in threads; the hook averages each statistic across them (an all-reduce mean)."""
    # A timeout (not a hang) if a rank ever stops calling the hook.
    barrier = threading.Barrier(2, timeout=20)
    slots: list[torch.Tensor | None] = [None, None]
    calls = [0, 0]

    def make_reduce(rank):
        def reduce_mean(x):
            calls[rank] += 1
            slots[rank] = x.clone()
            barrier.wait()
            result = (slots[0] + slots[1]) / 2
            barrier.wait()
            return result

        return reduce_mean

    gen = torch.Generator().manual_seed(9)
    local = [[torch.rand(64, generator=gen, dtype=torch.float64) * (1 + r) for _ in range(6)] for r in range(2)]
    trackers = [QuantileTracker((0.25, 0.75), step_size=0.2, reduce_mean=make_reduce(r)) for r in range(2)]
    history: list[list[torch.Tensor]] = [[], []]

    errors: list[BaseException] = []

    def run(rank):
        try:
            for scores in local[rank]:
                history[rank].append(trackers[rank].update(scores))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert calls == [6, 6]
    for a, b in zip(*history):
        assert torch.equal(a, b)
    # Initialisation: average of the local batch quantiles (order statistics 16 and 48 of 64).
    init = [torch.sort(local[r][0]).values[[15, 47]] for r in range(2)]
    assert torch.allclose(history[0][0], (init[0] + init[1]) / 2, atol=1e-15, rtol=0)
    # With equal local batch sizes the averaged indicator mean is the global one, so later
    # steps equal a single tracker fed the union of the local batches.
    single = QuantileTracker((0.25, 0.75), step_size=0.2, init="given", initial_values=history[0][0].tolist())
    for step in range(1, 6):
        union = torch.cat([local[0][step], local[1][step]])
        assert torch.allclose(single.update(union), history[0][step], atol=1e-15, rtol=0)


def test_crossing_quantiles_follow_the_papers_rule_and_are_counted():
    """Algorithm 1 updates each level on its own; the tracker keeps those iterates (no swap) and counts crossings."""
    tracker = QuantileTracker((0.2, 0.8), step_size=1.0, init="given", initial_values=[0.0, 0.1])
    q = tracker.update(torch.full((10,), 0.05))
    # Paper's rule: 0.0 + (0.2 − 0) = 0.2 and 0.1 + (0.8 − 1) = −0.1, which cross and stay as they are.
    assert q.tolist() == pytest.approx([0.2, -0.1], abs=1e-15)
    assert tracker.ordered().tolist() == pytest.approx([-0.1, 0.2], abs=1e-15)
    assert tracker.crossings == 1
    # Next step from the crossed iterates (not from a swapped pair): all scores above both.
    q = tracker.update(torch.full((10,), 100.0))
    assert q.tolist() == pytest.approx([0.2 + 0.2, -0.1 + 0.8], abs=1e-15)
    assert tracker.crossings == 1  # back in order


def test_riskpo_uses_the_ordered_pair_when_the_tracker_crosses():
    from theory import get_estimator
    from theory.advantages import mvar_advantage_from_quantiles

    est = get_estimator("riskpo", bundle_size=1, tracker_step_size=1.0)
    est.tracker = QuantileTracker((0.2, 0.8), step_size=1.0, init="given", initial_values=[0.0, 0.1])
    rewards = torch.full((1, 10), 0.05, dtype=torch.float64)
    out = est(rewards)
    expected = mvar_advantage_from_quantiles(
        rewards, torch.tensor(-0.1, dtype=torch.float64), torch.tensor(0.2, dtype=torch.float64), 0.5
    )
    torch.testing.assert_close(out.advantages, expected, rtol=0, atol=1e-15)
    assert out.metrics["q_alpha"] == pytest.approx(-0.1) and out.metrics["quantile_crossings"] == 1.0


def test_bad_input_raises_value_errors_naming_the_field():
    with pytest.raises(ValueError, match="levels"):
        QuantileTracker((0.8, 0.2))
    with pytest.raises(ValueError, match="levels"):
        QuantileTracker((0.2, 1.2))
    with pytest.raises(ValueError, match="levels"):
        QuantileTracker(())
    with pytest.raises(ValueError, match="step_size"):
        QuantileTracker(step_size=0.0)
    with pytest.raises(ValueError, match="step_size=inf must be finite"):
        QuantileTracker(step_size=float("inf"))
    with pytest.raises(ValueError, match="decay"):
        QuantileTracker(decay=float("nan"))
    with pytest.raises(ValueError, match="decay"):
        QuantileTracker(decay=-0.5)
    with pytest.raises(ValueError, match="init"):
        QuantileTracker(init="zeros")
    with pytest.raises(ValueError, match="initial_values"):
        QuantileTracker(init="given")
    tracker = QuantileTracker()
    with pytest.raises(ValueError, match="scores"):
        tracker.update(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="scores"):
        tracker.update(torch.tensor([]))

"""The batched quantile tracker and the tensor-β RS-GRPO advantage against their scalar versions.

Both batched forms must give, row by row, exactly what the scalar implementation gives on that
row (bit for bit: the same float64 operations in the same order), over random streams, levels,
step-size schedules and β values including 0 and large β.
"""

from __future__ import annotations

import pytest
import torch

from theory.advantages import rs_grpo, rs_grpo_batched
from theory.quantiles import BatchedQuantileTracker, QuantileTracker


@pytest.mark.parametrize("decay", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("init", ["batch", "given"])
def test_batched_tracker_equals_one_scalar_tracker_per_row(decay, init):
    g = torch.Generator().manual_seed(3)
    levels = [(0.2, 0.8), (0.1, 0.5), (0.3, 0.9), (0.05, 0.95)]
    start = [(1.0, 3.0), (0.0, 0.0), (2.5, 1.0), (4.0, 5.0)]  # (2.5, 1.0): starts crossed
    given = dict(init="given", initial_values=start) if init == "given" else {}
    batched = BatchedQuantileTracker(4, levels, step_size=0.3, decay=decay, **given)
    singles = [
        QuantileTracker(lv, step_size=0.3, decay=decay, init=init, initial_values=start[r] if init == "given" else None)
        for r, lv in enumerate(levels)
    ]
    for _ in range(80):
        scores = torch.randint(0, 6, (4, 10), generator=g).to(torch.float64)  # discrete: ties, crossings
        out = batched.update(scores)
        for r, tracker in enumerate(singles):
            tracker.update(scores[r])
        assert torch.equal(out, torch.stack([t.values for t in singles]))
    assert batched.crossings.tolist() == [t.crossings for t in singles]
    assert torch.equal(batched.ordered(), torch.stack([t.ordered() for t in singles]))
    assert batched.current_step_size() == singles[0].current_step_size()


def test_batched_tracker_first_batch_is_the_empirical_quantile_of_each_row():
    from theory.risk_measures import empirical_quantile

    g = torch.Generator().manual_seed(0)
    scores = torch.rand(6, 7, generator=g, dtype=torch.float64)
    tracker = BatchedQuantileTracker(6, (0.0, 0.3, 1.0))
    out = tracker.update(scores)
    for r in range(6):
        expected = [empirical_quantile(scores[r], u) for u in (0.0, 0.3, 1.0)]
        assert out[r].tolist() == [float(v) for v in expected]


def test_batched_tracker_state_round_trip_and_bad_input():
    tracker = BatchedQuantileTracker(2, (0.2, 0.8))
    tracker.update(torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]))
    tracker.update(torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]))
    other = BatchedQuantileTracker(2, (0.2, 0.8))
    other.load_state_dict(tracker.state_dict())
    assert torch.equal(other.values, tracker.values) and other.step == tracker.step == 1
    with pytest.raises(ValueError, match="levels"):
        BatchedQuantileTracker(2, (0.2, 0.9)).load_state_dict(tracker.state_dict())
    with pytest.raises(ValueError, match="scores must have shape"):
        tracker.update(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="runs"):
        BatchedQuantileTracker(True)
    with pytest.raises(ValueError, match="strictly increasing"):
        BatchedQuantileTracker(2, (0.8, 0.2))
    with pytest.raises(ValueError, match="initial_values"):
        BatchedQuantileTracker(2, (0.2, 0.8), init="given", initial_values=[1.0, float("inf")])
    state = tracker.state_dict()
    state["values"] = [[0.0, float("nan")], [0.0, 1.0]]
    with pytest.raises(ValueError, match="values"):
        other.load_state_dict(state)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rs_grpo_batched_equals_rs_grpo_per_beta(dtype):
    g = torch.Generator().manual_seed(1)
    betas = torch.tensor([0.0, 1e-9, 0.25, 2.0, 16.0, 300.0, -1.5])
    rewards = torch.rand(len(betas), 5, 8, generator=g).to(dtype)
    rewards[0, 0] = 1.0  # an all-equal group: exactly 0 for every β
    out = rs_grpo_batched(rewards, betas.view(-1, 1))
    for e, beta in enumerate(betas.tolist()):
        expected = rs_grpo(rewards[e], beta)
        assert torch.equal(out[e], expected), (beta, (out[e] - expected).abs().max())
    assert torch.equal(out[0, 0], torch.zeros(8, dtype=dtype))
    # One β per group (full leading shape), and a scalar tensor.
    per_group = torch.rand(len(betas), 5, generator=g) * 4
    out = rs_grpo_batched(rewards, per_group)
    assert torch.equal(out[3, 2], rs_grpo(rewards[3, 2], float(per_group[3, 2])))
    assert torch.equal(rs_grpo_batched(rewards, torch.tensor(2.0)), rs_grpo(rewards, 2.0))


def test_rs_grpo_batched_rejects_bad_beta():
    rewards = torch.rand(3, 4)
    with pytest.raises(ValueError, match="beta must be a tensor"):
        rs_grpo_batched(rewards, 2.0)
    with pytest.raises(ValueError, match="beta"):
        rs_grpo_batched(rewards, torch.tensor([1.0, float("nan"), 2.0]).view(3))
    with pytest.raises(ValueError, match="broadcast"):
        rs_grpo_batched(rewards, torch.ones(5))

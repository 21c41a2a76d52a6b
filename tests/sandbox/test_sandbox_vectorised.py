"""The vectorised simulators reproduce the pre-vectorisation ones (tests/sandbox_reference.py).

The old code drew arms with one ``torch.multinomial`` and one generator per estimator, called
each estimator separately (per seed when stateful), stepped with an inline Adam or θ + ηg, and
computed the risk metrics estimator by estimator. The new code shares one uniform stream,
samples by inverse CDF, batches every RS-GRPO β into one call, and steps with torch.optim.
Sampling is bit-identical, so trajectories may differ only by float rounding: the tolerances
below (1e-12 on quantities of order 1) leave a factor ~10³ over the ~1e-15 differences seen,
and a single differently-sampled arm would move a metric by far more than that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sandbox_reference import reference_bandit, reference_tabular

from sandbox import BanditConfig, TabularConfig, run_bandit, run_tabular
from sandbox.common import RunAdvantages, sample_actions, single_thread
from sandbox.tabular import METRIC_COLUMNS
from theory import get_estimator, list_estimators

SILENT = lambda fraction: None  # noqa: E731
TOL = 1e-12


def _assert_frames_close(reference, new, columns):
    assert list(reference.estimator) == list(new.estimator)
    assert list(reference.step) == list(new.step)
    for col in columns:
        ref, got = reference[col].to_numpy(), new[col].to_numpy()
        np.testing.assert_array_equal(np.isnan(ref), np.isnan(got), err_msg=col)
        np.testing.assert_allclose(got[~np.isnan(got)], ref[~np.isnan(ref)], rtol=0, atol=TOL, err_msg=col)


def test_inverse_cdf_sampling_is_torch_multinomial_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    for trial in range(50):
        k = int(torch.randint(2, 130, (1,), generator=gen))
        rows, n = int(torch.randint(1, 9, (1,), generator=gen)), int(torch.randint(2, 20, (1,), generator=gen))
        # peaked rows (tiny probabilities, sums off 1 by rounding) are where a sloppy CDF would differ
        probs = torch.softmax(8 * torch.randn(rows, k, generator=gen, dtype=torch.float64), -1)
        g1, g2 = torch.Generator().manual_seed(trial), torch.Generator().manual_seed(trial)
        expected = torch.multinomial(probs, n, replacement=True, generator=g1)
        got = sample_actions(probs, torch.rand(rows, n, generator=g2, dtype=torch.float64))
        assert torch.equal(expected, got)
        assert torch.equal(g1.get_state(), g2.get_state())  # same number of draws consumed


def test_sample_actions_broadcasts_uniforms_over_estimators():
    probs = torch.softmax(torch.randn(3, 2, 10, dtype=torch.float64), -1)  # (E, S, K)
    u = torch.rand(2, 5, dtype=torch.float64)
    together = sample_actions(probs, u)
    for e in range(3):
        assert torch.equal(together[e], sample_actions(probs[e], u))


def test_batched_rs_grpo_equals_one_call_per_beta():
    # theory.advantages.rs_grpo_batched: one call for every β, each row exactly what rs_grpo gives for its β.
    rs = [("rs_grpo", {"beta": b}) for b in (0.0, 0.5, 2.0, -3.0, 64.0)]
    for specs in (rs + [("grpo", {})], rs[:2] + [("grpo", {})] + rs[2:]):  # RS-GRPO rows contiguous or not
        rewards = torch.rand(len(specs), 3, 4, 16, dtype=torch.float64)
        adv, quantiles = RunAdvantages(specs, 3, seed=0)(rewards)
        for e, (name, params) in enumerate(specs):
            expected = get_estimator(name, **params)(rewards[e].reshape(-1, 16)).advantages.reshape(3, 4, 16)
            assert torch.equal(adv[e], expected), (name, params)
        assert torch.isnan(quantiles).all()


BANDIT_CASES = [
    (
        dict(rewards=[0.2, 0.5, 0.9, 0.3], batch_size=8, steps=60, reward_noise="bernoulli"),
        [
            "grpo",
            ("rs_grpo", {"beta": 0.0}),
            ("rs_grpo", {"beta": 4.0}),
            ("rs_grpo", {"beta": -2.0}),
            ("riskpo", {"bundle_size": 1}),
            ("passk_chen", {"k": 4}),
        ],
        3,
    ),
    (
        dict(rewards=[0.2, 0.5, 0.9, 0.3], batch_size=6, steps=60, reward_noise="gaussian", optimizer="adam", lr=0.05),
        ["dr_grpo", ("rs_grpo", {"beta": 4.0}), ("cvar", {"quantile_source": "batch", "bundle_size": 1})],
        2,
    ),
    (
        dict(rewards=[1.0, 0.8, 0.0], init_logits=[-3.0, 0.0, -3.0], steps=150, lr=0.5),
        ["grpo", ("rs_grpo", {"beta": 4.0}), "riskpo", "cvar"],
        1,
    ),
    (
        dict(
            rewards=[1.0, 0.8, 0.0],
            init_logits=[-3.0, 0.0, -3.0],
            steps=150,
            lr=0.5,
            optimizer="natural",
            reward_noise="bernoulli",
        ),
        ["grpo", ("rs_grpo", {"beta": 4.0}), "rvar"],
        1,
    ),
    (
        dict(rewards=[1.0, 0.8, 0.0], init_logits=[-3.0, 0.0, -3.0], steps=150, lr=0.1, optimizer="adam"),
        ["dr_grpo", ("rs_grpo", {"beta": 8.0})],
        1,
    ),
]


@pytest.mark.parametrize("kwargs, estimators, seeds", BANDIT_CASES)
def test_bandit_reproduces_the_reference_simulator(kwargs, estimators, seeds):
    config = BanditConfig(**kwargs)
    with single_thread():
        reference, _ = reference_bandit(config, estimators, seeds)
    new = run_bandit(config, estimators, seeds=seeds, progress=SILENT).metrics
    _assert_frames_close(reference, new, ["expected_reward", "entropy", "prob_best"])


def test_bandit_reproduces_the_reference_on_the_100_arm_sweep():
    config = BanditConfig.rs_grpo_paper(steps=400)
    specs = [("rs_grpo", {"beta": float(b)}) for b in (0, 2, 16, 64)]
    with single_thread():
        reference, _ = reference_bandit(config, specs, 2)
    _assert_frames_close(
        reference,
        run_bandit(config, specs, seeds=2, progress=SILENT).metrics,
        ["expected_reward", "entropy", "prob_best"],
    )


TABULAR_CASES = [
    (dict(steps=12), [(name, {}) for name in list_estimators()], 2),
    (
        dict(steps=12, clip_eps=0.2, ppo_epochs=3, reward_type="graded", metric_bundle_size=4),
        [("grpo", {}), ("riskpo", {"bundle_size": 5}), ("rs_grpo", {"beta": 4.0}), ("rs_grpo", {"beta": 0.0})],
        3,
    ),
    (
        dict(steps=12, num_prompts=20, difficulty="hard", lr=1.0),
        [("riskpo", {"bundle_size": b}) for b in (1, 2, 5, 10)] + [("cvar", {"quantile_source": "batch"})],
        2,
    ),
]


@pytest.mark.parametrize("kwargs, estimators, seeds", TABULAR_CASES)
def test_tabular_reproduces_the_reference_simulator(kwargs, estimators, seeds):
    config = TabularConfig(**kwargs)
    with single_thread():
        reference = reference_tabular(config, estimators, seeds)
    _assert_frames_close(
        reference, run_tabular(config, estimators, seeds=seeds, progress=SILENT).metrics, METRIC_COLUMNS
    )


BAND_SPECS = [
    ("riskpo", {"bundle_size": 4}),
    ("riskpo_seeking", {"bundle_size": 2}),
    ("riskpo_centred", {"bundle_size": 4}),
    ("rvar", {"quantile_source": "tracker"}),
    ("grpo", {}),
]


def _scalar_band_path(monkeypatch):
    """Every RiskPO-family run through its own ``compute`` again (the path before BandRuns)."""
    from theory.band_runs import BandRuns

    monkeypatch.setattr(BandRuns, "supports", staticmethod(lambda estimator: False))


@pytest.mark.parametrize("reward_type", ["binary", "graded"])
def test_tabular_band_runs_batched_over_seeds_are_bit_identical_to_one_tracker_per_run(monkeypatch, reward_type):
    config = TabularConfig(num_prompts=8, responses_per_prompt=6, group_size=6, steps=15, reward_type=reward_type)
    assert len(RunAdvantages(BAND_SPECS, 3, seed=config.seed).band_runs) == 4  # the batched path is the one tested
    batched = run_tabular(config, BAND_SPECS, seeds=3, progress=SILENT).metrics
    _scalar_band_path(monkeypatch)
    assert RunAdvantages(BAND_SPECS, 3, seed=config.seed).band_runs == {}
    scalar = run_tabular(config, BAND_SPECS, seeds=3, progress=SILENT).metrics
    pd.testing.assert_frame_equal(batched, scalar, check_exact=True)


def test_sampled_bandit_band_runs_batched_over_seeds_are_bit_identical(monkeypatch):
    config = BanditConfig.three_arm(steps=40, batch_size=8, reward_noise="bernoulli")
    specs = [("riskpo", {"bundle_size": 1}), ("riskpo_seeking", {"bundle_size": 1}), ("grpo", {})]
    batched = run_bandit(config, specs, seeds=3, progress=SILENT)
    _scalar_band_path(monkeypatch)
    scalar = run_bandit(config, specs, seeds=3, progress=SILENT)
    pd.testing.assert_frame_equal(batched.metrics, scalar.metrics, check_exact=True)
    pd.testing.assert_frame_equal(batched.policy, scalar.policy, check_exact=True)


def test_long_bandit_run_reports_progress_monotonically_to_one():
    fractions = []
    run_bandit(BanditConfig.rs_grpo_paper(steps=1000), [("rs_grpo", {"beta": 8.0})], seeds=1, progress=fractions.append)
    assert 100 <= len(fractions) <= 101 and fractions[-1] == 1.0
    assert all(a < b for a, b in zip(fractions, fractions[1:]))


def test_tabular_passk_grid_logs_every_k_of_the_same_run():
    from sandbox import TabularConfig, run_tabular

    specs = ["grpo", ("rs_grpo", {"beta": 4.0})]
    grid = (1, 3, 16, 256)
    together = run_tabular(TabularConfig(num_prompts=10, steps=12, k=8, passk_grid=grid), specs, seeds=2).metrics
    for k in grid:
        alone = run_tabular(TabularConfig(num_prompts=10, steps=12, k=k), specs, seeds=2).metrics
        # k only selects what is logged: the runs are identical and the column is the k-run's pass@k.
        assert together[f"pass_at_k_{k}"].to_numpy().tolist() == alone["pass_at_k"].to_numpy().tolist()
        assert together["entropy"].to_numpy().tolist() == alone["entropy"].to_numpy().tolist()
    with pytest.raises(ValueError, match=r"passk_grid\[1\]"):
        TabularConfig(passk_grid=(2, 0))
    with pytest.raises(ValueError, match="passk_grid"):
        TabularConfig(passk_grid=[2, 4])

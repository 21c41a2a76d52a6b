"""The simulators agree with theory/ and with independent hand computations."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from sandbox import BanditConfig, TabularConfig, run_bandit, run_tabular
from sandbox.tabular import clipped_loss, make_problem, policy_step
from theory import risk_measures as rm
from theory.bundles import bundle_score_law
from theory.passk import exact_pass_at_k
from theory.updates import ascent_optimizer

SILENT = lambda fraction: None  # noqa: E731  (progress callback that also silences tqdm)


def _update(config, logits, responses, adv):
    """policy_step on a copy of ``logits`` with a fresh SGD optimizer (a functional form for tests)."""
    logits = logits.clone()
    policy_step(config, logits, responses, adv, ascent_optimizer("sgd", logits, config.lr))
    return logits


def _policy_at(result, label, step):
    part = result.policy[(result.policy.estimator == label) & (result.policy.step == step)].sort_values("arm")
    return part.prob.to_numpy()


# --------------------------------------------------------------------------- bandit


def test_exact_bandit_step_is_softmax_policy_gradient_step():
    # One exact dr_grpo step: θ' = θ + η π ⊙ (r − E_π r), written out by hand here.
    lr = 0.7
    cfg = BanditConfig.three_arm(steps=1, lr=lr)
    res = run_bandit(cfg, [("dr_grpo", {})], seeds=1, progress=SILENT)
    theta = np.log([0.05, 0.9, 0.05])
    r = np.array([1.0, 0.8, 0.0])
    pi = np.exp(theta) / np.exp(theta).sum()
    theta_new = theta + lr * pi * (r - pi @ r)
    expected = np.exp(theta_new) / np.exp(theta_new).sum()
    # float64 softmax of the same numbers: agreement to round-off.
    np.testing.assert_allclose(_policy_at(res, "dr_grpo", 1), expected, rtol=0, atol=1e-14)
    row = res.metrics[res.metrics.step == 1].iloc[0]
    assert row.expected_reward == pytest.approx(expected @ r, abs=1e-14)
    assert row.prob_best == pytest.approx(expected[0], abs=1e-14)
    assert row.entropy == pytest.approx(-(expected * np.log(expected)).sum(), abs=1e-14)


def test_natural_step_adds_advantage_to_logits():
    cfg = BanditConfig.three_arm(steps=1, lr=0.3, optimizer="natural")
    res = run_bandit(cfg, [("dr_grpo", {})], seeds=1, progress=SILENT)
    theta = np.log([0.05, 0.9, 0.05])
    r = np.array([1.0, 0.8, 0.0])
    theta_new = theta + 0.3 * (r - np.array([0.05, 0.9, 0.05]) @ r)
    np.testing.assert_allclose(_policy_at(res, "dr_grpo", 1), np.exp(theta_new) / np.exp(theta_new).sum(), atol=1e-14)


def test_bernoulli_exact_update_matches_deterministic_for_linear_advantage():
    # Dr. GRPO's advantage is linear in r, so E over Bernoulli outcomes equals using the means:
    # the two exact trajectories must coincide (checks the outcome/fold-back bookkeeping).
    kwargs = dict(rewards=[0.9, 0.5, 0.2, 0.7], init_logits=[0.0, 1.0, -0.5, 0.3], batch_size=None, lr=0.5, steps=30)
    det = run_bandit(BanditConfig(**kwargs), [("dr_grpo", {})], seeds=1, progress=SILENT)
    ber = run_bandit(BanditConfig(reward_noise="bernoulli", **kwargs), [("dr_grpo", {})], seeds=1, progress=SILENT)
    np.testing.assert_allclose(det.metrics.expected_reward, ber.metrics.expected_reward, atol=1e-13)


def test_bernoulli_exact_update_is_not_the_mean_reward_update_for_rs_grpo():
    # RS-GRPO's advantage is non-linear in r: the Bernoulli outcome law must change the step.
    kwargs = dict(rewards=[0.9, 0.5, 0.2], init_logits=[0.0, 1.0, -0.5], batch_size=None, lr=0.5, steps=5)
    det = run_bandit(BanditConfig(**kwargs), [("rs_grpo", {"beta": 4.0})], seeds=1, progress=SILENT)
    ber = run_bandit(
        BanditConfig(reward_noise="bernoulli", **kwargs), [("rs_grpo", {"beta": 4.0})], seeds=1, progress=SILENT
    )
    assert abs(det.metrics.expected_reward.iloc[-1] - ber.metrics.expected_reward.iloc[-1]) > 1e-4


def test_sampled_updates_average_to_exact_update():
    # For Dr. GRPO with a batch of N, E[(1/N) Σ (r_i − r̄)(e_{a_i} − π)] = (N−1)/N · ∇E_π r
    # (the batch mean includes r_i itself). With a tiny η the one-step probability change is
    # linear in the gradient up to O(η²) ~ 1e-8, far below the Monte-Carlo error.
    lr, n, seeds = 1e-3, 4, 20000
    base = dict(rewards=[1.0, 0.3, 0.0], init_logits=[0.0, 0.5, 0.2], lr=lr, steps=1, policy_snapshots=1)
    exact = run_bandit(BanditConfig(batch_size=None, **base), [("dr_grpo", {})], seeds=1, progress=SILENT)
    sampled = run_bandit(BanditConfig(batch_size=n, **base), [("dr_grpo", {})], seeds=seeds, progress=SILENT)
    p0 = _policy_at(exact, "dr_grpo", 0)
    exact_change = _policy_at(exact, "dr_grpo", 1) - p0
    mean_change = _policy_at(sampled, "dr_grpo", 1) - p0
    per_seed = sampled.metrics[sampled.metrics.step == 1].prob_best.to_numpy() - p0[0]
    standard_error = per_seed.std(ddof=1) / math.sqrt(seeds)
    # 4 standard errors: a false alarm has probability ~6e-5.
    assert abs(mean_change[0] - (n - 1) / n * exact_change[0]) < 4 * standard_error
    assert abs(mean_change[0] - exact_change[0]) > 0.5 * abs(exact_change[0]) / n  # the (N−1)/N factor is visible


def test_bandit_vectorised_runs_are_independent_of_each_other():
    # Running two estimators together must give each the same trajectory as running it alone
    # with exact updates (no cross-talk between rows of the batched logits).
    cfg = BanditConfig.three_arm(steps=20)
    both = run_bandit(cfg, [("dr_grpo", {}), ("rs_grpo", {"beta": 8.0})], seeds=2, progress=SILENT)
    alone = run_bandit(cfg, [("rs_grpo", {"beta": 8.0})], seeds=2, progress=SILENT)
    a = both.metrics[both.metrics.estimator == "rs_grpo(beta=8)"].expected_reward.to_numpy()
    np.testing.assert_allclose(a, alone.metrics.expected_reward.to_numpy(), atol=1e-15)


def test_bandit_result_frames_have_the_documented_columns():
    res = run_bandit(
        BanditConfig(rewards=[0.1, 0.5, 0.9], batch_size=4, steps=5),
        ["grpo", ("rs_grpo", {"beta": 2})],
        seeds=3,
        progress=SILENT,
    )
    assert list(res.metrics.columns) == ["estimator", "seed", "step", "expected_reward", "entropy", "prob_best"]
    assert list(res.policy.columns) == ["estimator", "step", "arm", "prob"]
    assert len(res.metrics) == 2 * 3 * 6
    sums = res.policy.groupby(["estimator", "step"]).prob.sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(lr=-1.0), "lr"),
        (dict(rewards=[1.0]), "rewards"),
        (dict(rewards=[0.5, 1.5], reward_noise="bernoulli"), "bernoulli"),
        (dict(reward_noise="gaussian", batch_size=None), "gaussian"),
        (dict(batch_size=1), "batch_size"),
        (dict(optimizer="natural", batch_size=8), "natural"),
        (dict(init_logits=[0.0, 1.0]), "init_logits"),
        (dict(steps=0), "steps"),
        (dict(optimizer="rmsprop"), "optimizer"),
    ],
)
def test_bandit_config_rejects_bad_fields(kwargs, field):
    with pytest.raises(ValueError, match=field):
        BanditConfig(**kwargs)


def test_bandit_rejects_unknown_estimator_and_bundles():
    with pytest.raises(ValueError, match="unknown estimator"):
        run_bandit(BanditConfig(), [("nope", {})], seeds=1)
    with pytest.raises(ValueError, match="bundle_size"):
        run_bandit(BanditConfig(batch_size=8), [("riskpo", {"bundle_size": 2})], seeds=1, progress=SILENT)
    with pytest.raises(ValueError, match="no exact population form"):
        run_bandit(BanditConfig(batch_size=None), [("passk_loo_max", {})], seeds=1, progress=SILENT)


# --------------------------------------------------------------------------- tabular


def test_bundle_score_law_matches_brute_force_enumeration():
    rng = np.random.default_rng(0)
    level_probs = rng.dirichlet(np.ones(5), size=3)  # 3 questions, graded rewards on 5 levels
    brute = np.zeros(13)
    for combo in itertools.product(range(5), repeat=3):
        brute[sum(combo)] += np.prod([level_probs[q, lvl] for q, lvl in enumerate(combo)])
    np.testing.assert_allclose(bundle_score_law(torch.tensor(level_probs)).numpy(), brute, atol=1e-15)


def test_tabular_step0_metrics_match_independent_computation():
    cfg = TabularConfig(num_prompts=8, responses_per_prompt=6, group_size=4, steps=1, k=5, peak=2.0)
    res = run_tabular(cfg, [("grpo", {})], seeds=2, progress=SILENT)
    for seed in range(2):
        rewards, logits = (t.numpy() for t in make_problem(cfg, seed))
        pi = np.exp(logits - logits.max(1, keepdims=True))
        pi /= pi.sum(1, keepdims=True)
        p = (pi * (rewards > 0)).sum(1)
        row = res.metrics[(res.metrics.step == 0) & (res.metrics.seed == seed)].iloc[0]
        assert row.pass_at_1 == pytest.approx(p.mean(), abs=1e-14)
        assert row.pass_at_k == pytest.approx((1 - (1 - p) ** 5).mean(), abs=1e-14)
        assert row.entropy == pytest.approx(-(pi * np.log(pi)).sum(1).mean(), abs=1e-12)
        # B = 1: the bundle score is one question's reward, pooled over prompts.
        values = np.array([0.0, 1.0])
        law = np.stack([(1 - p), p], 1).mean(0)
        expected_cvar = rm.cvar(torch.tensor(values), torch.tensor(law), 0.2)
        assert row.cvar == pytest.approx(float(expected_cvar), abs=1e-12)


def test_tabular_pooled_bundle_risk_with_bundles_of_two():
    cfg = TabularConfig(num_prompts=4, responses_per_prompt=5, group_size=4, steps=1, metric_bundle_size=2)
    res = run_tabular(cfg, [("grpo", {})], seeds=1, progress=SILENT)
    rewards, logits = (t.numpy() for t in make_problem(cfg, 0))
    pi = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    p = (pi * rewards).sum(1)
    # Blocks (0,1) and (2,3); per-question score R_B/2 ∈ {0, .5, 1}; pooled mixture of the two blocks.
    laws = [np.array([(1 - a) * (1 - b), a * (1 - b) + (1 - a) * b, a * b]) for a, b in ((p[0], p[1]), (p[2], p[3]))]
    law = (laws[0] + laws[1]) / 2
    values = torch.tensor([0.0, 0.5, 1.0])
    row = res.metrics[res.metrics.step == 0].iloc[0]
    assert row.mvar == pytest.approx(float(rm.mvar(values, torch.tensor(law), 0.2, 0.8, 0.5)), abs=1e-12)
    assert row.rvar_lower == pytest.approx(float(rm.rvar(values, torch.tensor(law), 0.2, 0.8)), abs=1e-12)


def test_first_clipped_epoch_equals_plain_policy_gradient_step():
    # At the first PPO epoch the ratio is 1, so the clipped surrogate's autograd gradient must equal
    # the closed-form score-function step of the plain update.
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 7, generator=gen, dtype=torch.float64)
    responses = torch.randint(0, 7, (2, 3, 4, 5), generator=gen)
    adv = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    plain = _update(TabularConfig(lr=0.3), logits, responses, adv)
    clipped = _update(TabularConfig(lr=0.3, clip_eps=0.2, ppo_epochs=1), logits, responses, adv)
    torch.testing.assert_close(plain, clipped, rtol=0, atol=1e-14)


def test_clipping_limits_the_ratio_move():
    # One response sampled twice with A = 1: once its ratio exceeds 1 + ε the clipped surrogate
    # has zero gradient, so the ratio stops within one step of 1 + ε; the plain update keeps going.
    logits = torch.zeros(1, 1, 1, 5, dtype=torch.float64)
    responses = torch.tensor([[[[0, 0]]]])
    adv = torch.ones(1, 1, 1, 2, dtype=torch.float64)
    lr, eps = 0.2, 0.2
    clipped = _update(TabularConfig(lr=lr, clip_eps=eps, ppo_epochs=30), logits, responses, adv)
    ratio = float(torch.softmax(clipped, -1)[..., 0] / 0.2)
    plain = logits
    for _ in range(30):
        plain = _update(TabularConfig(lr=lr), plain, responses, adv)
    # One step moves logit 0 by at most lr·(1 − π₀) <= 0.2, i.e. the ratio by a factor <= e^0.2:
    # the clipped ratio ends in (1 + ε, (1 + ε)·e^0.2].
    assert 1 + eps < ratio <= (1 + eps) * math.exp(lr)
    assert float(torch.softmax(plain, -1)[..., 0] / 0.2) > 2.0


def test_tabular_clipped_step_and_trainer_loss_agree_on_the_same_logprobs_and_advantages():
    # One update rule: the tabular clipped loss and llm.loss.policy_loss (the trainer's) on the
    # same sampled log-probs, old log-probs and advantages give the same loss and the same gradient
    # w.r.t. the tabular logits; both also equal the PPO formula written out here. Old log-probs come
    # from perturbed logits so that ratios spread over [0.5, 2] and both clip branches are active.
    from llm.loss import policy_loss

    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 4, 7, generator=gen, dtype=torch.float64)
    responses = torch.randint(0, 7, (2, 3, 4, 5), generator=gen)
    adv = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    old = torch.gather(
        torch.log_softmax(logits + 0.5 * torch.randn(logits.shape, generator=gen, dtype=torch.float64), -1),
        -1,
        responses,
    )
    eps, g = 0.2, responses.shape[-1]
    config = TabularConfig(clip_eps=eps)

    theta = logits.clone().requires_grad_(True)
    tab_loss = clipped_loss(config, theta, responses, old, adv)
    (tab_grad,) = torch.autograd.grad(tab_loss, theta)

    theta = logits.clone().requires_grad_(True)
    logprobs = torch.gather(torch.log_softmax(theta, -1), -1, responses).reshape(-1, 1)  # one-token sequences
    trainer_loss, stats = policy_loss(
        logprobs,
        old.reshape(-1, 1),
        adv.reshape(-1),
        torch.ones_like(logprobs),
        clip_eps_low=eps,
        clip_eps_high=eps,
        importance_ratio="sequence",
        loss_agg="seq-mean-token-sum",
        num_sequences=g,
    )
    (trainer_grad,) = torch.autograd.grad(trainer_loss, theta)

    ratio = torch.exp(torch.gather(torch.log_softmax(logits, -1), -1, responses) - old)
    by_hand = -torch.minimum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv).sum() / g
    assert 0.1 < float(stats["clip_frac"]) < 0.9  # both branches exercised
    # the same float64 operations in the same order: agreement to round-off
    torch.testing.assert_close(tab_loss, trainer_loss, rtol=0, atol=1e-14)
    torch.testing.assert_close(tab_loss, by_hand, rtol=0, atol=1e-13)
    torch.testing.assert_close(tab_grad, trainer_grad, rtol=0, atol=1e-14)
    assert float(tab_grad.abs().max()) > 0.01  # a real gradient, not two zeros


def test_grpo_gives_zero_advantage_on_all_fail_prompts_and_bundles_do_not():
    cfg = TabularConfig(num_prompts=20, difficulty="hard", correctness_correlation=0.0, steps=3)
    res = run_tabular(cfg, [("grpo", {}), ("riskpo", {"bundle_size": 5})], seeds=2, progress=SILENT)
    by = res.metrics.groupby("estimator")
    assert by.allfail_nonzero_adv.max()["grpo"] == 0.0
    assert by.allfail_varied_adv.mean()["riskpo(bundle_size=5)"] > 0.5


def test_tabular_results_are_json_friendly_and_seeded():
    cfg = TabularConfig(num_prompts=10, steps=4)
    a = run_tabular(cfg, [("riskpo", {"bundle_size": 5})], seeds=2, progress=SILENT)
    b = run_tabular(cfg, [("riskpo", {"bundle_size": 5})], seeds=2, progress=SILENT)
    assert a.metrics.equals(b.metrics)  # same seed, same numbers
    json.dumps(a.config)
    assert {"q_alpha", "q_beta"} <= set(a.metrics.columns)
    assert a.metrics.q_alpha.notna().all()


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(correctness_correlation=1.5), "correctness_correlation"),
        (dict(group_size=1), "group_size"),
        (dict(difficulty="medium"), "difficulty"),
        (dict(reward_type="float"), "reward_type"),
        (dict(clip_eps=0.0), "clip_eps"),
        (dict(clip_eps=1.0), "clip_eps"),
        (dict(risk_alpha=0.9, risk_beta=0.5), "risk_alpha"),
        (dict(num_prompts=10, metric_bundle_size=3), "metric_bundle_size"),
        (dict(peak=-1.0), "peak"),
    ],
)
def test_tabular_config_rejects_bad_fields(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TabularConfig(**kwargs)


def test_tabular_bundle_size_must_divide_prompts():
    with pytest.raises(ValueError, match="bundle_size=3 must divide num_prompts=10"):
        run_tabular(TabularConfig(num_prompts=10, steps=1), [("riskpo", {"bundle_size": 3})], seeds=1, progress=SILENT)


def test_exact_pass_at_k_rejects_bad_input():
    assert float(exact_pass_at_k(torch.tensor(0.5), 3)) == pytest.approx(0.875, abs=1e-15)
    with pytest.raises(ValueError, match="k="):
        exact_pass_at_k(torch.tensor(0.5), 0)
    with pytest.raises(ValueError, match="success_prob"):
        exact_pass_at_k(torch.tensor(1.5), 2)


def test_adding_an_estimator_does_not_change_another_ones_run():
    # Per-estimator random streams: the sampled GRPO run is identical alone and next to RS-GRPO.
    bandit_cfg = BanditConfig(rewards=[0.2, 0.5, 0.9], batch_size=8, steps=30, reward_noise="bernoulli")
    alone = run_bandit(bandit_cfg, [("grpo", {})], seeds=3, progress=SILENT).metrics
    mixed = run_bandit(bandit_cfg, [("rs_grpo", {"beta": 2.0}), ("grpo", {})], seeds=3, progress=SILENT).metrics
    np.testing.assert_array_equal(
        alone.expected_reward.to_numpy(), mixed[mixed.estimator == "grpo"].expected_reward.to_numpy()
    )
    tab_cfg = TabularConfig(num_prompts=10, steps=10)
    alone = run_tabular(tab_cfg, [("grpo", {})], seeds=2, progress=SILENT).metrics
    mixed = run_tabular(tab_cfg, [("dr_grpo", {}), ("grpo", {})], seeds=2, progress=SILENT).metrics
    np.testing.assert_array_equal(alone.entropy.to_numpy(), mixed[mixed.estimator == "grpo"].entropy.to_numpy())


def test_100_arm_rewards_lie_in_unit_interval_and_best_pays_exactly_one():
    # The unscaled landscape peaked at 1 + 1.1e-11, so pass@k and Bernoulli noise refused it.
    from sandbox.bandit import rs_grpo_paper_rewards

    rewards = np.array(rs_grpo_paper_rewards())
    assert rewards.max() == 1.0 and rewards.argmax() == 40 and rewards.min() >= 0.0
    x = np.arange(100)
    unscaled = 0.1 + 0.9 * np.exp(-((x - 40) ** 2) / 50) + 0.5 * np.exp(-((x - 75) ** 2) / 50)
    np.testing.assert_allclose(rewards, unscaled, rtol=2e-11, atol=0)  # the paper's landscape up to 1.1e-11
    for noise in ("none", "bernoulli"):
        res = run_bandit(
            BanditConfig.rs_grpo_paper(steps=3, reward_noise=noise),
            [("passk_chen", {"k": 4})],
            seeds=1,
            progress=SILENT,
        )
        assert res.metrics.expected_reward.notna().all()


def test_curves_figure_draws_the_promised_std_band():
    """sandbox.plots.curves_figure draws mean ± 1 std over seeds (computed here by hand)."""
    from sandbox.plots import curves_figure

    rows = []
    for seed, values in enumerate(([0.2, 0.4], [0.6, 0.8])):
        for step, value in enumerate(values):
            rows.append({"estimator": "a", "seed": seed, "step": step, "entropy": value})
    fig = curves_figure(pd.DataFrame(rows), ["entropy"], "title").to_dict()
    band, line = fig["data"]
    std = np.std([0.2, 0.6], ddof=1)  # pandas' std over the two seeds at step 0 (same at step 1)
    assert list(line["y"]) == pytest.approx([0.4, 0.6])
    assert list(band["y"]) == pytest.approx([0.4 + std, 0.6 + std, 0.6 - std, 0.4 - std])
    assert fig["layout"]["title"]["text"] == "title"

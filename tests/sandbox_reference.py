"""The simulators as they were before vectorisation (commit cecba41), kept as a test oracle.

One multinomial call and one random generator per estimator, one estimator call per
estimator (per seed where stateful), an inline Adam, and the risk metrics computed
estimator by estimator. tests/sandbox/test_sandbox_vectorised.py checks that the vectorised
simulators (shared uniforms, inverse-CDF sampling, batched RS-GRPO, torch.optim)
reproduce these trajectories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from sandbox.bandit import BanditConfig, _metrics_frame
from sandbox.common import build_estimator, estimator_label, is_stateful, normalise_specs
from sandbox.tabular import METRIC_COLUMNS, TabularConfig, make_problem
from theory import risk_measures as rm
from theory.bundles import bundle_score_law
from theory.dynamics import covariance, natural_gradient_step, softmax_entropy, softmax_policy_gradient
from theory.estimator_registry import AdvantageEstimator
from theory.passk import exact_pass_at_k


def _advantages(est, rewards: torch.Tensor) -> torch.Tensor:
    """est.compute skips the per-call summary metrics of est(...): rewards here are float64 and
    finite by construction, and those metrics cost more than the advantage itself in a 25k-step loop."""
    return est.compute(rewards, None)[0]


def _outcomes(config: BanditConfig, mean_rewards: torch.Tensor, probs: torch.Tensor):
    """Every (arm, reward) outcome with its probability, for exact updates: (runs, n_out) each."""
    if config.reward_noise == "none":
        return mean_rewards.expand_as(probs), probs
    zeros, ones = torch.zeros_like(probs), torch.ones_like(probs)
    mu = mean_rewards.expand_as(probs)
    return torch.cat([zeros, ones], -1), torch.cat([probs * (1 - mu), probs * mu], -1)


def _per_arm(config: BanditConfig, outcome_adv: torch.Tensor, mean_rewards: torch.Tensor) -> torch.Tensor:
    """Ā(a) = E[A | arm a]: fold Bernoulli outcomes back onto arms."""
    if config.reward_noise == "none":
        return outcome_adv
    k = mean_rewards.shape[-1]
    return (1 - mean_rewards) * outcome_adv[..., :k] + mean_rewards * outcome_adv[..., k:]


def reference_bandit(config: BanditConfig, estimators: Sequence, seeds: int = 4) -> tuple:
    """Train a softmax policy with each estimator from ``seeds`` seeds; all runs advance together."""
    specs = normalise_specs(estimators)
    seeds = int(seeds)
    num_est, k = len(specs), config.num_arms
    labels = [estimator_label(n, p) for n, p in specs]
    dtype = torch.float64
    mean_rewards = torch.tensor(config.rewards, dtype=dtype).unsqueeze(0)  # (1, K)
    best_arm = int(torch.argmax(mean_rewards))
    init = (
        torch.tensor(config.init_logits, dtype=dtype) if config.init_logits is not None else torch.zeros(k, dtype=dtype)
    )
    logits = init.repeat(num_est * seeds, 1)  # row e*seeds + s
    # One stream per estimator, all started from the same seed: estimators see common random
    # numbers, and adding an estimator to a run never changes another one's trajectory.
    gens = [torch.Generator().manual_seed(config.seed) for _ in specs]

    # One instance per (estimator, seed) when rows would otherwise share quantiles/bundles.
    instances = []
    for e, (name, params) in enumerate(specs):
        first = build_estimator(name, params, default_bundle_size=1, seed=config.seed)
        if config.batch_size is not None and is_stateful(first):
            instances.append(
                [build_estimator(name, params, default_bundle_size=1, seed=config.seed + s) for s in range(seeds)]
            )
        else:
            instances.append([first])
        if config.batch_size is None and type(first).population is AdvantageEstimator.population:
            raise ValueError(f"estimator {labels[e]} has no exact population form; set batch_size for sampled updates")
        if getattr(first, "bundle_size", 1) != 1:
            raise ValueError(f"estimator {labels[e]}: a bandit has one prompt, so bundle_size must be 1")

    adam_m = torch.zeros_like(logits)
    adam_v = torch.zeros_like(logits)
    log_steps = sorted(set(range(0, config.steps + 1, config.log_every)) | {config.steps})
    snap_every = max(1, math.ceil(config.steps / config.policy_snapshots))
    snap_steps = sorted(set(range(0, config.steps + 1, snap_every)) | {config.steps})
    metric_rows, policy_rows = [], []

    def record(step: int) -> None:
        probs = torch.softmax(logits, -1)
        if step in log_steps_set:
            exp_r = (probs * mean_rewards).sum(-1).view(num_est, seeds)
            ent = softmax_entropy(logits).view(num_est, seeds)
            pbest = probs[:, best_arm].view(num_est, seeds)
            metric_rows.append((step, exp_r.numpy().copy(), ent.numpy().copy(), pbest.numpy().copy()))
        if step in snap_steps_set:
            policy_rows.append((step, probs.view(num_est, seeds, k).mean(1).numpy().copy()))

    log_steps_set, snap_steps_set = set(log_steps), set(snap_steps)
    record(0)
    for step in range(1, config.steps + 1):
        probs = torch.softmax(logits, -1)
        if config.batch_size is None:
            out_r, out_p = _outcomes(config, mean_rewards, probs)
            arm_adv = torch.empty_like(logits)
            for e in range(num_est):
                rows = slice(e * seeds, (e + 1) * seeds)
                adv = instances[e][0].population(out_r[rows], out_p[rows])
                arm_adv[rows] = _per_arm(config, adv, mean_rewards)
            if config.optimizer == "natural":
                grad = None  # natural step: θ += η Ā, no gradient preconditioning needed
                logits = natural_gradient_step(logits, arm_adv, config.lr)
            else:
                grad = softmax_policy_gradient(logits, arm_adv)
        else:
            n = config.batch_size
            arms = torch.cat(
                [
                    torch.multinomial(probs[e * seeds : (e + 1) * seeds], n, replacement=True, generator=gens[e])
                    for e in range(num_est)
                ]
            )  # (runs, N)
            r = mean_rewards[0][arms]
            if config.reward_noise == "bernoulli":
                u = torch.cat([torch.rand(seeds, n, generator=gens[e], dtype=dtype) for e in range(num_est)])
                r = (u < r).to(dtype)
            elif config.reward_noise == "gaussian":
                eps = torch.cat([torch.randn(seeds, n, generator=gens[e], dtype=dtype) for e in range(num_est)])
                r = r + config.noise_std * eps
            adv = torch.empty_like(r)
            for e in range(num_est):
                if len(instances[e]) == 1:
                    rows = slice(e * seeds, (e + 1) * seeds)
                    adv[rows] = _advantages(instances[e][0], r[rows])
                else:
                    for s, est in enumerate(instances[e]):
                        adv[e * seeds + s] = _advantages(est, r[e * seeds + s : e * seeds + s + 1])[0]
            # (1/N) Σ_i A_i (e_{a_i} − π): the softmax score function, batched.
            grad = (torch.zeros_like(logits).scatter_add_(1, arms, adv) - probs * adv.sum(-1, keepdim=True)) / n
        if grad is not None:
            if config.optimizer == "sgd":
                logits = logits + config.lr * grad
            else:  # adam ascent, standard constants
                adam_m = 0.9 * adam_m + 0.1 * grad
                adam_v = 0.999 * adam_v + 0.001 * grad**2
                m_hat = adam_m / (1 - 0.9**step)
                v_hat = adam_v / (1 - 0.999**step)
                logits = logits + config.lr * m_hat / (v_hat.sqrt() + 1e-8)
        record(step)

    return _metrics_frame(metric_rows, labels, seeds), policy_rows


def _levels(config: TabularConfig) -> int:
    return 2 if config.reward_type == "binary" else 5


def _bundle_risk(config: TabularConfig, probs: torch.Tensor, level_index: torch.Tensor, bundle_size: int):
    """Exact CVaR/RVaR/MVaR of the per-question bundle score R_B/B under π, pooled over blocks.

    probs (..., P, M); level_index (..., P, M) int64 -> three tensors (...).
    """
    num_levels = _levels(config)
    level_probs = torch.zeros(*probs.shape[:-1], num_levels, dtype=torch.float64).scatter_add_(-1, level_index, probs)
    blocks = level_probs.reshape(*level_probs.shape[:-2], config.num_prompts // bundle_size, bundle_size, num_levels)
    law = bundle_score_law(blocks).mean(-2)  # pool blocks: the tracker sees every bundle
    values = torch.arange(law.shape[-1], dtype=torch.float64) / (num_levels - 1) / bundle_size
    values = values.expand_as(law)
    law = law / law.sum(-1, keepdim=True)
    a, b, w = config.risk_alpha, config.risk_beta, config.risk_omega
    cvar = rm.cvar(values, law, a) if a > 0 else rm.quantile(values, law, 0.0)
    return cvar, rm.rvar(values, law, a, b), rm.mvar(values, law, a, b, w)


def reference_tabular(config: TabularConfig, estimators: Sequence, seeds: int = 4):
    """Train every estimator from the same ``seeds`` problems (paired comparison); all runs step together."""
    specs = normalise_specs(estimators)
    seeds = int(seeds)
    labels = [estimator_label(n, p) for n, p in specs]
    num_est, g, m = len(specs), config.group_size, config.responses_per_prompt
    problems = [make_problem(config, s) for s in range(seeds)]
    rewards = torch.stack([r for r, _ in problems])  # (S, P, M)
    logits = torch.stack([l for _, l in problems]).unsqueeze(0).repeat(num_est, 1, 1, 1)  # (E, S, P, M)
    level_index = torch.round(rewards * (_levels(config) - 1)).long()
    worst = rewards.amin(-1, keepdim=True)  # all-fail = every sampled reward at the prompt's minimum 0
    # One stream per estimator from the same seed: common random numbers across estimators, and
    # adding an estimator never changes another one's run.
    gens = [torch.Generator().manual_seed(int(config.seed) * 7919 + 1) for _ in specs]

    instances, bundle_sizes = [], []
    for e, (name, params) in enumerate(specs):
        first = build_estimator(name, params, seed=config.seed)
        bundle = int(getattr(first, "bundle_size", 1))
        if config.num_prompts % bundle:
            raise ValueError(
                f"estimator {labels[e]}: bundle_size={bundle} must divide num_prompts={config.num_prompts}"
            )
        if is_stateful(first):
            instances.append([build_estimator(name, params, seed=config.seed + s) for s in range(seeds)])
        else:
            instances.append([first])
        bundle_sizes.append(config.metric_bundle_size or bundle)

    rows = []
    zero = 1e-12
    for step in range(config.steps + 1):
        probs = torch.softmax(logits, -1)
        log_probs = torch.log_softmax(logits, -1)
        responses = torch.stack(
            [torch.multinomial(probs[e].reshape(-1, m), g, replacement=True, generator=gens[e]) for e in range(num_est)]
        ).reshape(*probs.shape[:-1], g)
        sampled = torch.gather(rewards.expand(num_est, -1, -1, -1), -1, responses)  # (E, S, P, G)
        adv = torch.empty_like(sampled)
        quantiles = torch.full((num_est, seeds, 2), float("nan"), dtype=torch.float64)
        for e in range(num_est):
            if len(instances[e]) == 1:
                out = instances[e][0](sampled[e].reshape(-1, g))
                adv[e] = out.advantages.reshape(seeds, -1, g)
                quantiles[e, :, 0] = out.metrics.get("q_alpha", float("nan"))
                quantiles[e, :, 1] = out.metrics.get("q_beta", float("nan"))
            else:
                for s, est in enumerate(instances[e]):
                    out = est(sampled[e, s])
                    adv[e, s] = out.advantages
                    quantiles[e, s, 0] = out.metrics.get("q_alpha", float("nan"))
                    quantiles[e, s, 1] = out.metrics.get("q_beta", float("nan"))

        if step % config.log_every == 0 or step == config.steps:
            rows.append(
                _step_metrics(
                    config,
                    step,
                    probs,
                    logits,
                    log_probs,
                    responses,
                    sampled,
                    adv,
                    quantiles,
                    rewards,
                    level_index,
                    worst,
                    bundle_sizes,
                    zero,
                )
            )
        if step == config.steps:
            break
        logits = reference_update(config, logits, responses, adv)
    return _frame(rows, labels, seeds)


def reference_update(
    config: TabularConfig, logits: torch.Tensor, responses: torch.Tensor, adv: torch.Tensor
) -> torch.Tensor:
    g = responses.shape[-1]
    if config.clip_eps is None:
        # θ_p += η (1/G) Σ_i A_i (e_{y_i} − π_p): the exact gradient of the per-prompt surrogate.
        probs = torch.softmax(logits, -1)
        grad = torch.zeros_like(logits).scatter_add_(-1, responses, adv) - probs * adv.sum(-1, keepdim=True)
        return logits + config.lr * grad / g
    old = torch.gather(torch.log_softmax(logits, -1), -1, responses).detach()
    eps = float(config.clip_eps)
    for _ in range(config.ppo_epochs):
        theta = logits.detach().requires_grad_(True)
        ratio = torch.exp(torch.gather(torch.log_softmax(theta, -1), -1, responses) - old)
        surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv)
        (grad,) = torch.autograd.grad(surrogate.sum() / g, theta)
        logits = logits + config.lr * grad
    return logits.detach()


def _step_metrics(
    config,
    step,
    probs,
    logits,
    log_probs,
    responses,
    sampled,
    adv,
    quantiles,
    rewards,
    level_index,
    worst,
    bundle_sizes,
    zero,
):
    num_est, seeds = probs.shape[:2]
    success = (probs * (rewards > 0)).sum(-1)  # (E, S, P)
    exp_reward = (probs * rewards).sum(-1)
    entropy = softmax_entropy(logits).mean(-1)
    g = responses.shape[-1]
    sampled_logp = torch.gather(log_probs, -1, responses)
    cov = covariance(sampled_logp, adv, torch.full_like(adv, 1.0 / g)).mean(-1)
    zero_groups = (adv.abs() <= zero).all(-1).double().mean(-1)
    all_fail = (sampled <= worst.unsqueeze(0)).all(-1) & (worst.squeeze(-1).unsqueeze(0) == 0)
    nonzero = (adv.abs() > zero).any(-1)
    fails = all_fail.double().sum(-1)
    allfail_nonzero = torch.where(fails > 0, (all_fail & nonzero).double().sum(-1) / fails.clamp(min=1), torch.nan)
    varied = (adv.amax(-1) - adv.amin(-1)) > zero
    allfail_varied = torch.where(fails > 0, (all_fail & varied).double().sum(-1) / fails.clamp(min=1), torch.nan)
    risk = torch.full((num_est, seeds, 3), float("nan"), dtype=torch.float64)
    for e, bundle in enumerate(bundle_sizes):
        cvar, rvar, mvar = _bundle_risk(config, probs[e], level_index, bundle)
        risk[e] = torch.stack([cvar, rvar, mvar], -1)
    return {
        "step": step,
        "mean_reward": exp_reward.mean(-1),
        "entropy": entropy,
        "cov_logp_adv": cov,
        "pass_at_1": success.mean(-1),
        "pass_at_k": exact_pass_at_k(success.clamp(0, 1), config.k).mean(-1),
        "rvar_lower": risk[..., 1],
        "mvar": risk[..., 2],
        "cvar": risk[..., 0],
        "frac_zero_adv_groups": zero_groups,
        "allfail_nonzero_adv": allfail_nonzero,
        "allfail_varied_adv": allfail_varied,
        "q_alpha": quantiles[..., 0],
        "q_beta": quantiles[..., 1],
    }


def _frame(rows, labels, seeds) -> pd.DataFrame:
    num_est = len(labels)
    t = len(rows)
    data = {
        "estimator": np.tile(np.repeat(np.array(labels, dtype=object), seeds), t),
        "seed": np.tile(np.arange(seeds), num_est * t),
        "step": np.repeat([r["step"] for r in rows], num_est * seeds),
    }
    for col in METRIC_COLUMNS:
        data[col] = np.concatenate([r[col].reshape(-1).numpy() for r in rows])
    return pd.DataFrame(data)

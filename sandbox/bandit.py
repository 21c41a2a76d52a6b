"""Softmax K-armed bandit, vectorised over estimators and seeds.

Every (estimator, seed) pair is one row of a logits tensor θ of shape (runs, K);
one loop over steps updates all rows at once. Per step (rules in theory.updates):

    exact    (batch_size=None): Ā = est.population(r, π) per arm,
             g = E_{a~π}[Ā(a) ∇log π(a)] = π ⊙ (Ā − E_π Ā)         (softmax_policy_gradient)
    sampled  (batch_size=N):    a_1..a_N ~ π, r_i = μ(a_i) (+ noise), A = est(r),
             g = (1/N) Σ_i A_i (e_{a_i} − π)                          (sampled_policy_gradient)

and an optimizer step along g (``theory.updates.ascent_optimizer``): SGD θ ← θ + η g ('sgd'), Adam
('adam'), or SGD along Ā, θ ← θ + η Ā ('natural', the tabular natural gradient, exact updates only).

Every estimator sees the same random numbers (one stream from ``seed``): adding an
estimator never changes another one's trajectory, and estimators are compared on
common draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from theory.checks import check_finite_number, check_int, check_positive
from theory.dynamics import softmax_entropy
from theory.updates import (
    ascent_optimizer,
    ascent_step,
    population_arm_advantage,
    sampled_policy_gradient,
    softmax_policy_gradient,
)

from .common import Progress, RunAdvantages, estimator_label, normalise_specs, sample_actions, single_thread

__all__ = [
    "BanditConfig",
    "BanditResult",
    "run_bandit",
    "rs_grpo_beta_sweep",
    "rs_grpo_paper_rewards",
    "rs_grpo_paper_init_logits",
]

NOISE_KINDS = ("none", "bernoulli", "gaussian")
OPTIMIZERS = ("sgd", "adam", "natural")


def rs_grpo_paper_rewards(num_arms: int = 100) -> list[float]:
    """RS-GRPO §5 bandit: r(x) ∝ 0.1 + 0.9·exp(−(x−40)²/50) + 0.5·exp(−(x−75)²/50), x = 0..99,
    scaled so that the global optimum pays exactly 1.0 (as the paper states).

    Unscaled, the 0.6 bump's tail adds 0.5·e^{−24.5} ≈ 1.1e-11 at x = 40, so the best arm would
    pay 1 + 1.1e-11 and every check of rewards in [0, 1] (pass@k, Bernoulli noise) would fail.
    """
    x = np.arange(num_arms, dtype=np.float64)
    landscape = 0.1 + 0.9 * np.exp(-((x - 40) ** 2) / 50) + 0.5 * np.exp(-((x - 75) ** 2) / 50)
    return (landscape / landscape.max()).tolist()  # v / v == 1.0 exactly in IEEE arithmetic


def rs_grpo_paper_init_logits(num_arms: int = 100) -> list[float]:
    """log of the initial density ∝ exp(−½((x−75)/5)²) + 0.1 (peaked on the 0.6 mode)."""
    x = np.arange(num_arms, dtype=np.float64)
    density = np.exp(-0.5 * ((x - 75) / 5) ** 2) + 0.1
    return np.log(density / density.sum()).tolist()


@dataclass
class BanditConfig:
    """One bandit problem and how to learn on it.

    rewards: mean reward μ_a of each of the K arms. With reward_noise='bernoulli'
        they are success probabilities (must lie in [0, 1]).
    init_logits: initial θ (None = uniform policy).
    reward_noise: 'none' (r = μ_a), 'bernoulli' (r ~ Bern(μ_a)) or 'gaussian'
        (r = μ_a + noise_std·ε; sampled updates only).
    batch_size: arms drawn per update (None = exact expected update).
    lr: η. steps: number of updates. optimizer: 'sgd', 'adam' or 'natural'.
    log_every: record metrics every this many steps (step 0 and the last always).
    policy_snapshots: how many policy snapshots (mean over seeds) to keep.
    """

    rewards: Sequence[float] = (1.0, 0.8, 0.0)
    init_logits: Sequence[float] | None = None
    reward_noise: str = "none"
    noise_std: float = 0.1
    batch_size: int | None = None
    lr: float = 0.1
    steps: int = 200
    optimizer: str = "sgd"
    seed: int = 0
    log_every: int = 1
    policy_snapshots: int = 50

    def __post_init__(self) -> None:
        rewards = np.asarray(self.rewards, dtype=np.float64)
        if rewards.ndim != 1 or rewards.size < 2:
            raise ValueError(f"rewards must be a 1-D list of at least 2 arm rewards, got shape {rewards.shape}")
        if not np.isfinite(rewards).all():
            raise ValueError("rewards must be finite")
        if self.init_logits is not None:
            logits = np.asarray(self.init_logits, dtype=np.float64)
            if logits.shape != rewards.shape:
                raise ValueError(f"init_logits has {logits.size} entries but rewards has {rewards.size} arms")
            if not np.isfinite(logits).all():
                raise ValueError("init_logits must be finite")
        if self.reward_noise not in NOISE_KINDS:
            raise ValueError(f"reward_noise={self.reward_noise!r} must be one of {NOISE_KINDS}")
        if self.reward_noise == "bernoulli" and ((rewards < 0) | (rewards > 1)).any():
            raise ValueError("reward_noise='bernoulli' needs rewards (success probabilities) in [0, 1]")
        if self.reward_noise == "gaussian":
            check_finite_number("noise_std", self.noise_std)
            check_positive("noise_std", self.noise_std)
            if self.batch_size is None:
                raise ValueError("reward_noise='gaussian' has no exact update: set batch_size")
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, minimum=2)
        check_finite_number("lr", self.lr)
        check_positive("lr", self.lr)
        check_int("steps", self.steps, minimum=1)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} must be one of {OPTIMIZERS}")
        if self.optimizer == "natural" and self.batch_size is not None:
            raise ValueError("optimizer='natural' (θ += η·A) needs exact updates: set batch_size=None")
        check_int("log_every", self.log_every, minimum=1)
        check_int("policy_snapshots", self.policy_snapshots, minimum=1)

    @property
    def num_arms(self) -> int:
        return len(self.rewards)

    @classmethod
    def rs_grpo_paper(cls, **overrides) -> BanditConfig:
        """RS-GRPO (Jiang et al., 2025) §5.1 (Fig. 3) 100-armed bandit: batch 16, η = 0.1, plain SGD on logits.

        The authors' script runs 4·10⁵ pulls = 25 000 updates of 16; we keep that.
        """
        base = dict(
            rewards=rs_grpo_paper_rewards(),
            init_logits=rs_grpo_paper_init_logits(),
            batch_size=16,
            lr=0.1,
            steps=25_000,
            optimizer="sgd",
            log_every=100,
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def three_arm(cls, **overrides) -> BanditConfig:
        """RS-GRPO Lemma 2 example: r = (1, 0.8, 0), π₀ = (0.05, 0.9, 0.05), exact updates."""
        base = dict(
            rewards=[1.0, 0.8, 0.0],
            init_logits=np.log([0.05, 0.9, 0.05]).tolist(),
            batch_size=None,
            lr=0.5,
            steps=300,
            optimizer="sgd",
        )
        base.update(overrides)
        return cls(**base)


@dataclass
class BanditResult:
    """metrics: long DataFrame (estimator, seed, step, expected_reward, entropy, prob_best).
    policy: long DataFrame (estimator, step, arm, prob), prob averaged over seeds."""

    metrics: pd.DataFrame
    policy: pd.DataFrame
    config: dict = field(default_factory=dict)
    estimators: list = field(default_factory=list)

    def final(self) -> pd.DataFrame:
        """Last logged step, mean and std over seeds, one row per estimator."""
        last = self.metrics[self.metrics.step == self.metrics.step.max()]
        return last.groupby("estimator", sort=False)[["expected_reward", "entropy", "prob_best"]].agg(["mean", "std"])


@single_thread()
def run_bandit(config: BanditConfig, estimators: Sequence, seeds: int = 4, progress: Progress = None) -> BanditResult:
    """Train a softmax policy with each estimator from ``seeds`` seeds; all runs advance together.

    ``progress(fraction)`` is called about 100 times (and silences the tqdm bar): long runs such as
    the 25 000-update RS-GRPO sweep can drive a progress bar from it.
    """
    specs = normalise_specs(estimators)
    check_int("seeds", seeds, minimum=1)
    seeds = int(seeds)
    num_est, k = len(specs), config.num_arms
    labels = [estimator_label(n, p) for n, p in specs]
    dtype = torch.float64
    mean_rewards = torch.tensor(config.rewards, dtype=dtype).unsqueeze(0)  # (1, K)
    arm_rewards = mean_rewards[0]
    best_arm = int(torch.argmax(mean_rewards))
    init = (
        torch.tensor(config.init_logits, dtype=dtype) if config.init_logits is not None else torch.zeros(k, dtype=dtype)
    )
    logits = init.repeat(num_est * seeds, 1)  # row e*seeds + s; a leaf tensor the optimizer updates in place
    generator = torch.Generator().manual_seed(config.seed)
    advantages = RunAdvantages(specs, seeds, seed=config.seed, default_bundle_size=1)
    for e in range(num_est):
        first = advantages.first(e)
        if config.batch_size is None:
            try:  # probe once: fail before the loop, naming the estimator
                first.population(mean_rewards, torch.softmax(init, -1).unsqueeze(0))
            except (NotImplementedError, ValueError) as err:
                raise ValueError(
                    f"estimator {labels[e]}: no exact update ({err}); set batch_size for sampled updates"
                ) from err
        if getattr(first, "bundle_size", 1) != 1:
            raise ValueError(f"estimator {labels[e]}: a bandit has one prompt, so bundle_size must be 1")
    # 'natural' is SGD along Ā: θ ← θ + η Ā (theory.dynamics.natural_gradient_step).
    optimizer = ascent_optimizer("sgd" if config.optimizer == "natural" else config.optimizer, logits, config.lr)

    log_steps = set(range(0, config.steps + 1, config.log_every)) | {config.steps}
    snap_every = max(1, math.ceil(config.steps / config.policy_snapshots))
    snap_steps = set(range(0, config.steps + 1, snap_every)) | {config.steps}
    metric_rows, policy_rows = [], []

    def record(step: int) -> None:
        probs = torch.softmax(logits, -1)
        if step in log_steps:
            exp_r = (probs * mean_rewards).sum(-1).view(num_est, seeds)
            ent = softmax_entropy(logits).view(num_est, seeds)
            pbest = probs[:, best_arm].view(num_est, seeds)
            metric_rows.append((step, exp_r.numpy().copy(), ent.numpy().copy(), pbest.numpy().copy()))
        if step in snap_steps:
            policy_rows.append((step, probs.view(num_est, seeds, k).mean(1).numpy().copy()))

    record(0)
    report_every = max(1, config.steps // 100)
    bar = tqdm(range(1, config.steps + 1), desc="bandit", leave=False, mininterval=1.0, disable=progress is not None)
    with torch.inference_mode():  # no autograd here; skipping its bookkeeping saves ~12% per step
        for step in bar:
            _bandit_step(config, logits, arm_rewards, mean_rewards, generator, advantages, optimizer, num_est, seeds)
            if step in log_steps or step in snap_steps:
                record(step)
            if progress is not None and (step % report_every == 0 or step == config.steps):
                progress(step / config.steps)

    metrics = _metrics_frame(metric_rows, labels, seeds)
    snap_steps_arr = np.array([step for step, _ in policy_rows])
    snap_probs = np.stack([p for _, p in policy_rows])  # (T, E, K)
    t = len(snap_steps_arr)
    policy = pd.DataFrame(
        {
            "estimator": np.repeat(np.array(labels, dtype=object), k)[None, :].repeat(t, 0).reshape(-1),
            "step": snap_steps_arr.repeat(num_est * k),
            "arm": np.tile(np.arange(k), t * num_est),
            "prob": snap_probs.reshape(-1),
        }
    )
    return BanditResult(metrics=metrics, policy=policy, config=asdict(config), estimators=[list(s) for s in specs])


def _bandit_step(
    config: BanditConfig,
    logits,
    arm_rewards,
    mean_rewards,
    generator,
    advantages: RunAdvantages,
    optimizer,
    num_est: int,
    seeds: int,
) -> None:
    """One update of every run's logits (rows e*seeds + s), in place."""
    k, dtype = logits.shape[-1], logits.dtype
    probs = torch.softmax(logits, -1)
    if config.batch_size is None:
        arm_adv = torch.empty_like(logits)
        for e in range(num_est):
            rows = slice(e * seeds, (e + 1) * seeds)
            arm_adv[rows] = population_arm_advantage(
                advantages.first(e).population, mean_rewards, probs[rows], bernoulli=config.reward_noise == "bernoulli"
            )
        direction = arm_adv if config.optimizer == "natural" else softmax_policy_gradient(logits, arm_adv)
    else:
        n = config.batch_size
        arms = sample_actions(probs.view(num_est, seeds, k), torch.rand(seeds, n, generator=generator, dtype=dtype))
        r = arm_rewards[arms]  # (E, S, N)
        if config.reward_noise == "bernoulli":
            r = (torch.rand(seeds, n, generator=generator, dtype=dtype) < r).to(dtype)
        elif config.reward_noise == "gaussian":
            r = r + config.noise_std * torch.randn(seeds, n, generator=generator, dtype=dtype)
        adv, _ = advantages(r.unsqueeze(2))
        direction = sampled_policy_gradient(probs, arms.view(-1, n), adv.view(-1, n))
    ascent_step(optimizer, logits, direction)


def rs_grpo_beta_sweep(
    betas: Sequence[float] = (0, 2, 4, 8, 16, 32, 64), seeds: int = 8, progress: Progress = None, **overrides
) -> BanditResult:
    """RS-GRPO §5 figure: the 100-armed bandit trained with RS-GRPO at every β, 25 000 updates of 16
    arms by default (``overrides`` reach ``BanditConfig.rs_grpo_paper``, e.g. steps=2000).
    All β and seeds run as one tensor program; ``progress(fraction)`` reports about 100 times."""
    config = BanditConfig.rs_grpo_paper(**overrides)
    return run_bandit(config, [("rs_grpo", {"beta": float(b)}) for b in betas], seeds=seeds, progress=progress)


def _metrics_frame(rows, labels, seeds) -> pd.DataFrame:
    steps = np.array([r[0] for r in rows])
    num_est = len(labels)
    stacked = [np.stack([r[i] for r in rows]) for i in (1, 2, 3)]  # (T, E, S)
    t = len(steps)
    return pd.DataFrame(
        {
            "estimator": np.repeat(np.array(labels, dtype=object), seeds)[None, :].repeat(t, 0).reshape(-1),
            "seed": np.tile(np.arange(seeds), num_est)[None, :].repeat(t, 0).reshape(-1),
            "step": steps.repeat(num_est * seeds),
            "expected_reward": stacked[0].reshape(-1),
            "entropy": stacked[1].reshape(-1),
            "prob_best": stacked[2].reshape(-1),
        }
    )

"""Tabular-prompt simulator: a stand-in for an LLM on a verifiable-reward dataset.

P prompts, each with M candidate responses (a tabular softmax policy per
prompt). Response m of prompt p has a latent quality u ~ U(0, 1) and the
prompt a difficulty d_p; the reward is 1{u > d_p} ('binary') or the graded
version clip((u − d_p)/(1 − d_p), 0, 1) rounded to quarters ('graded').

Initial logits are sharply peaked, θ_pm = peak · z_pm, with
z = ρ·(standardised reward) + √(1−ρ²)·ε: ρ = correctness_correlation sets how
much the "pre-trained" policy already prefers correct responses (ρ > 0 makes
RiskPO's Assumption 1 likely to hold, ρ < 0 makes it fail).

Each step, for every (estimator, seed) run: sample G responses per prompt,
compute advantages with the registered estimator (bundles and quantile
tracking included), then take a plain policy-gradient step
θ_p += η (1/G) Σ_i A_i ∇log π_p(y_i) (``theory.updates.sampled_policy_gradient``)
or ``ppo_epochs`` steps on the trainer's clipped surrogate (``theory.surrogate``; the response
is the whole sequence, so its ratio is the sequence ratio), each an SGD step (``theory.updates.AscentSGD``).
All runs are one tensor program: every estimator sees the same uniforms (common random numbers).

Metrics (``METRIC_COLUMNS``) are documented in docs/sandbox.md: exact policy quantities
(mean reward, entropy, pass@1, pass@k, CVaR/RVaR/MVaR of the bundle-score law) and batch
quantities (Cov(log π, A) over the sampled group, zero-advantage shares, the quantiles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from theory import risk_measures as rm
from theory.bundles import bundle_score_law
from theory.checks import check_finite_number, check_int, check_positive, check_probability
from theory.dynamics import covariance, softmax_entropy
from theory.passk import exact_pass_at_ks
from theory.surrogate import aggregate, clipped_surrogate
from theory.updates import AscentSGD, ascent_optimizer, ascent_step, sampled_policy_gradient

from .common import Progress, RunAdvantages, estimator_label, normalise_specs, sample_actions, single_thread

__all__ = ["TabularConfig", "TabularResult", "run_tabular", "make_problem", "METRIC_COLUMNS"]

DIFFICULTIES = ("uniform", "easy", "hard", "bimodal")
REWARD_TYPES = ("binary", "graded")
METRIC_COLUMNS = [
    "mean_reward",
    "entropy",
    "cov_logp_adv",
    "pass_at_1",
    "pass_at_k",
    "rvar_lower",
    "mvar",
    "cvar",
    "frac_zero_adv_groups",
    "allfail_nonzero_adv",
    "allfail_varied_adv",
    "q_alpha",
    "q_beta",
]


@dataclass
class TabularConfig:
    """The simulated dataset, policy and optimiser.

    num_prompts P (a multiple of every bundle size used), responses_per_prompt M,
    group_size G (responses sampled per prompt per step), steps, lr η,
    peak: initial logit sharpness (θ = peak·z), correctness_correlation ρ in [−1, 1],
    difficulty: 'uniform' (d ~ U(0.05, 0.95)), 'easy' (Beta(2, 5)), 'hard' (Beta(5, 2)),
        'bimodal' (half near 0.2, half near 0.9),
    reward_type: 'binary' | 'graded', clip_eps: None = plain PG, else the PPO clip ε in (0, 1),
    ppo_epochs: gradient steps per batch when clipping, k: pass@k level,
    passk_grid: more k levels logged as columns pass_at_k_<k> (pass@k does not change the training,
        so one run gives pass@k vs k for every k in the grid),
    risk_alpha/risk_beta/risk_omega: levels for the logged CVaR/RVaR/MVaR of bundle scores,
    metric_bundle_size: B of those logged bundle scores (None = the estimator's own),
    seed: base seed (seed s of a run uses seed + s for its problem and sampling).
    """

    num_prompts: int = 40
    responses_per_prompt: int = 16
    group_size: int = 8
    steps: int = 150
    lr: float = 0.5
    peak: float = 3.0
    correctness_correlation: float = 0.3
    difficulty: str = "uniform"
    reward_type: str = "binary"
    clip_eps: float | None = None
    ppo_epochs: int = 2
    k: int = 8
    passk_grid: tuple[int, ...] = ()
    risk_alpha: float = 0.2
    risk_beta: float = 0.8
    risk_omega: float = 0.5
    metric_bundle_size: int | None = None
    log_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("num_prompts", self.num_prompts, minimum=1)
        check_int("responses_per_prompt", self.responses_per_prompt, minimum=2)
        check_int("group_size", self.group_size, minimum=2)
        check_int("steps", self.steps, minimum=1)
        check_finite_number("lr", self.lr)
        check_positive("lr", self.lr)
        if not (float(self.peak) >= 0 and np.isfinite(self.peak)):
            raise ValueError(f"peak={self.peak!r} must be a finite number >= 0")
        if not -1.0 <= float(self.correctness_correlation) <= 1.0:
            raise ValueError(f"correctness_correlation={self.correctness_correlation!r} must lie in [-1, 1]")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty={self.difficulty!r} must be one of {DIFFICULTIES}")
        if self.reward_type not in REWARD_TYPES:
            raise ValueError(f"reward_type={self.reward_type!r} must be one of {REWARD_TYPES}")
        if self.clip_eps is not None:  # the ratio's lower bound 1 − ε must stay positive
            check_probability("clip_eps", self.clip_eps, open_low=True, open_high=True)
        check_int("ppo_epochs", self.ppo_epochs, minimum=1)
        check_int("k", self.k, minimum=1)
        if not isinstance(self.passk_grid, tuple):
            raise ValueError(f"passk_grid={self.passk_grid!r} must be a tuple of integers >= 1")
        for i, k in enumerate(self.passk_grid):
            check_int(f"passk_grid[{i}]", k, minimum=1)
        if not 0.0 <= self.risk_alpha < self.risk_beta <= 1.0:
            raise ValueError(
                f"risk_alpha={self.risk_alpha} and risk_beta={self.risk_beta} must satisfy 0 <= alpha < beta <= 1"
            )
        if not self.risk_omega >= 0:
            raise ValueError(f"risk_omega={self.risk_omega} must be >= 0")
        if self.metric_bundle_size is not None:
            check_int("metric_bundle_size", self.metric_bundle_size, minimum=1)
            if self.num_prompts % self.metric_bundle_size:
                raise ValueError(
                    f"metric_bundle_size={self.metric_bundle_size} must divide num_prompts={self.num_prompts}"
                )
        check_int("log_every", self.log_every, minimum=1)


@dataclass
class TabularResult:
    """metrics: long DataFrame, one row per (estimator, seed, logged step), columns
    estimator, seed, step and METRIC_COLUMNS (NaN where a metric does not apply)."""

    metrics: pd.DataFrame
    config: dict = field(default_factory=dict)
    estimators: list = field(default_factory=list)

    def final(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Mean over seeds at the last step, one row per estimator."""
        cols = list(columns or METRIC_COLUMNS)
        last = self.metrics[self.metrics.step == self.metrics.step.max()]
        return last.groupby("estimator", sort=False)[cols].mean()


def _problem_rng(config: TabularConfig, seed: int) -> np.random.Generator:
    return np.random.default_rng([int(config.seed), int(seed), 17])


def _difficulties(config: TabularConfig, rng: np.random.Generator) -> np.ndarray:
    p = config.num_prompts
    if config.difficulty == "uniform":
        return rng.uniform(0.05, 0.95, p)
    if config.difficulty == "easy":
        return rng.beta(2.0, 5.0, p)
    if config.difficulty == "hard":
        return rng.beta(5.0, 2.0, p)
    centres = np.where(np.arange(p) % 2 == 0, 0.2, 0.9)
    return rng.permutation(np.clip(centres + rng.normal(0, 0.05, p), 0.01, 0.99))


def make_problem(config: TabularConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards, init_logits), each (P, M) float64, for one seed."""
    rng = _problem_rng(config, seed)
    d = _difficulties(config, rng)[:, None]
    quality = rng.uniform(0.0, 1.0, (config.num_prompts, config.responses_per_prompt))
    if config.reward_type == "binary":
        rewards = (quality > d).astype(np.float64)
    else:
        rewards = np.floor(4 * np.clip((quality - d) / (1 - d), 0, 1)) / 4
    std = rewards.std(1, keepdims=True)
    standardised = np.where(std > 0, (rewards - rewards.mean(1, keepdims=True)) / np.where(std > 0, std, 1), 0.0)
    rho = float(config.correctness_correlation)
    z = rho * standardised + np.sqrt(1 - rho**2) * rng.standard_normal(rewards.shape)
    return torch.tensor(rewards), torch.tensor(config.peak * z)


def _levels(config: TabularConfig) -> int:
    return 2 if config.reward_type == "binary" else 5


def _bundle_risk(config: TabularConfig, probs: torch.Tensor, level_index: torch.Tensor, bundle_size: int):
    """Exact CVaR/RVaR/MVaR of the per-question bundle score R_B/B under π, pooled over blocks.

    probs (..., P, M); level_index (P, M) or (..., P, M) int64 -> three tensors (...).
    """
    num_levels = _levels(config)
    level_probs = torch.zeros(*probs.shape[:-1], num_levels, dtype=torch.float64)
    level_probs.scatter_add_(-1, level_index.expand_as(probs), probs)
    blocks = level_probs.reshape(*level_probs.shape[:-2], config.num_prompts // bundle_size, bundle_size, num_levels)
    law = bundle_score_law(blocks).mean(-2)  # pool blocks: the tracker sees every bundle
    values = torch.arange(law.shape[-1], dtype=torch.float64) / (num_levels - 1) / bundle_size
    values = values.expand_as(law)
    law = law / law.sum(-1, keepdim=True)
    a, b, w = config.risk_alpha, config.risk_beta, config.risk_omega
    if a > 0:
        return rm.tail_risks(values, law, a, b, w)  # the three from two quantile integrals
    return rm.quantile(values, law, 0.0), rm.rvar(values, law, a, b), rm.mvar(values, law, a, b, w)


@single_thread()
def run_tabular(
    config: TabularConfig, estimators: Sequence, seeds: int = 4, progress: Progress = None
) -> TabularResult:
    """Train every estimator from the same ``seeds`` problems (paired comparison); all runs step together."""
    specs = normalise_specs(estimators)
    check_int("seeds", seeds, minimum=1)
    seeds = int(seeds)
    labels = [estimator_label(n, p) for n, p in specs]
    num_est = len(specs)
    problems = [make_problem(config, s) for s in range(seeds)]
    rewards = torch.stack([r for r, _ in problems])  # (S, P, M)
    logits = (
        torch.stack([l for _, l in problems]).unsqueeze(0).repeat(num_est, 1, 1, 1)
    )  # (E, S, P, M), updated in place
    level_index = torch.round(rewards * (_levels(config) - 1)).long()
    worst = rewards.amin(-1, keepdim=True)  # all-fail = every sampled reward at the prompt's minimum 0
    # One stream for every estimator: common random numbers, and adding an estimator never changes another one's run.
    generator = torch.Generator().manual_seed(int(config.seed) * 7919 + 1)
    advantages = RunAdvantages(specs, seeds, seed=config.seed)
    bundle_sizes = []
    for e in range(num_est):
        bundle = int(getattr(advantages.first(e), "bundle_size", 1))
        if config.num_prompts % bundle:
            raise ValueError(
                f"estimator {labels[e]}: bundle_size={bundle} must divide num_prompts={config.num_prompts}"
            )
        bundle_sizes.append(config.metric_bundle_size or bundle)
    optimizer = ascent_optimizer("sgd", logits, config.lr)

    bar = tqdm(range(config.steps + 1), desc="tabular", leave=False, mininterval=1.0, disable=progress is not None)
    # Plain updates need no autograd: inference mode skips its bookkeeping (the clipped step differentiates).
    with torch.inference_mode(config.clip_eps is None):
        rows = _train(
            config, logits, rewards, level_index, worst, generator, advantages, optimizer, bundle_sizes, bar, progress
        )
    return TabularResult(
        metrics=_frame(rows, labels, seeds), config=asdict(config), estimators=[list(s) for s in specs]
    )


def _train(config, logits, rewards, level_index, worst, generator, advantages, optimizer, bundle_sizes, bar, progress):
    """The step loop of run_tabular: sample, advantages, metrics, update; returns the metric rows."""
    num_est, seeds = logits.shape[:2]
    g = config.group_size
    rows = []
    for step in bar:
        probs = torch.softmax(logits, -1)
        responses = sample_actions(
            probs, torch.rand(seeds, config.num_prompts, g, generator=generator, dtype=torch.float64)
        )
        sampled = torch.gather(rewards.expand(num_est, -1, -1, -1), -1, responses)  # (E, S, P, G)
        adv, quantiles = advantages(sampled)
        if step % config.log_every == 0 or step == config.steps:
            rows.append(
                _step_metrics(
                    config,
                    step,
                    probs,
                    logits,
                    responses,
                    sampled,
                    adv,
                    quantiles,
                    rewards,
                    level_index,
                    worst,
                    bundle_sizes,
                )
            )
        if step == config.steps:
            break
        policy_step(config, logits, responses, adv, optimizer)
        if progress is not None and (step % max(1, config.steps // 100) == 0):
            progress((step + 1) / config.steps)
    if progress is not None:
        progress(1.0)
    return rows


def policy_step(
    config: TabularConfig,
    logits: torch.Tensor,
    responses: torch.Tensor,
    adv: torch.Tensor,
    optimizer: AscentSGD,
) -> None:
    """Update ``logits`` (..., M) in place from G sampled responses (..., G) and their advantages.

    Plain: one SGD step along (1/G) Σ_i A_i (e_{y_i} − π), the exact gradient of the per-prompt
    surrogate. Clipped: ``ppo_epochs`` SGD steps down ``clipped_loss`` (the trainer's clipped
    surrogate) with the ratio π_θ(y)/π_old(y), π_old the sampling policy.
    """
    if config.clip_eps is None:
        ascent_step(optimizer, logits, sampled_policy_gradient(torch.softmax(logits, -1), responses, adv))
        return
    old = torch.gather(torch.log_softmax(logits, -1), -1, responses)
    for _ in range(config.ppo_epochs):
        theta = logits.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(clipped_loss(config, theta, responses, old, adv), theta)
        ascent_step(optimizer, logits, -grad)  # descent on the loss = ascent on the clipped objective


def clipped_loss(
    config: TabularConfig, logits: torch.Tensor, responses: torch.Tensor, old_logprobs: torch.Tensor, adv: torch.Tensor
) -> torch.Tensor:
    """The trainer's clipped surrogate loss (``theory.surrogate``, as ``llm/loss.py`` calls it) on the tabular policy.

    Each sampled response is a one-token sequence, so token and sequence ratios coincide:
    rows (..., G) flatten to (N, 1) with a full mask, and "seq-mean-token-sum" with
    ``num_sequences=G`` gives L = −(1/G) Σ_runs,prompts Σ_i min(w_i A_i, clip(w_i, 1 ± ε) A_i),
    the per-prompt mean over the group summed over prompts and runs (every prompt's logits get
    the gradient of its own group's surrogate).
    """
    logprobs = torch.gather(torch.log_softmax(logits, -1), -1, responses).reshape(-1, 1)
    mask = torch.ones_like(logprobs)
    eps = float(config.clip_eps)
    out = clipped_surrogate(
        logprobs,
        old_logprobs.reshape(-1, 1),
        adv.reshape(-1),
        mask,
        clip_eps_low=eps,
        clip_eps_high=eps,
        importance_ratio="sequence",
    )
    return aggregate(out.per_token_loss, mask, "seq-mean-token-sum", num_sequences=responses.shape[-1])


def _step_metrics(
    config,
    step,
    probs,
    logits,
    responses,
    sampled,
    adv,
    quantiles,
    rewards,
    level_index,
    worst,
    bundle_sizes,
    zero=1e-12,
):
    num_est, seeds = probs.shape[:2]
    log_probs = torch.log_softmax(logits, -1)
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
    for bundle in sorted(set(bundle_sizes)):  # one call per bundle size, all its estimators at once
        rows = torch.tensor([e for e, b in enumerate(bundle_sizes) if b == bundle])
        risk[rows] = torch.stack(_bundle_risk(config, probs[rows], level_index, bundle), -1)
    passk = exact_pass_at_ks(success.clamp(0, 1), [config.k, *config.passk_grid])
    return {
        "step": step,
        "mean_reward": exp_reward.mean(-1),
        "entropy": entropy,
        "cov_logp_adv": cov,
        "pass_at_1": success.mean(-1),
        "pass_at_k": passk[0].mean(-1),
        **{f"pass_at_k_{k}": at_k.mean(-1) for k, at_k in zip(config.passk_grid, passk[1:])},
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
    extra = [c for c in rows[0] if c.startswith("pass_at_k_")] if rows else []
    for col in METRIC_COLUMNS + extra:
        data[col] = np.concatenate([r[col].reshape(-1).numpy() for r in rows])
    return pd.DataFrame(data)

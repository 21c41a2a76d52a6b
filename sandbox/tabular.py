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
θ_p += η (1/G) Σ_i A_i ∇log π_p(y_i) or ``ppo_epochs`` clipped-ratio steps
(the response is the whole sequence, so its ratio is the sequence ratio).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from theory import risk_measures as rm
from theory.claims import exact_pass_at_k
from theory.dynamics import covariance, softmax_entropy

from ._common import (
    Progress,
    build_estimator,
    check_positive_float,
    check_positive_int,
    estimator_label,
    is_stateful,
    normalise_specs,
)

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
    reward_type: 'binary' | 'graded', clip_eps: None = plain PG, else the PPO clip ε,
    ppo_epochs: gradient steps per batch when clipping, k: pass@k level,
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
    risk_alpha: float = 0.2
    risk_beta: float = 0.8
    risk_omega: float = 0.5
    metric_bundle_size: int | None = None
    log_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_int("num_prompts", self.num_prompts)
        check_positive_int("responses_per_prompt", self.responses_per_prompt, minimum=2)
        check_positive_int("group_size", self.group_size, minimum=2)
        check_positive_int("steps", self.steps)
        check_positive_float("lr", self.lr)
        if not (float(self.peak) >= 0 and np.isfinite(self.peak)):
            raise ValueError(f"peak={self.peak!r} must be a finite number >= 0")
        if not -1.0 <= float(self.correctness_correlation) <= 1.0:
            raise ValueError(f"correctness_correlation={self.correctness_correlation!r} must lie in [-1, 1]")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty={self.difficulty!r} must be one of {DIFFICULTIES}")
        if self.reward_type not in REWARD_TYPES:
            raise ValueError(f"reward_type={self.reward_type!r} must be one of {REWARD_TYPES}")
        if self.clip_eps is not None:
            check_positive_float("clip_eps", self.clip_eps)
        check_positive_int("ppo_epochs", self.ppo_epochs)
        check_positive_int("k", self.k)
        if not 0.0 <= self.risk_alpha < self.risk_beta <= 1.0:
            raise ValueError(f"risk_alpha={self.risk_alpha} and risk_beta={self.risk_beta} must satisfy 0 <= alpha < beta <= 1")
        if not self.risk_omega >= 0:
            raise ValueError(f"risk_omega={self.risk_omega} must be >= 0")
        if self.metric_bundle_size is not None:
            check_positive_int("metric_bundle_size", self.metric_bundle_size)
            if self.num_prompts % self.metric_bundle_size:
                raise ValueError(f"metric_bundle_size={self.metric_bundle_size} must divide num_prompts={self.num_prompts}")
        check_positive_int("log_every", self.log_every)


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


def make_problem(config: TabularConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards, init_logits), each (P, M) float64, for one seed."""
    raise NotImplementedError


def run_tabular(config: TabularConfig, estimators: Sequence, seeds: int = 4, progress: Progress = None) -> TabularResult:
    raise NotImplementedError

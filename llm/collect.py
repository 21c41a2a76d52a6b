"""Collect → score → advantages: the first half of a training step, one sampling round at a time.

Every rank draws the same global prompt batch and keeps its slice; rewards
are gathered into the global (P, G) matrix; advantages are computed once on
that matrix by the theory/ estimator, identically on every rank, so RiskPO
bundles span ranks and its quantile tracker never diverges.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from llm.seeding import step_seed


@dataclass
class StepTally:
    """What one step saw over its sampling rounds (dynamic sampling may run several)."""

    rewards: dict[str, list[torch.Tensor]] = field(default_factory=lambda: {"total": []})
    reward_errors: dict[str, int] = field(default_factory=dict)
    estimator_metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=lambda: {"generate": 0.0, "reward": 0.0, "train": 0.0})
    rounds: int = 0

    @contextmanager
    def timed(self, name: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began


def collect(run, policy, step: int, round_: int):
    """Sample G completions from ``policy`` (the full weights, gathered by the caller once per step)
    for this rank's slice of the next global prompt batch: (examples, Rollout)."""
    from llm.data import format_prompt

    cfg, rank = run.cfg, run.accelerator.process_index
    per_rank = cfg.prompts_per_step // run.accelerator.num_processes
    global_batch = next(run.sampler)  # same on every rank (same seed, same state)
    examples = global_batch[rank * per_rank : (rank + 1) * per_rank]
    prompts = [format_prompt(run.tokenizer, ex.question, system_prompt=run.system_prompt) for ex in examples]
    rollout = run.backend.generate(policy, prompts, cfg.group_size, step_seed(cfg.seed, step, rank, round_))
    return examples, rollout


def score(run, rollout, examples, tally: StepTally, step: int) -> torch.Tensor:
    """Rewards of this rank's completions, gathered into the global (P, G) matrix (rank-major).

    A reward function that fails (raises or times out) on more than
    ``reward_max_error_frac`` of the step's completions, over all ranks, stops
    the run with its first error: training on its zeros would be silent garbage.
    """
    cfg, acc = run.cfg, run.accelerator
    rows = [ex for ex in examples for _ in range(cfg.group_size)]
    total, per_function, errors = run.rewards(rollout.completions, rows)
    names = run.rewards.names
    counts = acc.reduce(
        torch.tensor([float(errors.get(n, 0)) for n in names] + [float(len(rows))], device=acc.device), "sum"
    )
    for name, count in zip(names, counts[:-1].tolist()):
        tally.reward_errors[name] = tally.reward_errors.get(name, 0) + int(count)
        if count > cfg.reward_max_error_frac * float(counts[-1]):
            message = run.rewards.last_errors.get(name, "its first error happened on another process")
            raise RuntimeError(
                f"reward function {name!r} failed on {int(count)}/{int(counts[-1])} completions of step {step + 1} "
                f"(more than reward_max_error_frac={cfg.reward_max_error_frac}); first error: {message}"
            )
    local = total.to(acc.device, torch.float32).view(len(examples), cfg.group_size)
    global_rewards = acc.gather(local)
    for name, values in per_function.items():
        tally.rewards.setdefault(name, []).append(acc.gather(values.to(acc.device, torch.float32)).cpu())
    tally.rewards["total"].append(global_rewards.reshape(-1).cpu())
    return global_rewards


def advantages(run, global_rewards: torch.Tensor, tally: StepTally) -> torch.Tensor:
    """The estimator on the global matrix (same numbers on every rank); returns this rank's (P_rank, G) slice."""
    out = run.estimator(global_rewards.cpu().double())
    if not tally.estimator_metrics:  # the estimator's view of the step as first sampled; later rounds only refill
        tally.estimator_metrics = dict(out.metrics)
    per_rank = run.cfg.prompts_per_step // run.accelerator.num_processes
    rank = run.accelerator.process_index
    return out.advantages.float()[rank * per_rank : (rank + 1) * per_rank]


def prompt_groups(rollout, local_advantages: torch.Tensor, group_size: int) -> list[dict]:
    """Split a rollout into one dict per prompt (its G rows), flagging prompts with any non-zero advantage."""
    sampled = getattr(rollout, "sampled_logprobs", None)  # rollout engines that report their log-probs
    groups = []
    for p in range(local_advantages.shape[0]):
        rows = slice(p * group_size, (p + 1) * group_size)
        group = {
            "prompt_ids": rollout.prompt_ids[rows],
            "prompt_mask": rollout.prompt_mask[rows],
            "completion_ids": rollout.completion_ids[rows],
            "completion_mask": rollout.completion_mask[rows],
            "advantages": local_advantages[p],
            "signal": bool((local_advantages[p].abs() > 0).any()),
        }
        if sampled is not None:
            group["sampled_logprobs"] = sampled[rows].float()
        groups.append(group)
    return groups


def enough_signal(run, groups: list[dict]) -> bool:
    """DAPO dynamic sampling: does every rank hold its share of prompts whose advantages are not all zero?"""
    acc = run.accelerator
    per_rank = run.cfg.prompts_per_step // acc.num_processes
    with_signal = torch.tensor([sum(g["signal"] for g in groups)], device=acc.device)
    return bool((acc.gather(with_signal) >= per_rank).all())


def stack_groups(groups: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Concatenate per-prompt groups (possibly from different rounds, so different widths) into one batch."""

    def cat(key: str, left: bool, pad) -> torch.Tensor:
        parts = [g[key] for g in groups]
        width = max(p.shape[1] for p in parts)
        padded = []
        for p in parts:
            fill = torch.full((p.shape[0], width - p.shape[1]), pad, dtype=p.dtype, device=p.device)
            padded.append(torch.cat([fill, p] if left else [p, fill], dim=1))
        return torch.cat(padded, dim=0)

    batch = {
        "prompt_ids": cat("prompt_ids", True, pad_token_id),
        "prompt_mask": cat("prompt_mask", True, 0),
        "completion_ids": cat("completion_ids", False, pad_token_id),
        "completion_mask": cat("completion_mask", False, 0),
        "advantages": torch.cat([g["advantages"] for g in groups]),
    }
    if all("sampled_logprobs" in g for g in groups):
        batch["sampled_logprobs"] = cat("sampled_logprobs", False, 0.0)
    return batch

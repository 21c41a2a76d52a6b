"""Rewards: the scoring pipeline (``pipeline``), its worker pool (``workers``) and the built-in
reward functions (``builtin``). The pipeline's public names are importable from here."""

from llm.rewards.pipeline import (
    BUILTIN_REWARDS,
    RewardFunction,
    RewardPipeline,
    count_boxed,
    extract_boxed,
    format_reward,
    math_verify_reward,
    reasoning_gym_reward,
    resolve_reward_function,
)

__all__ = [
    "RewardFunction",
    "BUILTIN_REWARDS",
    "RewardPipeline",
    "count_boxed",
    "extract_boxed",
    "format_reward",
    "math_verify_reward",
    "reasoning_gym_reward",
    "resolve_reward_function",
]

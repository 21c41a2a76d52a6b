"""verl custom reward function (reward.custom_reward_function.path=examples/verl/reward.py):
math-verify on the last \\boxed{} answer, 1 correct / 0 otherwise, as both papers score it."""

from llm.integrations.verl import math_verify_score as compute_score

__all__ = ["compute_score"]

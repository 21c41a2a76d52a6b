"""Lenient verifiable reward for small models that rarely write \\boxed{}.

The built-in reward ``final_answer`` (``llm.rewards.builtin:final_answer_reward`` by import
path, which keeps working) follows the RewardFunction signature of llm.rewards:

    rewards: [[final_answer, 1.0], [format, 0.1]]

It hands the WHOLE completion to math-verify, whose default extraction takes
the final answer in priority order (a \\boxed{} answer, else the last LaTeX or
plain expression such as "2 - 1 = 1"). SmolLM2-135M answers easy arithmetic
in prose and almost never boxes it, so the strict ``math_verify`` built-in
scores it 0 everywhere; this one still measures whether the final number is
right, while the ``format`` term rewards learning to box it. Runs in the
reward worker processes (timeouts there), like ``math_verify``.
"""

from __future__ import annotations

__all__ = ["final_answer_reward"]


def final_answer_reward(completions: list[str], examples: list) -> list[float]:
    """1.0 when math-verify finds the completion's final answer equal to ``example.answer``, else 0.0."""
    from math_verify import parse, verify

    rewards = []
    for completion, example in zip(completions, examples):
        predicted = parse(completion, parsing_timeout=5)
        gold = parse("\\boxed{" + str(example.answer) + "}", parsing_timeout=5)
        rewards.append(1.0 if predicted and gold and verify(gold, predicted, timeout_seconds=5) else 0.0)
    return rewards

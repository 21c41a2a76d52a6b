"""Stub reward functions for the trainer tests (importable as ``test_llm_train_stubs:<name>``).

Kept in a module of their own so subprocess runs (accelerate launch) can import
them by path; pytest collects no tests from it.
"""

import zlib


def crc_reward(completions, examples):
    """Deterministic pseudo-random reward in [0, 1): varies across completions, so groups have signal."""
    return [(zlib.crc32(text.encode()) % 1000) / 1000.0 for text in completions]


crc_reward.in_process = True


def raising_reward(completions, examples):
    raise RuntimeError("this reward always fails")


raising_reward.in_process = True


def half_constant_reward(completions, examples):
    """0.5 for every completion of 'even' questions (zero group variance), crc noise for the others."""
    return [
        0.5 if zlib.crc32(ex.question.encode()) % 2 == 0 else (zlib.crc32(text.encode()) % 1000) / 1000.0
        for text, ex in zip(completions, examples)
    ]


half_constant_reward.in_process = True

"""llm.rewards: \\boxed{} extraction, math-verify equivalences, the worker pipeline's failure modes."""

from __future__ import annotations

import sys
import textwrap
import time

import pytest
import torch

from llm.data import Example, load_dataset_examples
from llm.rewards import (
    RewardPipeline,
    count_boxed,
    extract_boxed,
    format_reward,
    math_verify_reward,
    reasoning_gym_reward,
)

TIMEOUT_S = 1.5

# Importable by name in the spawned workers: the pool starts after this module is on sys.path.
USER_REWARDS = textwrap.dedent(
    """
    import math, os, time

    def length_reward(completions, examples):
        return [len(c) / 10 for c in completions]

    def sleepy_reward(completions, examples):
        if any("HANG" in c for c in completions):
            time.sleep(60)  # stands in for a sympy call that never returns
        return [1.0] * len(completions)

    def raising_reward(completions, examples):
        if any("BAD" in c for c in completions):
            raise RuntimeError("cannot score this")
        return [0.25] * len(completions)

    def nan_reward(completions, examples):
        return [math.nan] * len(completions)

    def wrong_length_reward(completions, examples):
        return [1.0, 1.0, 1.0][: len(completions) + 1]

    def text_reward(completions, examples):
        return ["yes"] * len(completions)

    def crashing_reward(completions, examples):
        if any("CRASH" in c for c in completions):
            os._exit(3)
        return [1.0] * len(completions)

    not_a_function = 3
    """
)


@pytest.fixture(scope="module")
def user_module(tmp_path_factory):
    directory = tmp_path_factory.mktemp("user_rewards")
    (directory / "riskrl_test_user_rewards.py").write_text(USER_REWARDS)
    sys.path.insert(0, str(directory))
    yield "riskrl_test_user_rewards"
    sys.path.remove(str(directory))
    sys.modules.pop("riskrl_test_user_rewards", None)


def _example(answer, i=0):
    return Example(id=str(i), question="q", answer=answer, source="test")


# ----------------------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so \\boxed{42}.", "42"),
        ("\\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\fbox{7}", "7"),
        ("\\boxed{3} and \\boxed{4", "3"),  # the unbalanced last box is not an answer
        ("no answer here", None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


def test_format_reward_needs_exactly_one_balanced_nonempty_box():
    completions = ["x \\boxed{5}", "\\boxed{5} \\boxed{6}", "\\boxed{}", "\\boxed{5", "5", "\\boxed{{a}{b}}"]
    assert format_reward(completions, [_example("5")] * 6) == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert [count_boxed(c) for c in completions] == [1, 2, 1, 1, 0, 1]


# ----------------------------------------------------------------------------- math-verify


@pytest.mark.parametrize(
    "gold, boxed, expected",
    [
        ("0.5", "1/2", 1.0),
        ("1/2", "0.5", 1.0),
        ("\\frac{1}{2}", "0.5", 1.0),
        ("0.5", "\\frac{1}{2}", 1.0),
        ("3", "4", 0.0),
        ("3", "3", 1.0),
        ("\\{1,2\\}", "\\{2,1\\}", 1.0),
        ("\\{1,2\\}", "\\{1,3\\}", 0.0),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)", 1.0),
        ("27", "27.0", 1.0),
        ("70000", "70,000", 1.0),
        ("x^2+1", "1+x^2", 1.0),
        ("x^2+1", "x^2-1", 0.0),
    ],
)
def test_math_verify_known_pairs(gold, boxed, expected):
    assert math_verify_reward([f"The answer is \\boxed{{{boxed}}}."], [_example(gold)]) == [expected]


def test_math_verify_without_box_scores_zero():
    assert math_verify_reward(["the answer is 3"], [_example("3")]) == [0.0]


def test_reasoning_gym_reward_uses_the_task_scorer():
    examples = load_dataset_examples("reasoning_gym:basic_arithmetic?max_terms=2&max_digits=2", limit=3)
    right = [f"\\boxed{{{e.answer}}}" for e in examples]
    wrong = [f"\\boxed{{{int(e.answer) + 1}}}" for e in examples]
    assert reasoning_gym_reward(right, examples) == [1.0, 1.0, 1.0]
    assert reasoning_gym_reward(wrong, examples) == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="metadata"):
        reasoning_gym_reward(right[:1], [_example("1")])


# ----------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def pipeline(user_module):
    with RewardPipeline(
        [
            ("math_verify", 1.0),
            ("format", 0.5),
            (f"{user_module}:sleepy_reward", 2.0),
            (f"{user_module}:raising_reward", 4.0),
            (f"{user_module}:crashing_reward", 0.0),
        ],
        num_workers=2,
        timeout_s=TIMEOUT_S,
    ) as pipe:
        pipe([" \\boxed{1}"], [_example("1")])  # start the workers outside the timed tests
        yield pipe


def test_pipeline_total_is_the_weighted_sum(pipeline, user_module):
    completions = ["\\boxed{0.5}", "\\boxed{4}", "\\boxed{2} \\boxed{3}", "BAD \\boxed{7}"]
    examples = [_example("1/2"), _example("3"), _example("3"), _example("7")]
    total, per_function, errors = pipeline(completions, examples)
    expected = {
        "math_verify": [1.0, 0.0, 1.0, 1.0],
        "format": [1.0, 1.0, 0.0, 1.0],
        f"{user_module}:sleepy_reward": [1.0, 1.0, 1.0, 1.0],
        f"{user_module}:raising_reward": [0.25, 0.25, 0.25, 0.0],
        f"{user_module}:crashing_reward": [1.0, 1.0, 1.0, 1.0],
    }
    for name, values in expected.items():
        assert per_function[name].tolist() == values, name
    weights = [1.0, 0.5, 2.0, 4.0, 0.0]
    manual = [sum(w * values[i] for w, values in zip(weights, expected.values())) for i in range(4)]
    assert total.tolist() == pytest.approx(manual, abs=1e-6)  # float32 sums of exact binary fractions
    assert errors == {name: (1 if "raising" in name else 0) for name in expected}


def test_hanging_item_scores_zero_within_the_deadline(pipeline, user_module):
    completions = ["HANG \\boxed{1}", "fine \\boxed{1}", "also fine \\boxed{2}"]
    start = time.monotonic()
    _, per_function, errors = pipeline(completions, [_example("1")] * 3)
    elapsed = time.monotonic() - start
    name = f"{user_module}:sleepy_reward"
    assert per_function[name].tolist() == [0.0, 1.0, 1.0]
    assert errors[name] == 1 and pipeline.last_timeouts[name] == 1
    # deadline + slack for killing and respawning one worker while the other scores the remaining items
    assert elapsed < TIMEOUT_S + 5.0  # vs the 60 s the item would take
    assert per_function["math_verify"].tolist() == [1.0, 1.0, 0.0]  # pool recovered for the other functions


def test_worker_crash_scores_zero_and_pool_recovers(pipeline, user_module):
    name = f"{user_module}:crashing_reward"
    _, per_function, errors = pipeline(["CRASH", "ok"], [_example("1")] * 2)
    assert per_function[name].tolist() == [0.0, 1.0] and errors[name] == 1
    _, per_function, errors = pipeline(["ok \\boxed{1}"], [_example("1")])
    assert per_function["math_verify"].tolist() == [1.0] and errors[name] == 0


@pytest.mark.parametrize("function, message", [("nan_reward", "non-finite"), ("text_reward", "numbers")])
def test_non_finite_or_non_numeric_reward_is_an_error(user_module, function, message):
    with RewardPipeline([(f"{user_module}:{function}", 1.0)], num_workers=0) as pipe:
        with pytest.raises(ValueError, match=f"{function}.*{message}"):
            pipe(["a", "b"], [_example("1")] * 2)


def test_non_finite_reward_from_a_worker_is_an_error(user_module):
    with RewardPipeline([(f"{user_module}:nan_reward", 1.0)], num_workers=1, timeout_s=10) as pipe:
        with pytest.raises(ValueError, match="nan_reward.*non-finite"):
            pipe(["a"], [_example("1")])


def test_in_process_raise_zeroes_the_batch_and_counts_it():
    def flaky(completions, examples):
        raise KeyError("missing")

    total, per_function, errors = RewardPipeline([(flaky, 1.0), ("format", 1.0)], num_workers=0)(
        ["\\boxed{1}", "x"], [_example("1")] * 2
    )
    assert per_function["flaky"].tolist() == [0.0, 0.0] and errors == {"flaky": 2, "format": 0}
    assert total.tolist() == [1.0, 0.0]


def test_in_process_user_function_and_length_checks(user_module):
    pipe = RewardPipeline([(f"{user_module}:length_reward", 1.0)], num_workers=0)
    total, _, _ = pipe(["abcde", ""], [_example("1")] * 2)
    assert total.dtype == torch.float32 and total.tolist() == [0.5, 0.0]
    with pytest.raises(ValueError, match="2 completions but 1 examples"):
        pipe(["a", "b"], [_example("1")])
    with pytest.raises(ValueError, match="wrong_length_reward.*returned 2 values for 1"):
        RewardPipeline([(f"{user_module}:wrong_length_reward", 1.0)], num_workers=0)(["a"], [_example("1")])


@pytest.mark.parametrize(
    "specs, kwargs, message",
    [
        ([("no_such_reward", 1.0)], {}, "unknown reward function 'no_such_reward'"),
        ([("no_such_module_xyz:f", 1.0)], {}, "cannot import module 'no_such_module_xyz'"),
        ([("USER:not_a_function", 1.0)], {}, "no callable 'not_a_function'"),
        ([("format", float("nan"))], {}, "weight"),
        ([("format", 1.0), ("format", 2.0)], {}, "listed twice"),
        ([], {}, "at least one"),
        ([("format", 1.0)], {"num_workers": -1}, "num_workers"),
        ([("format", 1.0)], {"timeout_s": 0}, "timeout_s"),
    ],
)
def test_bad_pipeline_config_fails_at_construction(user_module, specs, kwargs, message):
    specs = [(name.replace("USER", user_module), weight) for name, weight in specs]
    with pytest.raises(ValueError, match=message):
        RewardPipeline(specs, **kwargs)


def test_final_answer_is_a_builtin_name_and_its_import_path_still_resolves():
    from llm.rewards.builtin import final_answer_reward
    from llm.rewards.workers import resolve_reward_function

    assert resolve_reward_function("final_answer") is final_answer_reward
    assert resolve_reward_function("llm.rewards.builtin:final_answer_reward") is final_answer_reward
    examples = [Example(id=str(i), question="q", answer="3", source="test") for i in range(2)]
    # prose final answers, no \boxed{}: the lenient reward scores the right one 1 and the wrong one 0
    with RewardPipeline([("final_answer", 1.0)], num_workers=0) as rewards:
        total, per_function, errors = rewards(["so 1 + 2 = 3", "so 1 + 2 = 4"], examples)
    assert per_function["final_answer"].tolist() == [1.0, 0.0] and errors == {"final_answer": 0}

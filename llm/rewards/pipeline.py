"""Verifiable rewards: math-verify on \\boxed{} answers (``math_verify``) or on the final answer
(``final_answer``), a format reward, user functions.

A reward function has the signature

    def my_reward(completions: list[str], examples: list[Example]) -> list[float]

returning one finite number per completion (``Example`` from ``llm.data``:
``.question``, ``.answer``, ``.id``, ``.source``, ``.metadata``). Refer to it as
``"package.module:my_reward"`` in a config; the module must be importable
(on ``PYTHONPATH``) in every process.

``RewardPipeline([("math_verify", 1.0), ("format", 0.1)])`` scores a batch:

* ``math_verify``, ``reasoning_gym`` and user import paths run item by item in
  worker processes, each item with a hard deadline of ``timeout_s``; a worker
  still busy past it is killed and replaced and the item scores 0, so a
  pathological completion cannot hang training;
* ``format`` (a regex-level check), plain callables passed in directly, and
  functions marked ``fn.in_process = True`` (e.g. a batched reward model) run
  in the calling process on the whole batch, without a deadline;
* a function that raises is logged, scores 0 for the affected items and is
  counted in the returned error counts; a NaN/inf or non-numeric reward is a
  ``ValueError`` naming the function (a bug, never something to average away).

``num_workers=0`` runs everything in-process (for debugging; math-verify then
relies on its own signal-based timeout, which only works in the main thread).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import torch

from llm.data import Example
from llm.rewards.workers import (
    BUILTIN_REWARDS,
    ScoringPool,
    count_boxed,
    extract_boxed,
    format_reward,
    math_verify_reward,
    reasoning_gym_reward,
    resolve_reward_function,
)

logger = logging.getLogger(__name__)

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

RewardFunction = Callable[[list[str], list[Example]], list[float]]

# Cheap pure-Python checks gain nothing from a round trip to a worker.
_IN_PROCESS_BUILTINS = {"format"}


class RewardPipeline:
    """Weighted sum of reward functions; see the module docstring for where each one runs.

    ``__call__(completions, examples)`` returns ``(total (N,), {name: raw rewards (N,)},
    {name: number of items that raised or timed out})``; total = Σ weight · raw.
    """

    def __init__(
        self,
        specs: Sequence[tuple[str | Callable, float]],
        num_workers: int = 2,
        timeout_s: float = 5.0,
    ):
        if not specs:
            raise ValueError("reward specs must list at least one (name, weight) pair")
        if int(num_workers) != num_workers or num_workers < 0:
            raise ValueError(f"num_workers={num_workers} must be an integer >= 0")
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s={timeout_s} must be a finite number > 0")
        self.timeout_s = float(timeout_s)
        self.names: list[str] = []
        self.weights: dict[str, float] = {}
        self.functions: dict[str, Callable] = {}
        self.in_worker: dict[str, bool] = {}
        for index, spec in enumerate(specs):
            if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
                raise ValueError(f"reward spec #{index} must be a (name, weight) pair, got {spec!r}")
            name_or_function, weight = spec
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ValueError(f"reward spec #{index}: weight={weight!r} must be a finite number")
            if callable(name_or_function):
                name = getattr(name_or_function, "__name__", f"reward_{index}")
                function, in_worker = name_or_function, False
            elif isinstance(name_or_function, str) and name_or_function.strip():
                name = name_or_function.strip()
                function = resolve_reward_function(name)
                in_worker = (
                    num_workers > 0 and name not in _IN_PROCESS_BUILTINS and not getattr(function, "in_process", False)
                )
            else:
                raise ValueError(
                    f"reward spec #{index}: name must be a non-empty string or a callable, got {name_or_function!r}"
                )
            if name in self.weights:
                raise ValueError(f"reward function {name!r} is listed twice")
            self.names.append(name)
            self.weights[name] = float(weight)
            self.functions[name] = function
            self.in_worker[name] = in_worker
        self._pool = ScoringPool(int(num_workers), self.timeout_s) if any(self.in_worker.values()) else None
        self.last_timeouts: dict[str, int] = {name: 0 for name in self.names}
        self.last_errors: dict[str, str] = {}  # name -> first error message of the last call

    # ------------------------------------------------------------------ scoring

    @staticmethod
    def _check_values(name: str, values, expected: int) -> list[float]:
        try:
            floats = [float(value) for value in values]
        except (TypeError, ValueError):
            raise ValueError(f"reward function {name!r} returned {values!r}; expected a list of numbers") from None
        if len(floats) != expected:
            raise ValueError(f"reward function {name!r} returned {len(floats)} values for {expected} completions")
        bad = [i for i, value in enumerate(floats) if not math.isfinite(value)]
        if bad:
            raise ValueError(
                f"reward function {name!r} returned a non-finite reward {floats[bad[0]]} (item {bad[0]}); rewards "
                "must be finite"
            )
        return floats

    def _score_in_process(self, name: str, completions: list[str], examples: list[Example]) -> tuple[list[float], int]:
        function = self.functions[name]
        try:
            if function is math_verify_reward:
                values = function(completions, examples, timeout_s=self.timeout_s)
            else:
                values = function(completions, examples)
        except Exception as error:
            logger.warning(
                "reward %r raised on a batch of %d (scored 0): %s: %s",
                name,
                len(completions),
                type(error).__name__,
                error,
            )
            self.last_errors[name] = f"{type(error).__name__}: {error}"
            return [0.0] * len(completions), len(completions)
        return self._check_values(name, values, len(completions)), 0

    def _score_in_workers(self, names: list[str], completions: list[str], examples: list[Example]):
        items = [(name, completion, example) for name in names for completion, example in zip(completions, examples)]
        results = self._pool.run(items)
        scores: dict[str, list[float]] = {}
        errors: dict[str, int] = {}
        timeouts: dict[str, int] = {}
        size = len(completions)
        for offset, name in enumerate(names):
            values, first_error = [], None
            errors[name] = timeouts[name] = 0
            for status, value in results[offset * size : (offset + 1) * size]:
                if status == "ok":
                    values.extend(self._check_values(name, value, 1))
                elif status == "bad":
                    raise ValueError(f"reward function {name!r} {value}")
                else:
                    values.append(0.0)
                    errors[name] += 1
                    if status == "timeout":
                        timeouts[name] += 1
                    first_error = first_error or (
                        value if status == "error" else f"timed out after {self.timeout_s:g} s"
                    )
            if errors[name]:
                self.last_errors[name] = first_error
                logger.warning(
                    "reward %r failed on %d/%d completions (scored 0; %d timed out); first: %s",
                    name,
                    errors[name],
                    size,
                    timeouts[name],
                    first_error,
                )
            scores[name] = values
        return scores, errors, timeouts

    def __call__(self, completions: list[str], examples: list[Example]):
        if len(completions) != len(examples):
            raise ValueError(f"got {len(completions)} completions but {len(examples)} examples; they must pair up")
        if not all(isinstance(completion, str) for completion in completions):
            raise ValueError("completions must be strings")
        completions, examples = list(completions), list(examples)
        raw: dict[str, list[float]] = {}
        error_counts = {name: 0 for name in self.names}
        self.last_timeouts = {name: 0 for name in self.names}
        self.last_errors = {}
        worker_names = [name for name in self.names if self.in_worker[name]]
        if worker_names and completions:
            scores, errors, timeouts = self._score_in_workers(worker_names, completions, examples)
            raw.update(scores)
            error_counts.update(errors)
            self.last_timeouts.update(timeouts)
        for name in self.names:
            if not self.in_worker[name]:
                raw[name], error_counts[name] = self._score_in_process(name, completions, examples)
        per_function = {name: torch.tensor(raw.get(name, []), dtype=torch.float32) for name in self.names}
        total = torch.zeros(len(completions), dtype=torch.float32)
        for name in self.names:
            total += self.weights[name] * per_function[name]
        return total, per_function, error_counts

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> RewardPipeline:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

"""Reward scoring that runs inside worker processes, and the pool that runs it.

Kept free of torch so a freshly spawned worker is ready in well under a
second. ``ScoringPool`` gives every item its own hard deadline: a worker
still busy past it is killed and replaced, which is the only reliable way to
stop a sympy computation stuck in C code (math-verify's own signal timeouts
cannot interrupt those).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_connections
from typing import Any

from llm.rewards.builtin import final_answer_reward

BOXED_COMMANDS = ("\\boxed", "\\fbox")
_SYS_PATH_ENV = "RISKRL_REWARD_WORKER_SYS_PATH"
_PRELOAD_ENV = "RISKRL_REWARD_WORKER_PRELOAD"


# ----------------------------------------------------------------------------- answer extraction


def _boxed_spans(text: str) -> list[tuple[int, int | None]]:
    """(start of content, end of content or None when unbalanced) for every \\boxed{ / \\fbox{."""
    spans = []
    index = 0
    while True:
        starts = [(text.find(command + "{", index), command) for command in BOXED_COMMANDS]
        starts = [(position, command) for position, command in starts if position >= 0]
        if not starts:
            return spans
        position, command = min(starts)
        content_start = position + len(command) + 1
        depth = 1
        cursor = content_start
        while cursor < len(text) and depth:
            if text[cursor] == "{":
                depth += 1
            elif text[cursor] == "}":
                depth -= 1
            cursor += 1
        spans.append((content_start, cursor - 1 if depth == 0 else None))
        index = content_start


def extract_boxed(text: str) -> str | None:
    """Content of the last balanced ``\\boxed{...}`` (or ``\\fbox{...}``), None if there is none."""
    for start, end in reversed(_boxed_spans(text)):
        if end is not None:
            return text[start:end].strip()
    return None


def count_boxed(text: str) -> int:
    return len(_boxed_spans(text))


# ----------------------------------------------------------------------------- built-in rewards


def math_verify_reward(completions: list[str], examples: list[Any], timeout_s: float = 5.0) -> list[float]:
    """1.0 when the last \\boxed{} answer is mathematically equal to the gold answer (math-verify), else 0.0."""
    from math_verify import parse, verify

    seconds = max(1, int(round(timeout_s)))
    rewards = []
    for completion, example in zip(completions, examples):
        predicted = extract_boxed(completion)
        if predicted is None or not predicted:
            rewards.append(0.0)
            continue
        gold = parse("\\boxed{" + str(example.answer) + "}", parsing_timeout=seconds)
        target = parse("\\boxed{" + predicted + "}", parsing_timeout=seconds)
        rewards.append(1.0 if gold and target and verify(gold, target, timeout_seconds=seconds) else 0.0)
    return rewards


def format_reward(completions: list[str], examples: list[Any]) -> list[float]:
    """1.0 when the completion holds exactly one \\boxed{...}, balanced and non-empty, else 0.0."""
    rewards = []
    for completion in completions:
        spans = _boxed_spans(completion)
        well_formed = (
            len(spans) == 1 and spans[0][1] is not None and completion[spans[0][0] : spans[0][1]].strip() != ""
        )
        rewards.append(1.0 if well_formed else 0.0)
    return rewards


def reasoning_gym_reward(completions: list[str], examples: list[Any]) -> list[float]:
    """The task's own reasoning-gym scorer applied to the last \\boxed{} answer (0.0 when absent)."""
    import reasoning_gym

    rewards = []
    for completion, example in zip(completions, examples):
        task = (getattr(example, "metadata", None) or {}).get("source_dataset")
        if task is None:
            raise ValueError(f"example {example.id!r} has no reasoning-gym metadata (source_dataset)")
        predicted = extract_boxed(completion)
        if predicted is None:
            rewards.append(0.0)
            continue
        entry = {"question": example.question, "answer": example.answer, "metadata": example.metadata}
        rewards.append(float(reasoning_gym.get_score_answer_fn(task)(predicted, entry)))
    return rewards


BUILTIN_REWARDS: dict[str, Callable] = {
    "math_verify": math_verify_reward,
    "final_answer": final_answer_reward,
    "format": format_reward,
    "reasoning_gym": reasoning_gym_reward,
}


def resolve_reward_function(name: str) -> Callable:
    """Built-in name or ``package.module:function`` import path -> the callable."""
    if name in BUILTIN_REWARDS:
        return BUILTIN_REWARDS[name]
    if ":" not in name:
        raise ValueError(
            f"unknown reward function {name!r}: use one of {sorted(BUILTIN_REWARDS)} or 'package.module:function'"
        )
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"reward function {name!r}: cannot import module {module_name!r} ({error})") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"reward function {name!r}: module {module_name!r} has no callable {attribute!r}")
    return function


# ----------------------------------------------------------------------------- worker pool


def _worker_loop(reader, writer, preload: tuple[str, ...]) -> None:
    for module_name in preload:  # pay import costs before reporting ready, not inside a deadline
        try:
            importlib.import_module(module_name)
        except ImportError:
            pass
    writer.send(("ready", None, None))
    functions: dict[str, Callable] = {}
    while True:
        try:
            message = reader.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, name, completion, example, timeout_s = message
        try:
            if name not in functions:
                functions[name] = resolve_reward_function(name)
            function = functions[name]
            if function is math_verify_reward:
                values = function([completion], [example], timeout_s=timeout_s)
            else:
                values = function([completion], [example])
            try:
                payload = [float(value) for value in values]
            except (TypeError, ValueError):
                writer.send((task_id, "bad", f"returned {values!r}, expected a list of numbers"))
                continue
            writer.send((task_id, "ok", payload))
        except Exception as error:  # a user function's failure is data for the caller, not a crash
            writer.send((task_id, "error", f"{type(error).__name__}: {error}"))


def serve() -> None:
    """Worker process entry point: messages on stdin/stdout, user prints diverted to stderr."""
    if sys.platform.startswith("linux"):
        # die with the parent even while stuck in a pathological item (EOF on stdin only helps when idle)
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    sys.path[:0] = [p for p in json.loads(os.environ.get(_SYS_PATH_ENV, "[]")) if p not in sys.path]
    message_fd = os.dup(1)
    os.dup2(2, 1)  # a print() in a user reward function must not corrupt the message stream
    preload = tuple(filter(None, os.environ.get(_PRELOAD_ENV, "").split(",")))
    _worker_loop(Connection(0, writable=False), Connection(message_fd, readable=False), preload)


class _Worker:
    """A plain ``python -c`` subprocess rather than multiprocessing's spawn: spawn re-imports the
    parent's ``__main__`` (the trainer, with torch and transformers) in every worker, costing
    seconds per start and hundreds of MB per worker; this starts in well under a second."""

    def __init__(self, preload: tuple[str, ...]):
        env = dict(os.environ)
        env[_SYS_PATH_ENV] = json.dumps([p or os.getcwd() for p in sys.path])
        env[_PRELOAD_ENV] = ",".join(preload)
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from llm.rewards.workers import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.reader = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.writer = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.process.stdout.close()
        self.process.stdin.close()
        self.connection = self.reader  # what the pool waits on
        self.ready = False
        self.started = time.monotonic()
        self.task: int | None = None
        self.deadline = float("inf")

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message) -> None:
        self.writer.send(message)

    def kill(self) -> None:
        if self.is_alive():
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - kill -9 does not get ignored
            pass
        for connection in (self.reader, self.writer):
            try:
                connection.close()
            except OSError:
                pass


class ScoringPool:
    """Worker processes that score (function name, completion, example) items with a per-item deadline.

    Fresh interpreters, never forks: forking a process that holds torch/gloo
    threads can deadlock.
    """

    startup_timeout_s = 120.0
    max_startup_failures = 3

    def __init__(self, num_workers: int, timeout_s: float, preload: tuple[str, ...] = ("math_verify",)):
        self.num_workers = num_workers
        self.timeout_s = timeout_s
        self.preload = preload
        self._workers: list[_Worker] = []
        self.restarts = 0
        self._startup_failures = 0

    def _ensure_workers(self) -> None:
        self._workers = [worker for worker in self._workers if worker.is_alive()]
        while len(self._workers) < self.num_workers:
            self._workers.append(_Worker(self.preload))

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers.remove(worker)
        self._workers.append(_Worker(self.preload))
        self.restarts += 1

    def run(self, items: list[tuple[str, str, Any]]) -> list[tuple[str, Any]]:
        """One (status, value) per item: ("ok", [float]), ("error", msg), ("bad", msg) or ("timeout", None)."""
        self._ensure_workers()
        results: list[tuple[str, Any] | None] = [None] * len(items)
        pending = deque(range(len(items)))
        while pending or any(worker.task is not None for worker in self._workers):
            for worker in self._workers:
                if worker.ready and worker.task is None and pending:
                    task_id = pending[0]
                    name, completion, example = items[task_id]
                    try:
                        worker.send((task_id, name, completion, example, self.timeout_s))
                    except OSError:  # died while idle; its EOF is handled below and the item goes to another worker
                        continue
                    pending.popleft()
                    worker.task = task_id
                    worker.deadline = time.monotonic() + self.timeout_s
            busy_deadlines = [worker.deadline for worker in self._workers if worker.task is not None]
            busy_deadlines += [w.started + self.startup_timeout_s for w in self._workers if not w.ready]
            wait_s = max(0.0, min(busy_deadlines) - time.monotonic()) if busy_deadlines else None
            by_connection = {worker.connection: worker for worker in self._workers}
            for connection in wait_for_connections(list(by_connection), timeout=wait_s):
                worker = by_connection[connection]
                try:
                    task_id, status, value = connection.recv()
                except (EOFError, OSError) as died:  # the worker died (segfault, os._exit, OOM kill)
                    if not worker.ready:
                        self._startup_failures += 1
                        if self._startup_failures >= self.max_startup_failures:
                            self.close()
                            raise RuntimeError(
                                f"reward worker processes exit while starting (exit code {worker.exitcode}); "
                                "run with num_workers=0 to see the error in-process"
                            ) from died
                    if worker.task is not None:
                        results[worker.task] = ("error", f"worker process died (exit code {worker.exitcode})")
                    self._replace(worker)
                    continue
                if task_id == "ready":
                    worker.ready = True
                    self._startup_failures = 0
                    continue
                results[task_id] = (status, value)
                worker.task = None
            now = time.monotonic()
            if any(not w.ready and now - w.started > self.startup_timeout_s for w in self._workers):
                self.close()
                raise RuntimeError(f"reward worker processes did not start within {self.startup_timeout_s:.0f} s")
            for worker in list(self._workers):
                if worker.task is not None and now >= worker.deadline:
                    results[worker.task] = ("timeout", None)
                    self._replace(worker)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.send(None)
            except (OSError, ValueError):
                pass
        for worker in self._workers:
            try:
                worker.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            worker.kill()
        self._workers = []

"""Simulator runs for the views: all estimators in one call, cached per estimator and settings.

Each estimator's run is kept (``memo``) under (kind, choice, settings, seeds), so adding a
curve to a comparison runs only that curve, and changing nothing runs nothing. The runs that
are missing go to the simulator together — one tensor program over estimators and seeds —
with a progress callback that the page turns into a progress bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pandas as pd

from . import memo
from .choices import Choice
from .runs import run_each

Progress = Callable[[float], None] | None


class _Slice:
    """One estimator's part of a multi-estimator result (the same attributes, frames filtered)."""

    def __init__(self, result, label: str):
        for name in ("metrics", "policy"):
            frame = getattr(result, name, None)
            if frame is not None:
                setattr(self, name, frame[frame["estimator"] == label].reset_index(drop=True))


def run_together(runner, config, choices: Sequence[Choice], seeds: int, progress: Progress = None) -> dict:
    """{choice: (result or None, errors)} from one ``runner`` call over all choices.

    The simulators give every estimator its own random stream from the same seed, so a curve
    is the same whether its estimator runs alone or with others (tests/app/test_app.py checks it
    against single-estimator runs). If the batch raises (one invalid combination, say k > G),
    the choices run one by one so that the others still show and the bad one is explained.
    """
    choices = list(dict.fromkeys(choices))
    try:
        result = runner(config, [(c.name, c.kwargs()) for c in choices], seeds=seeds, progress=progress)
    except ValueError:
        results, errors = run_each(runner, config, choices, seeds, progress)
        out = {choice: (result, []) for choice, result in results}
        for message in errors:
            failed = next(c for c in choices if message.startswith(f"{c.label}: "))
            out[failed] = (None, [message])
        return out
    labels = list(dict.fromkeys(result.metrics["estimator"]))
    if len(labels) != len(choices):
        raise RuntimeError(f"the simulator returned {len(labels)} estimators for {len(choices)} requested")
    return {choice: (_Slice(result, label), []) for choice, label in zip(choices, labels)}


def frames(result, choice: Choice, attribute: str) -> pd.DataFrame:
    frame = getattr(result, attribute).copy()
    frame["estimator"] = choice.label  # the app's label ("riskpo (α=0.2, …)") instead of the sandbox's
    return frame


def cached_runs(
    kind: str, runner, config, choices: Sequence[Choice], seeds: int, settings_key: tuple, progress: Progress = None
) -> list[tuple[object, list[str]]]:
    """[(result or None, errors)] per choice, running only the missing ones (together)."""
    keys = [(kind, choice, settings_key, seeds) for choice in choices]
    missing = [choice for choice, key in zip(choices, keys) if not memo.has(key)]
    if missing:
        for choice, value in run_together(runner, config, missing, seeds, progress).items():
            memo.put((kind, choice, settings_key, seeds), value)
    return [memo.get(key) for key in keys]


def all_cached(kind: str, choices: Sequence[Choice], seeds: int, settings_key: tuple) -> bool:
    return all(memo.has((kind, choice, settings_key, seeds)) for choice in choices)


_WARMED = threading.Event()


def warm_up_in_background() -> None:
    """Once per server: import the simulators and what ``torch.optim`` loads lazily on its first
    optimizer (torch._dynamo, ~1 s of CPU) in a daemon thread, after the first page is drawn, so
    that the first simulation does not pay for them while the user waits."""
    if _WARMED.is_set():
        return
    _WARMED.set()

    def work() -> None:
        import torch

        import sandbox  # noqa: F401

        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)

    threading.Thread(target=work, name="riskrl-warm-up", daemon=True).start()

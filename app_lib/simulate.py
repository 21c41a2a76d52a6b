"""Simulator runs for the views: all estimators in one call, cached per estimator and settings.

Each estimator's run is kept (``memo``) under (kind, choice, settings, seeds), so adding a
curve to a comparison runs only that curve, and changing nothing runs nothing. The runs that
are missing go to the simulator together — one tensor program over estimators and seeds —
with a progress callback that the page turns into a progress bar.
"""

from __future__ import annotations

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
    against single-estimator runs). If the batch raises naming one estimator ("estimator
    <label>: ...", e.g. one without an exact update on the bandit), that estimator is set aside
    with its message and the others still run together; any other error runs the choices one
    by one so that the others still show and the bad one is explained.
    """
    from sandbox.common import estimator_label

    choices = list(dict.fromkeys(choices))
    out: dict = {}
    remaining = list(choices)
    while remaining:
        try:
            result = runner(config, [(c.name, c.kwargs()) for c in remaining], seeds=seeds, progress=progress)
        except ValueError as err:
            named = [c for c in remaining if str(err).startswith(f"estimator {estimator_label(c.name, c.kwargs())}:")]
            if len(named) == 1:
                out[named[0]] = (None, [f"{named[0].label}: {err}"])
                remaining.remove(named[0])
                continue
            results, errors = run_each(runner, config, remaining, seeds, progress)
            out.update({choice: (result, []) for choice, result in results})
            for message in errors:
                failed = next(c for c in remaining if message.startswith(f"{c.label}: "))
                out[failed] = (None, [message])
            break
        labels = list(dict.fromkeys(result.metrics["estimator"]))
        if len(labels) != len(remaining):
            raise RuntimeError(f"the simulator returned {len(labels)} estimators for {len(remaining)} requested")
        out.update({choice: (_Slice(result, label), []) for choice, label in zip(remaining, labels)})
        break
    return {choice: out[choice] for choice in choices}


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

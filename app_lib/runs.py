"""Adapters around the sandbox simulators: one run per estimator, errors collected, labels unified.

Each estimator runs on its own so that (a) one invalid combination (say k > G,
or a pass@k estimator on non-binary rewards) is reported without losing the
others, and (b) an estimator's curve does not change when another one is added
to the comparison (the simulators share one random stream across a batch of runs).
"""
from __future__ import annotations

from typing import Callable, Sequence

import pandas as pd

from .choices import Choice

Progress = Callable[[float], None] | None


def run_each(runner, config, choices: Sequence[Choice], seeds: int, progress: Progress = None):
    """Call ``runner(config, [(name, params)], seeds, progress)`` once per choice.

    Returns (list of (choice, result), list of error messages). ``progress``
    receives the overall fraction done in [0, 1].
    """
    results, errors = [], []
    total = max(len(choices), 1)
    for i, choice in enumerate(choices):
        def report(fraction: float, i: int = i) -> None:
            if progress is not None:
                progress(min(1.0, (i + float(fraction)) / total))

        try:
            results.append((choice, runner(config, [(choice.name, choice.kwargs())], seeds=seeds, progress=report)))
        except ValueError as err:
            errors.append(f"{choice.label}: {err}")
        report(1.0)
    return results, errors


def stack_frames(results, attribute: str) -> pd.DataFrame:
    """Concatenate ``result.<attribute>`` DataFrames, replacing the sandbox label with the app's."""
    frames = []
    for choice, result in results:
        frame = getattr(result, attribute).copy()
        frame["estimator"] = choice.label
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def final_summary(metrics: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Mean and std over seeds at each estimator's last logged step (one row per estimator)."""
    last_step = metrics.groupby("estimator", sort=False)["step"].transform("max")
    last = metrics[metrics["step"] == last_step]
    grouped = last.groupby("estimator", sort=False)[list(columns)]
    mean, std = grouped.mean(), grouped.std().fillna(0.0)
    out = pd.DataFrame(index=mean.index)
    for col in columns:
        out[col] = mean[col]
        out[f"{col}_std"] = std[col]
    return out.reset_index()

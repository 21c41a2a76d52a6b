"""Adapters around the sandbox simulators: one run per estimator, errors collected, labels unified.

Each estimator runs on its own so that one invalid combination (say k > G, or a pass@k
estimator on non-binary rewards) is reported without losing the others, and each run is
cached on its own (``app_lib.simulate``), so adding an estimator reruns only that one. (An
estimator's curve would not change either way: the simulators give every estimator the same
random numbers.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def optimal_prob_change_curve(rewards: Sequence[float], probs: Sequence[float], betas: Sequence[float]) -> pd.DataFrame:
    """dπ(a*)/dη of the exact RS-GRPO policy-gradient step for each β (β = 0: the mean objective).

    Thin adapter over the sandbox's Lemma 2–4 helper, evaluated on one instance
    for a whole β grid; returns DataFrame(beta, d_pi_star).
    """
    import torch

    from sandbox.claims import optimal_prob_change  # the quantity Lemmas 2–4 are about

    r = torch.tensor(list(rewards), dtype=torch.float64)
    p = torch.tensor(list(probs), dtype=torch.float64)
    if bool((p <= 0).any()) or abs(float(p.sum()) - 1.0) > 1e-9:
        raise ValueError(f"probs={list(probs)} must be positive and sum to 1")
    logits = p.log()
    values = [float(optimal_prob_change(r, logits, float(b))) for b in betas]
    return pd.DataFrame({"beta": list(betas), "d_pi_star": values})


def lemma_thresholds(curve: pd.DataFrame) -> dict:
    """β₀ (Lemma 3) and β₁ (Lemma 4) of a Δπ(a*) curve, by the one definition in ``theory.rs_lemmas``:
    β₀ the smallest grid β from which Δπ(a*) stays > 0; β₁ the smallest grid β >= β₀ from which it
    never rises again. NaN when the grid shows no such point."""
    import torch

    from theory.rs_lemmas import lemma3_threshold, lemma4_threshold

    betas = [float(b) for b in curve["beta"]]
    values = torch.tensor(curve["d_pi_star"].to_numpy(dtype=float), dtype=torch.float64)
    return {"beta0": float(lemma3_threshold(betas, values)), "beta1": float(lemma4_threshold(betas, values))}

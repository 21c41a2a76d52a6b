"""pass@k against k, at the end of training and at matched pass@1 (the central plot of both papers).

Input: a tidy table of seed-mean curves (estimator, k, step, pass_at_1, pass_at_k) — one
simulator run per k (the simulator logs one k; its trajectories do not depend on k) or
the precomputed preset. Output: pass@k for every k at the last step, and at the first
step where each estimator's pass@1 reaches a common target (linear interpolation between
logged steps). The target is the highest pass@1 every estimator reaches, so all methods
are compared at equal pass@1 — training speed differences (GRPO's std normalisation acts
as an adaptive step) do not masquerade as pass@k differences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

K_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def value_at_first_crossing(x: np.ndarray, y: np.ndarray, target: float) -> tuple[float, float]:
    """(step fraction index, y) where x first reaches ``target``; linear between logged points, NaN if never."""
    above = np.nonzero(x >= target - 1e-12)[0]
    if not len(above):
        return float("nan"), float("nan")
    j = int(above[0])
    if j == 0 or x[j] == x[j - 1]:
        return float(j), float(y[j])
    w = (target - x[j - 1]) / (x[j] - x[j - 1])
    return j - 1 + w, float(y[j - 1] + w * (y[j] - y[j - 1]))


def matched_target(curves: pd.DataFrame) -> float:
    """The highest pass@1 that every estimator reaches on its training curve."""
    k1 = curves[curves["k"] == curves["k"].min()]
    return float(k1.groupby("estimator", sort=False)["pass_at_1"].max().min())


def passk_vs_k(curves: pd.DataFrame, target: float | None = None) -> pd.DataFrame:
    """Rows (estimator, k, when, pass_at_k, pass_at_1, step): ``when`` is 'end of training' or 'matched pass@1'."""
    needed = {"estimator", "k", "step", "pass_at_1", "pass_at_k"}
    missing = needed - set(curves.columns)
    if missing:
        raise ValueError(f"curves lacks columns {sorted(missing)}")
    target = matched_target(curves) if target is None else float(target)
    rows = []
    for (label, k), part in curves.sort_values("step").groupby(["estimator", "k"], sort=False):
        last = part.iloc[-1]
        rows.append(
            {
                "estimator": label,
                "k": int(k),
                "when": "end of training",
                "pass_at_k": float(last["pass_at_k"]),
                "pass_at_1": float(last["pass_at_1"]),
                "step": float(last["step"]),
            }
        )
        steps = part["step"].to_numpy(dtype=float)
        where, value = value_at_first_crossing(part["pass_at_1"].to_numpy(), part["pass_at_k"].to_numpy(), target)
        step = float(np.interp(where, np.arange(len(steps)), steps)) if np.isfinite(where) else float("nan")
        rows.append(
            {
                "estimator": label,
                "k": int(k),
                "when": "matched pass@1",
                "pass_at_k": value,
                "pass_at_1": target,
                "step": step,
            }
        )
    return pd.DataFrame(rows)


def curves_from_runs(metrics_by_k: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Seed means of per-k simulator metrics (estimator, seed, step, pass_at_1, pass_at_k) into one table."""
    frames = []
    for k, metrics in metrics_by_k.items():
        mean = metrics.groupby(["estimator", "step"], sort=False)[["pass_at_1", "pass_at_k"]].mean().reset_index()
        frames.append(mean.assign(k=int(k)))
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["estimator", "step", "pass_at_1", "pass_at_k", "k"])
    )

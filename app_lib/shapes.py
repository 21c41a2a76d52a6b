"""View 1 data: advantage shapes for binary rewards, straight from the theory/ estimators.

Two tables:

* ``advantage_vs_accuracy``: one prompt, G responses of which c are correct.
  Each estimator is called on that (1, G) reward row; A⁺ is the advantage of
  a correct response, A⁻ of an incorrect one, Σ|A| the total magnitude the
  prompt contributes (the RS-GRPO paper's advantage figure).
* ``bundle_advantage_curve``: the exact law of a bundle score R_B for given
  question accuracies (``theory.bundles.bundle_score_distribution``) and the
  exact population advantage of each quantile-band estimator at every score,
  with its exact quantiles q_α, q_β (``theory.risk_measures.quantile``).
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from theory.bundles import bundle_score_distribution
from theory.risk_measures import quantile

from .choices import Choice


def binary_group(group_size: int, num_correct: int) -> torch.Tensor:
    """The (1, G) float64 reward row with the first c responses correct."""
    if not 0 <= num_correct <= group_size:
        raise ValueError(f"num_correct={num_correct} must lie in [0, group_size={group_size}]")
    rewards = torch.zeros(1, group_size, dtype=torch.float64)
    rewards[0, :num_correct] = 1.0
    return rewards


def advantage_vs_accuracy(choices: list[Choice], group_size: int) -> tuple[pd.DataFrame, list[str]]:
    """Rows (estimator, c, p_hat, adv_correct, adv_incorrect, sum_abs_adv) for c = 0..G.

    A⁺ is NaN at c = 0 (no correct response exists) and A⁻ at c = G.
    An estimator that rejects this G (e.g. k > G) is reported, not plotted.
    """
    rows, errors = [], []
    for choice in choices:
        try:
            estimator = choice.build()
            for c in range(group_size + 1):
                adv = estimator(binary_group(group_size, c)).advantages[0].double()
                rows.append(
                    {
                        "estimator": choice.label,
                        "c": c,
                        "p_hat": c / group_size,
                        "adv_correct": float(adv[0]) if c > 0 else math.nan,
                        "adv_incorrect": float(adv[-1]) if c < group_size else math.nan,
                        "sum_abs_adv": float(adv.abs().sum()),
                    }
                )
        except ValueError as err:
            errors.append(f"{choice.label}: {err}")
    columns = ["estimator", "c", "p_hat", "adv_correct", "adv_incorrect", "sum_abs_adv"]
    return pd.DataFrame(rows, columns=columns), errors


def bundle_accuracies(low: float, high: float, bundle_size: int) -> torch.Tensor:
    """B question accuracies evenly spread over [low, high] (one value if B = 1)."""
    if bundle_size < 1:
        raise ValueError(f"bundle_size={bundle_size} must be >= 1")
    if bundle_size == 1:
        return torch.tensor([(low + high) / 2], dtype=torch.float64)
    return torch.linspace(low, high, bundle_size, dtype=torch.float64)


def bundle_advantage_curve(
    choices: list[Choice], accuracies: tuple[float, ...]
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Exact bundle-score law and population advantages of the quantile-band choices.

    Returns (curve rows: estimator, score, prob, advantage;
    quantile rows: estimator, q_alpha, q_beta, alpha, beta; errors).
    """
    values, probs = bundle_score_distribution(torch.tensor(accuracies, dtype=torch.float64))
    curve, marks, errors = [], [], []
    for choice in choices:
        params = choice.kwargs()
        try:
            estimator = choice.build()
            advantages = estimator.population(values, probs)
        except (ValueError, NotImplementedError) as err:
            errors.append(f"{choice.label}: {err}")
            continue
        # CVaR has no upper level: its q_β column stays empty.
        alpha, beta = params["alpha"], params.get("beta")
        marks.append(
            {
                "estimator": choice.label,
                "alpha": alpha,
                "beta": math.nan if beta is None else beta,
                "q_alpha": float(quantile(values, probs, alpha)),
                "q_beta": math.nan if beta is None else float(quantile(values, probs, beta)),
            }
        )
        for z, p, a in zip(values.tolist(), probs.tolist(), advantages.tolist()):
            curve.append({"estimator": choice.label, "score": z, "prob": p, "advantage": a})
    return (
        pd.DataFrame(curve, columns=["estimator", "score", "prob", "advantage"]),
        pd.DataFrame(marks, columns=["estimator", "alpha", "beta", "q_alpha", "q_beta"]),
        errors,
    )

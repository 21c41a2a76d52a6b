"""Several runs of one tracked quantile-band estimator (the RiskPO family) stepped in one call.

A simulator trains R independent runs (seeds) of the same estimator side by side. Each run's
estimator instance keeps its own bundle-permutation generator and its own quantile tracker, so
calling ``est.compute`` once per run costs R passes through the bundling, the tracker and the
advantage, each with its argument checks. ``BandRuns`` advances the R runs together:

* each run's bundle permutation is drawn from that run's own generator (the same draws as
  ``compute``, in the same order);
* the R trackers are one ``theory.quantiles.BatchedQuantileTracker`` (row r is exactly run r's
  ``QuantileTracker``);
* the score -> advantage map runs on all rows at once with per-row quantiles (R, 1, 1) where it is
  elementwise (RiskPO, risk-seeking MVaR, RVaR, CVaR), and row by row otherwise.

Row r of the result is bit for bit what ``estimators[r].compute(rewards[r], None)`` returns
(tests/theory/test_theory_batched.py). The instances' own trackers are read once, at
construction, and not advanced afterwards: the runs' tracker state lives in ``self.tracker``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .bundles import check_bundle_size, random_bundle_permutation
from .checks import check_finite
from .estimators import CVaR, RiskPO, RiskSeekingMVaR, RVaR, _QuantileBandEstimator
from .quantiles import BatchedQuantileTracker

Tensor = torch.Tensor

__all__ = ["BandRuns"]

#: Estimator classes whose ``transform`` is elementwise in (score, q_α, q_β): one call serves every
#: run. Exact types: a subclass may couple the scores (``RiskPOCentred`` subtracts the batch mean).
ELEMENTWISE = (RiskPO, RiskSeekingMVaR, RVaR, CVaR)


class BandRuns:
    """R runs of one quantile-band estimator with ``quantile_source="tracker"``, one instance per run."""

    @staticmethod
    def supports(estimator) -> bool:
        """Tracked quantile-band estimators whose ``compute`` is the band estimator's own."""
        return (
            isinstance(estimator, _QuantileBandEstimator)
            and estimator.quantile_source == "tracker"
            and type(estimator).compute is _QuantileBandEstimator.compute
        )

    def __init__(self, estimators: Sequence[_QuantileBandEstimator]):
        estimators = list(estimators)
        if not estimators:
            raise ValueError("BandRuns needs at least one estimator instance")
        first = estimators[0]
        for est in estimators:
            if not self.supports(est) or type(est) is not type(first):
                raise ValueError(f"BandRuns takes tracked quantile-band estimators of one class, got {est!r}")
            if {k: v for k, v in est.params().items() if k != "seed"} != {
                k: v for k, v in first.params().items() if k != "seed"
            }:
                raise ValueError("BandRuns: every run must have the same parameters (the seed aside)")
        states = [est.tracker.state_dict() for est in estimators]
        if len({(s["initialized"], s["step"]) for s in states}) != 1:
            raise ValueError("BandRuns: every run's tracker must be at the same step")
        tracker = first.tracker
        self.tracker = BatchedQuantileTracker(
            len(estimators), tracker.levels, step_size=tracker.step_size, decay=tracker.decay
        )
        self.tracker.load_state_dict(
            {
                "levels": [s["levels"] for s in states],
                "values": [s["values"] for s in states],
                "initialized": states[0]["initialized"],
                "step": states[0]["step"],
                "crossings": [s["crossings"] for s in states],
            }
        )
        self.estimators = estimators
        self.bundle_size = first.bundle_size
        self.elementwise = type(first) in ELEMENTWISE

    def __call__(self, rewards: Tensor) -> tuple[Tensor, Tensor]:
        """rewards (R, P, G) -> (advantages (R, P, G), ordered quantiles (R, 2): q_α <= q_β per run)."""
        check_finite("rewards", rewards)
        if rewards.dim() != 3 or rewards.shape[0] != len(self.estimators):
            raise ValueError(f"rewards must have shape (runs={len(self.estimators)}, P, G), got {tuple(rewards.shape)}")
        runs, num_prompts, group_size = rewards.shape
        blocks = check_bundle_size(num_prompts, self.bundle_size)
        permutations = torch.stack(
            [
                random_bundle_permutation(num_prompts, group_size, est.generator, device=rewards.device)
                for est in self.estimators
            ]
        )
        scores = torch.gather(rewards, -1, permutations).reshape(runs, blocks, self.bundle_size, group_size).sum(2)
        # As compute: the tracker's iterates may cross; the advantage uses them ordered.
        q = torch.sort(self.tracker.update(scores), -1).values.to(scores.dtype)
        if self.elementwise:
            bundle_adv = self.estimators[0].transform(scores, q[:, 0, None, None], q[:, 1, None, None])
        else:
            bundle_adv = torch.stack(
                [est.transform(scores[r], q[r, 0], q[r, 1]) for r, est in enumerate(self.estimators)]
            )
        per_slot = bundle_adv.repeat_interleave(self.bundle_size, dim=1)
        return torch.empty_like(per_slot).scatter_(-1, permutations, per_slot), q

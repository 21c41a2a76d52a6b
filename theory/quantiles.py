"""Online quantile tracking for RiskPO (Ren et al., 2025, Algorithm 1).

Stochastic approximation of the u-quantile of a stream of bundle scores:

    q_{k+1} = q_k + γ_k (u − mean_j 1{R_j < q_k}),   γ_k = γ_0 / k^p.

At the root of the mean update F(q−) <= u <= F(q), i.e. q is a u-quantile.
``p = 0`` gives a constant step (tracks a drifting policy); p in (1/2, 1]
gives Robbins–Monro convergence for a fixed distribution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .checks import (
    check_bool,
    check_finite,
    check_finite_sequence,
    check_integer,
    check_nonnegative,
    check_positive,
    check_probability,
    check_real,
    check_state_keys,
    check_string_choice,
)
from .risk_measures import empirical_quantile

Tensor = torch.Tensor

__all__ = ["QuantileTracker", "BatchedQuantileTracker", "fraction_below"]


def fraction_below(quantiles: Tensor, scores: Tensor) -> Tensor:
    """mean_j 1{R_j < q_l} for each quantile q_l: shapes (L,), (n,) -> (L,)."""
    return (scores.reshape(1, -1) < quantiles.reshape(-1, 1)).to(quantiles.dtype).mean(-1)


class QuantileTracker:
    """Tracks several quantile levels of bundle scores across training steps.

    Args:
        levels: increasing quantile levels, e.g. (α, β) = (0.2, 0.8).
        step_size: γ_0 > 0.
        decay: p >= 0 in γ_k = γ_0 / k^p (0 = constant step).
        init: "batch" sets q to the first batch's empirical quantiles (then
            tracks from the second batch on); "given" starts from
            ``initial_values``.
        reduce_mean: optional ``Tensor -> Tensor`` applied to every statistic
            the update averages over the batch (the indicator means and the
            first-batch quantiles). Distributed training passes an all-reduce
            mean here so every rank holds bit-identical quantiles.

    Each level follows Algorithm 1's update on its own (RiskPO, step 7); the paper has no
    step that keeps them ordered, and neither does this class: a large constant step on
    discrete scores can leave q_α > q_β for a while. ``values`` holds the paper's iterates
    unchanged, ``crossings`` counts the updates after which they are out of order, and
    ``ordered()`` gives them sorted, which is what a consumer needing q_α <= q_β uses
    (the RiskPO estimators do).
    """

    def __init__(
        self,
        levels: Sequence[float] = (0.2, 0.8),
        step_size: float = 0.1,
        decay: float = 0.0,
        init: str = "batch",
        initial_values: Sequence[float] | None = None,
        reduce_mean: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if torch.is_tensor(levels):
            levels = levels.tolist()
        if isinstance(levels, (str, bytes)) or not isinstance(levels, (list, tuple)):
            raise TypeError(f"levels={levels!r} must be a list of quantile levels, got {type(levels).__name__}")
        levels = [check_real(f"levels[{i}]", u) for i, u in enumerate(levels)]
        if not levels:
            raise ValueError("levels must name at least one quantile level")
        for i, u in enumerate(levels):
            check_probability(f"levels[{i}]", u)
        if any(b <= a for a, b in zip(levels, levels[1:])):
            raise ValueError(f"levels={levels} must be strictly increasing")
        check_positive("step_size", check_real("step_size", step_size))
        check_nonnegative("decay", check_real("decay", decay))
        check_string_choice("init", init, ("batch", "given"))
        if reduce_mean is not None and not callable(reduce_mean):
            raise TypeError(f"reduce_mean must be callable or None, got {type(reduce_mean).__name__}")
        if init == "given":
            if initial_values is None:
                raise ValueError("init='given' needs initial_values with one value per level")
            initial_values = check_finite_sequence("initial_values", initial_values, length=len(levels))
        elif initial_values is not None:
            # Ignored by init='batch' (the first batch sets q): a configuration error, not a default.
            raise ValueError("initial_values are used only with init='given' (got init='batch')")
        self.levels = torch.tensor(levels, dtype=torch.float64)
        self.step_size = float(step_size)
        self.decay = float(decay)
        self.init = init
        self.reduce_mean = reduce_mean
        self.values = torch.tensor(
            initial_values if initial_values is not None else [0.0] * len(levels), dtype=torch.float64
        )
        self.initialized = init == "given"
        self.step = 0
        self.crossings = 0

    def current_step_size(self) -> float:
        """γ_k = γ_0 / k^p for the next update, k = step + 1 (tracking updates count from 1)."""
        return self.step_size / float(self.step + 1) ** self.decay if self.decay else self.step_size

    def _reduce(self, x: Tensor) -> Tensor:
        return self.reduce_mean(x) if self.reduce_mean is not None else x

    def update(self, scores: Tensor) -> Tensor:
        """Feed one batch of scores (any shape); returns the new quantiles (L,) float64."""
        check_finite("scores", scores)
        if scores.numel() == 0:
            raise ValueError("scores must not be empty")
        flat = scores.detach().reshape(-1).to(device="cpu", dtype=torch.float64)
        if not self.initialized:
            batch_q = torch.stack([empirical_quantile(flat, float(u)) for u in self.levels])
            self.values = self._reduce(batch_q)
            self.initialized = True
        else:
            gamma = self.current_step_size()
            self.step += 1
            below = self._reduce(fraction_below(self.values, flat))
            self.values = self.values + gamma * (self.levels - below)
        if bool((self.values[1:] < self.values[:-1]).any()):
            self.crossings += 1
        return self.values.clone()

    def ordered(self) -> Tensor:
        """The current iterates sorted (q_α <= q_β), without changing the tracker's state."""
        return torch.sort(self.values).values

    def state_dict(self) -> dict:
        return {
            "levels": self.levels.tolist(),
            "values": self.values.tolist(),
            "initialized": self.initialized,
            "step": self.step,
            "crossings": self.crossings,
            "step_size": self.step_size,
            "decay": self.decay,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` output; a malformed entry is an error naming its key, before anything changes."""
        check_state_keys(
            "QuantileTracker",
            state,
            {"levels": (list, tuple), "values": (list, tuple), "initialized": bool, "step": int},
        )
        levels = check_finite_sequence("QuantileTracker state['levels']", state["levels"])
        if [round(u, 12) for u in levels] != [round(float(u), 12) for u in self.levels]:
            raise ValueError(
                f"checkpoint quantile levels {state['levels']} differ from configured {self.levels.tolist()}"
            )
        values = check_finite_sequence("QuantileTracker state['values']", state["values"], length=len(levels))
        step = check_integer("QuantileTracker state['step']", state["step"], minimum=0)
        crossings = check_integer("QuantileTracker state['crossings']", state.get("crossings", 0), minimum=0)
        self.values = torch.tensor(values, dtype=torch.float64)
        self.initialized = check_bool("QuantileTracker state['initialized']", state["initialized"])
        self.step = step
        self.crossings = crossings


class BatchedQuantileTracker:
    """``runs`` independent copies of ``QuantileTracker`` (Algorithm 1 of RiskPO) advanced in one call.

    Row r of ``values`` (runs, L) follows exactly the scalar tracker's update on row r of the
    scores it is fed:

        q_{k+1} = q_k + γ_k (u − mean_j 1{R_j < q_k}),   γ_k = γ_0 / k^p,

    with every run at the same step k (a simulator advances all its (estimator, seed) runs in
    lockstep). ``init="batch"`` sets each row to its first batch's empirical quantiles
    (the order statistic x_(⌈n·u⌉), as ``theory.risk_measures.empirical_quantile``);
    ``init="given"`` starts from ``initial_values`` (L,) or (runs, L). ``crossings`` counts,
    per run, the updates after which its iterates are out of order; ``ordered()`` sorts them.
    Same arguments as ``QuantileTracker`` otherwise (``levels`` may differ per run: (runs, L)).
    """

    def __init__(
        self,
        runs: int,
        levels: Sequence[float] | Tensor = (0.2, 0.8),
        step_size: float = 0.1,
        decay: float = 0.0,
        init: str = "batch",
        initial_values: Sequence[float] | Tensor | None = None,
    ) -> None:
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise ValueError(f"runs={runs!r} must be an integer >= 1")
        level_rows = torch.as_tensor(levels, dtype=torch.float64)
        if level_rows.dim() == 1:
            level_rows = level_rows.expand(runs, -1)
        if level_rows.dim() != 2 or level_rows.shape[0] != runs or level_rows.shape[1] == 0:
            raise ValueError(
                f"levels must have shape (L,) or (runs={runs}, L) with L >= 1, got {tuple(level_rows.shape)}"
            )
        check_finite("levels", level_rows)
        if bool(((level_rows < 0) | (level_rows > 1)).any()):
            raise ValueError("levels must lie in [0, 1]")
        if bool((level_rows[:, 1:] <= level_rows[:, :-1]).any()):
            raise ValueError("levels must be strictly increasing in every run")
        check_positive("step_size", step_size)
        check_nonnegative("decay", decay)
        if init not in ("batch", "given"):
            raise ValueError(f"init={init!r} must be 'batch' or 'given'")
        self.levels = level_rows.clone()
        self.values = torch.zeros_like(self.levels)
        if init == "given":
            if initial_values is None:
                raise ValueError("init='given' needs initial_values")
            given = torch.as_tensor(initial_values, dtype=torch.float64)
            try:
                given = given.expand_as(self.levels).clone()
            except RuntimeError:
                raise ValueError(
                    f"initial_values shape {tuple(given.shape)} must be (L,) or (runs, L) = {tuple(self.levels.shape)}"
                ) from None
            check_finite("initial_values", given)
            self.values = given
        self.step_size = float(step_size)
        self.decay = float(decay)
        self.init = init
        self.initialized = init == "given"
        self.step = 0
        self.crossings = torch.zeros(runs, dtype=torch.long)

    @property
    def runs(self) -> int:
        return self.levels.shape[0]

    def current_step_size(self) -> float:
        """γ_k = γ_0 / k^p for the next update (as ``QuantileTracker.current_step_size``)."""
        return self.step_size / float(self.step + 1) ** self.decay if self.decay else self.step_size

    def update(self, scores: Tensor) -> Tensor:
        """Feed one batch per run: ``scores`` (runs, ...) -> the new quantiles (runs, L) float64."""
        check_finite("scores", scores)
        if scores.dim() < 1 or scores.shape[0] != self.runs:
            raise ValueError(f"scores must have shape (runs={self.runs}, ...), got {tuple(scores.shape)}")
        flat = scores.detach().reshape(self.runs, -1).to(device="cpu", dtype=torch.float64)
        n = flat.shape[1]
        if n == 0:
            raise ValueError("scores must not be empty")
        if not self.initialized:
            ordered = torch.sort(flat, -1).values
            # x_(⌈n·u⌉), 1-based; u = 0 takes the smallest score (as empirical_quantile).
            rank = torch.ceil(self.levels * n - 1e-12).long().clamp(min=1, max=n) - 1
            self.values = torch.gather(ordered, 1, rank)
            self.initialized = True
        else:
            gamma = self.current_step_size()
            self.step += 1
            below = (flat.unsqueeze(1) < self.values.unsqueeze(-1)).to(torch.float64).mean(-1)
            self.values = self.values + gamma * (self.levels - below)
        self.crossings += (self.values[:, 1:] < self.values[:, :-1]).any(-1).long()
        return self.values.clone()

    def ordered(self) -> Tensor:
        """The current iterates sorted within each run, without changing the state."""
        return torch.sort(self.values, -1).values

    def state_dict(self) -> dict:
        return {
            "levels": self.levels.tolist(),
            "values": self.values.tolist(),
            "initialized": self.initialized,
            "step": self.step,
            "crossings": self.crossings.tolist(),
            "step_size": self.step_size,
            "decay": self.decay,
        }

    def load_state_dict(self, state: dict) -> None:
        levels = torch.as_tensor(state["levels"], dtype=torch.float64)
        if levels.shape != self.levels.shape or not torch.allclose(levels, self.levels, rtol=0, atol=1e-12):
            raise ValueError(f"checkpoint quantile levels {state['levels']} differ from configured ones")
        values = torch.as_tensor(state["values"], dtype=torch.float64)
        if values.shape != self.levels.shape:
            raise ValueError(f"checkpoint values have shape {tuple(values.shape)}, expected {tuple(self.levels.shape)}")
        check_finite("values", values)
        self.values = values.clone()
        self.initialized = bool(state["initialized"])
        self.step = int(state["step"])
        self.crossings = torch.as_tensor(state.get("crossings", [0] * self.runs), dtype=torch.long).clone()

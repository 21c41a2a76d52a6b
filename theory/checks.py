"""Input validation shared by every theory/ function.

Every check raises ``ValueError`` whose message names the offending argument,
so a typo in a config surfaces as "alpha=0.9 must be < beta=0.8", not as a NaN
three layers down.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def check_finite(name: str, x: Tensor) -> Tensor:
    """Rejects NaN/inf: a NaN reward is a bug upstream, never something to average away."""
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if torch.is_complex(x):
        raise ValueError(
            f"{name} must be real, got a complex tensor ({x.dtype}); casting would drop the imaginary part"
        )
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise ValueError(f"{name} contains NaN or inf (first at index {bad}); rewards must be finite")
    return x


def check_rank(name: str, x: Tensor, rank: int) -> Tensor:
    if x.dim() != rank:
        raise ValueError(f"{name} must have {rank} dims, got shape {tuple(x.shape)}")
    return x


def check_group_size(name: str, size: int, minimum: int = 2) -> None:
    if size < minimum:
        raise ValueError(f"{name}={size}: a group statistic needs at least {minimum} samples per group")


def check_probability(name: str, value: float, *, open_low: bool = False, open_high: bool = False) -> None:
    v = float(value)
    lo_ok = v > 0.0 if open_low else v >= 0.0
    hi_ok = v < 1.0 if open_high else v <= 1.0
    if math.isnan(v) or not (lo_ok and hi_ok):
        lo = "(0" if open_low else "[0"
        hi = "1)" if open_high else "1]"
        raise ValueError(f"{name}={value} must lie in {lo}, {hi}")


def check_levels(alpha: float, beta: float, *, alpha_name: str = "alpha", beta_name: str = "beta") -> None:
    """Quantile levels 0 <= alpha < beta <= 1."""
    check_probability(alpha_name, alpha)
    check_probability(beta_name, beta)
    if not float(alpha) < float(beta):
        raise ValueError(f"{alpha_name}={alpha} must be < {beta_name}={beta}")


def check_nonnegative(name: str, value: float) -> None:
    """Finite and >= 0: an infinite weight or step turns every advantage into NaN one step later."""
    if not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"{name}={value} must be finite and >= 0")


def check_positive(name: str, value: float) -> None:
    """Finite and > 0."""
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name}={value} must be finite and > 0")


def check_nonempty_batch(name: str, x: Tensor) -> Tensor:
    """At least one row: an empty (0, G) batch has no advantages to compute and no mean to log."""
    if x.dim() >= 1 and x.shape[0] == 0:
        raise ValueError(f"{name} has no rows (shape {tuple(x.shape)}): nothing to compute")
    return x


def check_k(k: int, n: int, *, k_name: str = "k", n_name: str = "n") -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"{k_name}={k} must be a positive integer")
    if k > n:
        raise ValueError(f"{k_name}={k} must be <= {n_name}={n} (cannot draw k of n samples)")


def check_unit_interval(name: str, x: Tensor) -> Tensor:
    """Success probabilities / pass rates: every entry in [0, 1] (a reward of 1.3 is not a probability)."""
    if bool(((x < 0) | (x > 1)).any()):
        raise ValueError(f"{name} must lie in [0, 1] (got values in [{float(x.min())!r}, {float(x.max())!r}])")
    return x


def check_choice(name: str, value, choices) -> None:
    """A string option that must be one of a fixed set (a config's mode, backend, ...)."""
    if value not in tuple(choices):
        raise ValueError(f"{name}={value!r} must be one of {tuple(choices)}")


def check_int(name: str, value, minimum: int | None = None) -> None:
    """An integer (bool is not one) and, if given, >= minimum: counts, sizes, steps."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ValueError(f"{name}={value!r} must be an integer")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value} must be >= {minimum}")


def check_finite_number(name: str, value) -> None:
    """A real number that is neither NaN nor ±inf (a rate, a coefficient, a temperature)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number")

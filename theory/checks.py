"""Input validation shared by every theory/ function.

Every check raises ``ValueError`` whose message names the offending argument,
so a typo in a config surfaces as "alpha=0.9 must be < beta=0.8", not as a NaN
three layers down.
"""

from __future__ import annotations

import math
import numbers

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


# --------------------------------------------------------------------------- constructor arguments
# The estimator constructors (theory/estimators.py) and QuantileTracker (theory/quantiles.py) take
# plain Python values from configs, URLs and CLIs. bool is an int and '2' converts to 2.0 through
# float(), so a missing type check turns `bundle_size: true` into B = 1 without a word; these checks
# name the argument, say what it must be and never convert lossily.


def _type_name(value) -> str:
    return type(value).__name__


def check_real(name: str, value) -> float:
    """A real number (int, float, numpy scalar or 0-d real tensor; not bool, not str); returns it as float.

    Raises TypeError naming ``name`` for anything else. NaN/inf are left to the range checks.
    """
    if torch.is_tensor(value):
        if value.dim() != 0 or value.dtype == torch.bool or torch.is_complex(value):
            raise TypeError(f"{name} must be a real number, got a tensor of shape {tuple(value.shape)} ({value.dtype})")
        return float(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or _type_name(value) == "bool_":
        raise TypeError(f"{name}={value!r} must be a real number, got {_type_name(value)}")
    return float(value)


def check_finite_real(name: str, value) -> float:
    """A real number that is neither NaN nor ±inf; returns it as float."""
    v = check_real(name, value)
    if not math.isfinite(v):
        raise ValueError(f"{name}={value!r} must be finite")
    return v


def check_integer(name: str, value, minimum: int | None = None) -> int:
    """An integer (int, numpy integer, or an integral float such as 2.0; not bool, not str) >= minimum; returns int."""
    if torch.is_tensor(value) or isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be an integer, got {_type_name(value)}")
    if _type_name(value) == "bool_":
        raise TypeError(f"{name}={value!r} must be an integer, got {_type_name(value)}")
    if not isinstance(value, numbers.Integral) and not float(value).is_integer():
        raise ValueError(f"{name}={value!r} must be an integer")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r} must be >= {minimum}")
    return int(value)


def check_bool(name: str, value) -> bool:
    """A switch: True or False only (the string 'false' is truthy, so it is rejected, not converted)."""
    if not isinstance(value, bool) and _type_name(value) != "bool_":
        raise TypeError(f"{name}={value!r} must be True or False, got {_type_name(value)}")
    return bool(value)


def check_string_choice(name: str, value, choices) -> str:
    """A string that is one of ``choices``; TypeError for a non-string, ValueError for an unknown one."""
    if not isinstance(value, str):
        raise TypeError(f"{name}={value!r} must be a string, one of {tuple(choices)}, got {_type_name(value)}")
    check_choice(name, value, choices)
    return value


def check_generator(name: str, value) -> torch.Generator | None:
    """None or a ``torch.Generator`` (an int seed here is a mistake: pass ``seed=`` to the constructor)."""
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {_type_name(value)}")
    return value


def check_device(name: str, value) -> torch.device:
    """A ``torch.device`` or a device string torch understands ('cpu', 'cuda:0'); returns the device."""
    if isinstance(value, torch.device):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name}={value!r} must be a torch.device or a device string, got {_type_name(value)}")
    try:
        return torch.device(value)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"{name}={value!r} is not a device torch knows ({error})") from None


def check_finite_sequence(name: str, values, length: int | None = None) -> list[float]:
    """A list/tuple/1-D tensor of finite reals (of ``length`` items if given); returns a list of floats.

    A quantile tracker started or loaded with NaN or ±inf would keep it forever (the update
    q + γ(u − F̂(q)) never leaves ±inf) and every RiskPO advantage after it would be NaN.
    """
    if torch.is_tensor(values):
        if values.dim() != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(values.shape)}")
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{name}={values!r} must be a list of numbers, got {_type_name(values)}")
    if length is not None and len(values) != length:
        raise ValueError(f"{name} must have {length} value(s), one per level; got {len(values)}")
    return [check_finite_real(f"{name}[{i}]", v) for i, v in enumerate(values)]


def check_quantile_pair(q_low, q_high, *, low_name: str = "q_alpha", high_name: str = "q_beta") -> None:
    """Quantile values (floats or tensors) that are finite and ordered q_low <= q_high.

    An infinite quantile is as wrong as a NaN one: (q − R)⁺ with q = inf is inf and the
    band term inf − inf is NaN, so every advantage would be NaN.
    """
    low, high = torch.as_tensor(q_low), torch.as_tensor(q_high)
    for qname, q, raw in ((low_name, low, q_low), (high_name, high, q_high)):
        if torch.is_complex(q) or q.dtype == torch.bool:
            raise TypeError(f"{qname}={raw!r} must be real")
        if q.is_floating_point() and not bool(torch.isfinite(q).all()):
            raise ValueError(f"quantile {qname}={raw} must be finite (not NaN or ±inf)")
    if bool((low > high).any()):
        raise ValueError(f"{low_name}={q_low} must be <= {high_name}={q_high}")


def check_state_keys(owner: str, state, required: dict[str, type | tuple[type, ...]]) -> None:
    """A state dict that is a dict with every ``required`` key of the given type; errors name the key.

    Loading a malformed checkpoint must say which entry is wrong, not fail in arithmetic later.
    """
    if not isinstance(state, dict):
        raise TypeError(f"{owner} state must be a dict, got {_type_name(state)}")
    missing = [key for key in required if key not in state]
    if missing:
        raise ValueError(f"{owner} state is missing key(s) {missing}; it has {sorted(map(str, state))}")
    for key, types in required.items():
        value = state[key]
        wrong_bool = isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,))
        if wrong_bool or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
            raise TypeError(f"{owner} state[{key!r}] must be {want}, got {_type_name(value)}: {value!r}")

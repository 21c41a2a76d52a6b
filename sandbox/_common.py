"""Helpers shared by the simulators: estimator specs, labels, validation."""
from __future__ import annotations

import contextlib

from typing import Callable, Sequence

from theory import estimator_parameters, get_estimator
from theory.estimators import AdvantageEstimator

EstimatorSpec = tuple[str, dict]
Progress = Callable[[float], None] | None


def estimator_label(name: str, params: dict) -> str:
    """'rs_grpo(beta=4)': a readable, unique key for one estimator configuration."""
    if not params:
        return name
    args = ",".join(f"{k}={_fmt(v)}" for k, v in sorted(params.items()))
    return f"{name}({args})"


def _fmt(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def normalise_specs(estimators: Sequence) -> list[EstimatorSpec]:
    """Accepts ``[("grpo", {}), "dr_grpo", ("rs_grpo", {"beta": 4})]``; checks names and parameters early."""
    if isinstance(estimators, (str, tuple)):
        estimators = [estimators]
    specs: list[EstimatorSpec] = []
    for item in estimators:
        if isinstance(item, str):
            name, params = item, {}
        else:
            if len(item) != 2 or not isinstance(item[1], dict):
                raise ValueError(f"estimators entries must be (name, params-dict) pairs, got {item!r}")
            name, params = item[0], dict(item[1])
        get_estimator(name, **params)  # raises ValueError naming a bad name/parameter
        specs.append((name, params))
    if not specs:
        raise ValueError("estimators must name at least one estimator")
    labels = [estimator_label(n, p) for n, p in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"estimators contains duplicates: {labels}")
    return specs


def build_estimator(name: str, params: dict, *, default_bundle_size: int | None = None, seed: int | None = None) -> AdvantageEstimator:
    """One estimator instance; fills ``bundle_size``/``seed`` defaults only where the user gave none."""
    accepted = estimator_parameters(name)
    params = dict(params)
    if default_bundle_size is not None and "bundle_size" in accepted and "bundle_size" not in params:
        params["bundle_size"] = default_bundle_size
    if seed is not None and "seed" in accepted and "seed" not in params:
        params["seed"] = seed
    return get_estimator(name, **params)


def is_stateful(est: AdvantageEstimator) -> bool:
    """Estimators whose output couples rows (bundles, batch/tracked quantiles) need one instance per seed."""
    source = getattr(est, "quantile_source", None)
    return source in ("tracker", "batch") or getattr(est, "bundle_size", 1) > 1


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def check_positive_float(name: str, value) -> float:
    v = float(value)
    if not v > 0 or v != v or v == float("inf"):
        raise ValueError(f"{name}={value!r} must be a finite number > 0")
    return v


class single_thread(contextlib.ContextDecorator):
    """Run torch on one intra-op thread (as ``with`` block or decorator): the simulators'
    tensors are tiny, and on a shared 2-core machine thread hand-offs cost more than the
    arithmetic (a 200×6 softmax took 3 ms with two threads under load). Restores the old setting."""

    def __init__(self):
        self._previous: list[int] = []  # a stack, so nested and recursive uses restore correctly

    def __enter__(self):
        import torch

        self._previous.append(torch.get_num_threads())
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self._previous.pop())
        return False

"""Helpers shared by the simulators: estimator specs and labels, batched advantages, action sampling."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch

from theory import estimator_parameters, get_estimator
from theory.advantages import rs_grpo_batched
from theory.band_runs import BandRuns
from theory.estimator_registry import AdvantageEstimator
from theory.estimators import RSGRPO

from .controls import CONTROL_ESTIMATORS, control_parameters, make_control

Tensor = torch.Tensor

EstimatorSpec = tuple[str, dict]
Progress = Callable[[float], None] | None


# The environment under which the shipped results (results/sandbox/summary.json, the explorer's presets) are
# computed and re-checked. Runs depend on torch's kernel dispatch: its AVX-512 and AVX2 kernels sum in
# other orders, and a last-bit difference can flip a seed's trajectory (measured: one RiskPO seed of the
# tabular sandbox from step 164; third-decimal changes in the claims table). AVX2 is supported by every
# x86-64 machine the project runs on; set before torch is imported (a fresh interpreter).
REPRODUCIBLE_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
REPRODUCIBLE_PREFIX = " ".join(f"{name}={value}" for name, value in REPRODUCIBLE_ENV.items())


def reproducible_env_unmet() -> dict[str, str | None]:
    """The ``REPRODUCIBLE_ENV`` settings this process does not run with, each with what it has instead
    (torch's capability as dispatched, not the variable: an unset or unsupported value falls back)."""
    have = {
        "ATEN_CPU_CAPABILITY": torch.backends.cpu.get_cpu_capability().lower(),
        "MKL_CBWR": os.environ.get("MKL_CBWR"),
    }
    return {name: have[name] for name, value in REPRODUCIBLE_ENV.items() if have[name] != value}


def estimator_label(name: str, params: dict) -> str:
    """'rs_grpo(beta=4)': a readable, unique key for one estimator configuration."""
    if name == "negated" and "estimator" in params:  # 'negated[riskpo(bundle_size=5)]'
        inner = {k: v for k, v in params.items() if k != "estimator"}
        return f"negated[{estimator_label(str(params['estimator']), inner)}]"
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
        make_estimator(name, params)  # raises ValueError naming a bad name/parameter
        specs.append((name, params))
    if not specs:
        raise ValueError("estimators must name at least one estimator")
    labels = [estimator_label(n, p) for n, p in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"estimators contains duplicates: {labels}")
    return specs


def make_estimator(name: str, params: dict) -> AdvantageEstimator:
    """A registered estimator, or one of the sandbox's negative controls (``sandbox.controls``)."""
    if name in CONTROL_ESTIMATORS:
        return make_control(name, params)
    return get_estimator(name, **params)


def build_estimator(
    name: str, params: dict, *, default_bundle_size: int | None = None, seed: int | None = None
) -> AdvantageEstimator:
    """One estimator instance; fills ``bundle_size``/``seed`` defaults only where the user gave none."""
    params = dict(params)
    accepted = control_parameters(name, params) if name in CONTROL_ESTIMATORS else estimator_parameters(name)
    if default_bundle_size is not None and "bundle_size" in accepted and "bundle_size" not in params:
        params["bundle_size"] = default_bundle_size
    if seed is not None and "seed" in accepted and "seed" not in params:
        params["seed"] = seed
    return make_estimator(name, params)


def is_stateful(est: AdvantageEstimator) -> bool:
    """Estimators whose output couples rows (bundles, batch/tracked quantiles) need one instance per seed."""
    source = getattr(est, "quantile_source", None)
    return source in ("tracker", "batch") or getattr(est, "bundle_size", 1) > 1


class RunAdvantages:
    """Advantages of every (estimator, seed) run of a simulator, in as few estimator calls as possible.

    ``rewards`` (E, S, P, G): estimator e, seed s, P prompts (1 in a bandit) of G sampled rewards.
    Three kinds of estimator:

    * stateful (tracked/batch quantiles, bundles): one instance per seed, so that each run keeps its
      own quantile tracker and bundle permutation stream; the tracked quantile-band ones (RiskPO
      family) step all their seeds in one ``theory.band_runs.BandRuns`` call (one batched tracker;
      each row exactly its instance's ``compute``), the others are called per run;
    * RS-GRPO with β ≠ 0: every β in one call of ``theory.advantages.rs_grpo_batched`` (a tensor of
      temperatures, one per estimator row; each row is exactly what ``rs_grpo`` gives for its β);
    * every other estimator: one call on all its seeds' rows (its advantage is per-row).

    Calls ``est.compute`` rather than ``est(...)``: the simulators' rewards are finite float64 by
    construction, and ``__call__``'s summary metrics cost more than the advantage in a long loop.
    """

    def __init__(
        self, specs: Sequence[EstimatorSpec], seeds: int, *, seed: int, default_bundle_size: int | None = None
    ):
        self.seeds = seeds
        self.instances: list[list[AdvantageEstimator]] = []
        self.stateless: list[int] = []
        self.stateful: list[int] = []
        self.band_runs: dict[int, BandRuns] = {}
        rs_rows, rs_betas = [], []
        for e, (name, params) in enumerate(specs):
            first = build_estimator(name, params, default_bundle_size=default_bundle_size, seed=seed)
            if is_stateful(first):
                self.instances.append(
                    [
                        build_estimator(name, params, default_bundle_size=default_bundle_size, seed=seed + s)
                        for s in range(seeds)
                    ]
                )
                self.stateful.append(e)
                if BandRuns.supports(first):
                    self.band_runs[e] = BandRuns(self.instances[e])
                continue
            self.instances.append([first])
            if isinstance(first, RSGRPO) and first.beta != 0.0:
                rs_rows.append(e)
                rs_betas.append(first.beta)
            else:
                self.stateless.append(e)
        contiguous = rs_rows == list(range(rs_rows[0], rs_rows[0] + len(rs_rows))) if rs_rows else False
        # a slice is a view: cheaper than gathering and scattering rows in a 25 000-step loop
        self.rs_rows = slice(rs_rows[0], rs_rows[-1] + 1) if contiguous else torch.tensor(rs_rows, dtype=torch.long)
        self.has_rs = bool(rs_rows)
        self.rs_betas = torch.tensor(rs_betas, dtype=torch.float64).view(-1, 1, 1, 1)

    def _rs_grpo(self, rewards: Tensor, adv: Tensor) -> Tensor:
        """Every RS-GRPO β ≠ 0 row in one call (``theory.advantages.rs_grpo_batched``, one β per estimator
        row, each row exactly ``rs_grpo(row, β)``), written into ``adv``."""
        betas = self.rs_betas.view(-1, 1, 1).to(rewards.dtype)
        rs_adv = rs_grpo_batched(rewards[self.rs_rows], betas)
        adv[self.rs_rows] = rs_adv
        return adv

    def first(self, e: int) -> AdvantageEstimator:
        return self.instances[e][0]

    def __call__(self, rewards: Tensor) -> tuple[Tensor, Tensor]:
        """(advantages (E, S, P, G), quantiles (E, S, 2): q_α, q_β where the estimator reports them, else NaN)."""
        num_est, seeds, prompts, g = rewards.shape
        adv = torch.empty_like(rewards)
        quantiles = np.full((num_est, seeds, 2), np.nan)  # numpy: item writes cost ~0.1 µs, torch's ~5 µs
        if len(self.stateless) + len(self.stateful) == 0:  # RS-GRPO only: no quantiles, one call
            return self._rs_grpo(rewards, adv), torch.from_numpy(quantiles)
        if self.has_rs:
            self._rs_grpo(rewards, adv)
        for e in self.stateless:
            out, extra = self.first(e).compute(rewards[e].reshape(seeds * prompts, g), None)
            adv[e] = out.reshape(seeds, prompts, g)
            quantiles[e, :] = extra.get("q_alpha", np.nan), extra.get("q_beta", np.nan)
        for e in self.stateful:
            if e in self.band_runs:
                adv[e], q = self.band_runs[e](rewards[e])
                quantiles[e] = q.numpy()
                continue
            for s, est in enumerate(self.instances[e]):
                adv[e, s], extra = est.compute(rewards[e, s], None)
                quantiles[e, s] = extra.get("q_alpha", np.nan), extra.get("q_beta", np.nan)
        return adv, torch.from_numpy(quantiles)


def sample_actions(probs: Tensor, uniforms: Tensor) -> Tensor:
    """Inverse-CDF draws a = min{j : F(j) >= u}, F the normalised cumulative sum of ``probs`` (..., K).

    Bit for bit what ``torch.multinomial(probs, N, replacement=True, generator=g)`` returns on CPU
    when ``uniforms`` (..., N) is ``torch.rand(..., N, generator=g, dtype=torch.float64)`` (same
    cumulative sum, normalisation, last bucket equal to 1, and binary search), but one call can serve
    every estimator from the same uniforms (broadcast over leading dims): common random numbers
    without a generator per row.
    """
    cdf = probs.cumsum(-1)
    cdf = cdf / cdf[..., -1:]  # the last bucket is x/x = 1.0 exactly, as the kernel sets it
    return torch.searchsorted(cdf, uniforms.expand(*cdf.shape[:-1], uniforms.shape[-1]).contiguous())


class single_thread(contextlib.ContextDecorator):
    """Run torch on one intra-op thread (as ``with`` block or decorator): the simulators'
    tensors are tiny, and on a shared 2-core machine thread hand-offs cost more than the
    arithmetic (a 200×6 softmax took 3 ms with two threads under load). Restores the old setting."""

    def __init__(self):
        self._previous: list[int] = []  # a stack, so nested and recursive uses restore correctly

    def __enter__(self):
        self._previous.append(torch.get_num_threads())
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self._previous.pop())
        return False

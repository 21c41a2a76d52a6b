"""The comparison's config file (``llm/configs/compare*.yaml``): the shared trainer keys, one
estimator per method, the seeds, the held-out evaluation settings and the simulator's sizes.
``load_config`` checks all of it, including every run's complete trainer config, before anything
runs."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

TOP_LEVEL_KEYS = {"name", "train", "methods", "seeds", "eval", "simulator", "task_note", "horizon", "quick"}
#: ``horizon:`` (llm.compare.horizon): the shorter run's results folder and the training seeds both runs share.
HORIZON_KEYS = {"short_run", "seeds"}


@dataclass
class EvalSettings:
    num_prompts: int = 24
    seed: int = 1000
    n: int = 32
    ks: list = field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 32
    prompts_per_call: int = 2
    bootstrap: int = 2000
    entropy_samples: int = 8  # held-out entropy from the first m of the n samples per prompt (0 = all)
    accuracy_reward: str = "final_answer"

    def validate(self) -> None:
        for name in ("num_prompts", "n", "max_new_tokens", "prompts_per_call", "bootstrap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"eval.{name}={value!r} must be a positive integer")
        if not self.ks or any(int(k) != k or not 1 <= k <= self.n for k in self.ks):
            raise ValueError(f"eval.ks={self.ks!r} must be integers in [1, eval.n={self.n}]")
        if sorted(self.ks) != list(self.ks):
            raise ValueError(f"eval.ks={self.ks!r} must be increasing")
        if (
            isinstance(self.entropy_samples, bool)
            or not isinstance(self.entropy_samples, int)
            or self.entropy_samples < 0
        ):
            raise ValueError(f"eval.entropy_samples={self.entropy_samples!r} must be an integer >= 0 (0 = all samples)")
        if not self.temperature > 0:
            raise ValueError(f"eval.temperature={self.temperature!r} must be > 0")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"eval.top_p={self.top_p!r} must lie in (0, 1]")


@dataclass
class CompareConfig:
    name: str
    train: dict
    methods: dict
    seeds: list
    eval: EvalSettings
    simulator: dict
    task_note: str = ""
    horizon: dict = field(default_factory=dict)  # {} = no longer-horizon reading

    def run_name(self, method: str, seed: int) -> str:
        return f"{method}-s{seed}"

    def train_values(self, method: str, seed: int, output_dir: Path) -> dict:
        """The complete llm/train.py config of one run: shared keys, the method's keys, seed and output."""
        values = {**copy.deepcopy(self.train), **copy.deepcopy(self.methods[method])}
        values.update(
            seed=int(seed),
            output_dir=str(output_dir),
            report_to="none",
            save_every=0,
            keep_last=1,
            save_model=True,
            resume="",
        )
        return values


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _check_horizon(section, seeds: list, path: Path) -> dict:
    """The ``horizon:`` block checked: {short_run: str, seeds: non-empty list of this run's seeds}."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: horizon={section!r} must be a mapping with keys {sorted(HORIZON_KEYS)}")
    unknown = sorted(set(section) - HORIZON_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown horizon key(s) {unknown}; valid: {sorted(HORIZON_KEYS)}")
    short_run = section.get("short_run")
    if not isinstance(short_run, str) or not short_run.strip():
        raise ValueError(f"{path}: horizon.short_run={short_run!r} must be the shorter run's results folder (a path)")
    chosen = section.get("seeds", seeds)
    if (
        not isinstance(chosen, list)
        or not chosen
        or any(not isinstance(s, int) or isinstance(s, bool) for s in chosen)
        or len(set(chosen)) != len(chosen)
    ):
        raise ValueError(f"{path}: horizon.seeds={chosen!r} must be a non-empty list of distinct integers")
    if set(chosen) - set(seeds):
        raise ValueError(f"{path}: horizon.seeds={chosen!r} must be among this run's seeds {seeds}")
    return {"short_run": short_run, "seeds": list(chosen)}


def load_config(path: str | os.PathLike, quick: bool = False) -> CompareConfig:
    """Read the YAML (``quick:`` merged over it when ``quick``) and check it, including every run's train config."""
    from llm.config import TrainConfig, read_yaml_mapping

    path = Path(path)
    raw = read_yaml_mapping(path, "compare config")
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; valid: {sorted(TOP_LEVEL_KEYS)}")
    quick_section = raw.pop("quick", {}) or {}
    # The short run a horizon block names is a full run: --quick drops the block unless quick: names its own.
    horizon = raw.pop("horizon", None)
    if quick:
        raw = _merge(raw, quick_section)
        horizon = raw.pop("horizon", None)
    for key in ("train", "methods"):
        if not isinstance(raw.get(key), dict) or not raw[key]:
            raise ValueError(f"{path}: '{key}' must be a non-empty mapping")
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or any(not isinstance(s, int) or isinstance(s, bool) for s in seeds):
        raise ValueError(f"{path}: seeds={seeds!r} must be a non-empty list of integers")
    eval_section = raw.get("eval") or {}
    known_eval = set(EvalSettings.__dataclass_fields__)
    if set(eval_section) - known_eval:
        raise ValueError(
            f"{path}: unknown eval key(s) {sorted(set(eval_section) - known_eval)}; valid: {sorted(known_eval)}"
        )
    settings = EvalSettings(**eval_section)
    settings.validate()
    cfg = CompareConfig(
        name=str(raw.get("name") or path.stem),
        train=raw["train"],
        methods=raw["methods"],
        seeds=seeds,
        eval=settings,
        simulator=dict(raw.get("simulator") or {}),
        task_note=str(raw.get("task_note") or ""),
        horizon=_check_horizon(horizon, seeds, path),
    )
    for method, overrides in cfg.methods.items():
        if not isinstance(overrides, dict) or "estimator" not in overrides:
            raise ValueError(f"{path}: methods.{method} must be a mapping with an 'estimator' key")
        TrainConfig.from_dict(cfg.train_values(method, seeds[0], Path("unused")), source=f"{path}: {method}").validate()
    return cfg

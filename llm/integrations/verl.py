"""riskrl advantage estimators inside verl (tested with verl 0.9.1; docs/verl.md).

    pip install -e '.[verl]'          # declares the ``verl.plugins`` entry point
    python -m verl.trainer.main_ppo algorithm.adv_estimator=riskrl_riskpo \\
        +algorithm.riskrl.alpha=0.2 +algorithm.riskrl.bundle_size=5 \\
        trainer.checkpoint_callback_class=llm.integrations.verl.RiskrlCheckpointCallback ...

``import verl`` imports this module in every process (entry point ``riskrl`` of ``verl.plugins``) and
the import registers ``riskrl_<name>`` for every ``theory.list_estimators()`` name, plus the bare
name where verl has none (``ALIASES``; never ``grpo``). verl skips a failing plug-in silently
(DEBUG log), so launch scripts call ``check()``; ``VERL_USE_EXTERNAL_MODULES=llm.integrations.verl``
is the fallback route.

The estimator function sums ``token_level_rewards`` over the response mask, groups the rows by
``index`` (uids, first appearance first) into the (P, G) matrix, runs ``theory.get_estimator(name,
**config.riskrl)`` on it (RiskPO bundles span the P prompts of the call) and returns the advantage of
each response on its response tokens, twice (advantages, returns). One estimator per (name, options)
lives here for the life of the process, so the quantile tracker advances once per call;
``RiskrlCheckpointCallback`` saves it with every verl checkpoint and restores it when the trainer is
built (verl has no ``on_load``; the callback is built before any advantage is computed).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.checkpoint_callback import CheckpointCallback

from theory.estimator_registry import AdvantageEstimator, estimator_parameters, get_estimator, list_estimators

__all__ = [
    "PREFIX",
    "ALIASES",
    "STATE_FILE",
    "CONFIG_KEY",
    "RiskrlCheckpointCallback",
    "check",
    "estimator_for",
    "last_metrics",
    "load_state",
    "math_verify_score",
    "options_from_config",
    "registered_names",
    "resume_dir",
    "reset",
    "save_state",
    "sequence_rewards",
]

logger = logging.getLogger(__name__)

PREFIX = "riskrl_"
STATE_FILE = "riskrl_estimators.pt"
CONFIG_KEY = "algorithm.riskrl"  # where users put the options (the estimator fn receives config.algorithm)
_STATE_VERSION = 1

# verl name -> riskrl registry name, filled at import.
_NAMES: dict[str, str] = {}
#: short alias -> riskrl name (bare registry names verl does not already use).
ALIASES: dict[str, str] = {}
#: bare names not registered because verl (or another plug-in) already uses them.
SKIPPED_ALIASES: dict[str, str] = {}

# (name, options-json) -> live estimator; the state that must survive steps and checkpoints.
_INSTANCES: dict[tuple[str, str], AdvantageEstimator] = {}
# States read from a checkpoint before the estimator exists (applied at first use).
_PENDING: dict[tuple[str, str], dict] = {}
_PENDING_SOURCE: str | None = None
_LAST_METRICS: dict[str, dict[str, float]] = {}


# --------------------------------------------------------------------------- options


def _get(config: Any, key: str, default=None):
    if config is None:
        return default
    if isinstance(config, Mapping) or hasattr(config, "get"):
        try:
            return config.get(key, default)
        except TypeError:
            pass
    return getattr(config, key, default)


def _plain(value):
    """OmegaConf containers -> Python containers (values must be JSON-able to key the instances)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, DictConfig | ListConfig):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf ships with verl
        pass
    return value


def options_from_config(name: str, config: Any) -> dict:
    """The estimator options in ``config.riskrl`` (``config`` = verl's algorithm config), validated.

    Unknown keys and values the estimator rejects are ValueErrors naming ``algorithm.riskrl.<key>``.
    """
    key = _canonical(name)
    raw = _plain(_get(config, "riskrl", None))
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{CONFIG_KEY} must be a mapping of estimator options, got {raw!r}")
    options = dict(raw)
    accepted = estimator_parameters(key)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(f'{CONFIG_KEY}.{k}' for k in unknown)} for adv_estimator "
            f"{PREFIX}{key}; accepted: {', '.join(f'{CONFIG_KEY}.{k}' for k in sorted(accepted))}"
        )
    try:
        get_estimator(key, **options)
    except (ValueError, TypeError) as err:
        # Name the key(s) at fault: those whose removal (back to the default) makes the options valid,
        # else those rejected on their own, else the whole combination.
        culprits = [k for k in options if _valid(key, {o: v for o, v in options.items() if o != k})]
        culprits += [k for k in options if k not in culprits and re.search(rf"\b{re.escape(k)}=", str(err))]
        if not culprits:
            culprits = [k for k, v in options.items() if not _valid(key, {k: v})]
        named = culprits or sorted(options)
        settings = ", ".join(f"{CONFIG_KEY}.{k}={options[k]!r}" for k in named)
        raise ValueError(f"{settings}: {err} (adv_estimator {PREFIX}{key})") from err
    return options


def _valid(name: str, options: dict) -> bool:
    try:
        get_estimator(name, **options)
    except (ValueError, TypeError):
        return False
    return True


def _canonical(name: str) -> str:
    if name in _NAMES:
        return _NAMES[name]
    if name in list_estimators():
        return name
    raise ValueError(f"algorithm.adv_estimator={name!r} is not a riskrl estimator; choose one of {sorted(_NAMES)}")


def _instance_key(name: str, options: dict) -> tuple[str, str]:
    return name, json.dumps(options, sort_keys=True, default=str)


def estimator_for(name: str, config: Any = None) -> AdvantageEstimator:
    """The process-wide estimator for ``name`` and ``config.riskrl`` (created once, then reused)."""
    key_name = _canonical(name)
    options = options_from_config(key_name, config)
    key = _instance_key(key_name, options)
    if key not in _INSTANCES:
        estimator = get_estimator(key_name, **options)
        if _PENDING:
            if key not in _PENDING:
                saved = ", ".join(f"{n} {o}" for n, o in sorted(_PENDING))
                raise ValueError(
                    f"the checkpoint {_PENDING_SOURCE} holds riskrl estimator state for {saved}, but this run "
                    f"asks for {key_name} {key[1]}: algorithm.adv_estimator or {CONFIG_KEY} changed since the "
                    "checkpoint. Restore the checkpoint's settings, or start fresh with trainer.resume_mode=disable"
                )
            estimator.load_state_dict(_PENDING.pop(key))
        _INSTANCES[key] = estimator
    return _INSTANCES[key]


def last_metrics(name: str) -> dict[str, float]:
    """The ``AdvantageOutput.metrics`` of the latest call of ``name`` (verl's estimator API has no metrics channel)."""
    return dict(_LAST_METRICS.get(_canonical(name), {}))


def reset() -> None:
    """Forget every estimator instance and pending checkpoint state (tests; a new run in the same process)."""
    global _PENDING_SOURCE
    _INSTANCES.clear()
    _PENDING.clear()
    _LAST_METRICS.clear()
    _PENDING_SOURCE = None


# --------------------------------------------------------------------------- the estimator function


def sequence_rewards(token_level_rewards: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """(bs, L) token rewards -> (bs,) sequence rewards, summed over the response tokens."""
    if token_level_rewards.shape != response_mask.shape or token_level_rewards.dim() != 2:
        raise ValueError(
            f"token_level_rewards {tuple(token_level_rewards.shape)} and response_mask "
            f"{tuple(response_mask.shape)} must both be (batch, response_length)"
        )
    return (token_level_rewards * response_mask.to(token_level_rewards.dtype)).sum(-1)


def _group_rows(index, batch_size: int) -> tuple[list[list[int]], list]:
    """Row indices of each uid, uids in first-appearance order, rows in batch order."""
    if index is None:
        raise ValueError(
            "riskrl estimators need the prompt uid of every row (verl passes data.non_tensor_batch['uid'] "
            "as index); none was given"
        )
    index = np.asarray(index)
    if index.shape != (batch_size,):
        raise ValueError(f"index has shape {index.shape}; expected one uid per row, ({batch_size},)")
    rows: dict[Any, list[int]] = {}
    for row, uid in enumerate(index.tolist()):
        rows.setdefault(uid, []).append(row)
    return list(rows.values()), list(rows)


def _reward_matrix(seq_rewards: torch.Tensor, groups: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    sizes = sorted({len(g) for g in groups})
    if len(sizes) > 1:
        counts = {s: sum(len(g) == s for g in groups) for s in sizes}
        raise ValueError(
            f"riskrl estimators need the same number of responses for every prompt; this batch has group sizes "
            f"{counts} (size: number of prompts). Every prompt must keep actor_rollout_ref.rollout.n responses: "
            "disable filters that drop responses (e.g. algorithm.filter_groups) or failed rollouts"
        )
    rows = torch.tensor(groups, dtype=torch.long)  # (P, G)
    return seq_rewards[rows.to(seq_rewards.device)], rows


def _make_estimator_fn(verl_name: str, riskrl_name: str):
    def riskrl_advantage(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index=None,
        config=None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        estimator = estimator_for(riskrl_name, config)
        with torch.no_grad():
            seq = sequence_rewards(token_level_rewards, response_mask)
            groups, _ = _group_rows(index, seq.shape[0])
            rewards, rows = _reward_matrix(seq.detach().cpu(), groups)
            num_prompts = rewards.shape[0]
            bundle = int(getattr(estimator, "bundle_size", 1))
            if num_prompts % bundle:
                raise ValueError(
                    f"{CONFIG_KEY}.bundle_size={bundle} must divide the number of prompts in the advantage batch "
                    f"(P={num_prompts}, {len(seq)} rows / {rewards.shape[1]} responses): set data.train_batch_size "
                    f"to a multiple of {bundle} (with parameter_sync_step > 1, each chunk must be one), or change "
                    f"{CONFIG_KEY}.bundle_size"
                )
            if rewards.shape[1] < 2:
                raise ValueError(
                    f"riskrl estimators need at least 2 responses per prompt; got {rewards.shape[1]}: "
                    "set actor_rollout_ref.rollout.n >= 2"
                )
            out = estimator(rewards)
            per_row = torch.empty(seq.shape[0], dtype=out.advantages.dtype)
            per_row[rows.reshape(-1)] = out.advantages.reshape(-1)
            advantages = per_row.to(token_level_rewards.device, token_level_rewards.dtype).unsqueeze(-1)
            advantages = advantages * response_mask.to(token_level_rewards.dtype)
        _LAST_METRICS[riskrl_name] = dict(out.metrics)
        return advantages, advantages

    riskrl_advantage.__name__ = f"compute_{verl_name}_advantage"
    riskrl_advantage.__qualname__ = riskrl_advantage.__name__
    riskrl_advantage.__doc__ = (
        f"verl advantage estimator {verl_name!r}: riskrl's {riskrl_name!r} (theory.get_estimator) on the (P, G) "
        "sequence-reward matrix grouped by uid, broadcast over the response mask. Options: config.riskrl."
    )
    riskrl_advantage.riskrl_name = riskrl_name
    return riskrl_advantage


def _register_all() -> None:
    taken = set(core_algos.ADV_ESTIMATOR_REGISTRY) | {e.value for e in core_algos.AdvantageEstimator}
    for name in list_estimators():
        verl_name = PREFIX + name
        existing = core_algos.ADV_ESTIMATOR_REGISTRY.get(verl_name)
        if existing is not None and getattr(existing, "riskrl_name", None) == name:
            _NAMES[verl_name] = name  # module imported twice (e.g. importlib.reload): keep the first
            continue
        core_algos.register_adv_est(verl_name)(_make_estimator_fn(verl_name, name))  # a clash raises
        _NAMES[verl_name] = name
    for name in list_estimators():
        existing = core_algos.ADV_ESTIMATOR_REGISTRY.get(name)
        if existing is not None and getattr(existing, "riskrl_name", None) == name:
            ALIASES[name] = name
            _NAMES[name] = name
        elif name in taken:
            SKIPPED_ALIASES[name] = "verl already has an advantage estimator of this name"
        else:
            core_algos.register_adv_est(name)(_make_estimator_fn(name, name))
            ALIASES[name] = name
            _NAMES[name] = name


def registered_names() -> dict[str, str]:
    """verl name -> riskrl registry name, for every name this module registered."""
    return dict(_NAMES)


def check(names: list[str] | None = None) -> None:
    """RuntimeError unless every riskrl name (or ``names``) resolves through verl's ``get_adv_estimator_fn``.

    Catches a plug-in that verl skipped (its import errors are logged at DEBUG only) and an
    estimator that another plug-in registered under our name.
    """
    wanted = list(names) if names is not None else [PREFIX + n for n in list_estimators()]
    missing, foreign = [], []
    for name in wanted:
        try:
            fn = core_algos.get_adv_estimator_fn(name)
        except ValueError:
            missing.append(name)
            continue
        if getattr(fn, "riskrl_name", None) is None:
            foreign.append(name)
    if missing or foreign:
        raise RuntimeError(
            f"riskrl estimators not registered in verl: missing {missing}, owned by another plug-in {foreign}. "
            "Install riskrl with its entry point (pip install -e '.[verl]' re-run after any pyproject change), "
            "or set VERL_USE_EXTERNAL_MODULES=llm.integrations.verl in every process's environment "
            "(ray runtime_env env_vars for the actors)"
        )


# --------------------------------------------------------------------------- checkpoints


def save_state(checkpoint_dir: str) -> str | None:
    """Writes every live estimator's state to ``<checkpoint_dir>/riskrl_estimators.pt``; returns the path.

    Nothing is written when no riskrl estimator has run in this process.
    """
    if not _INSTANCES:
        return None
    entries = [
        {"name": name, "options": options, "state": est.state_dict()} for (name, options), est in _INSTANCES.items()
    ]
    os.makedirs(checkpoint_dir, exist_ok=True)
    path = os.path.join(checkpoint_dir, STATE_FILE)
    tmp = path + ".tmp"
    torch.save({"version": _STATE_VERSION, "estimators": entries}, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a truncated state file
    return path


def load_state(checkpoint_dir: str) -> int:
    """Restores the estimator states saved in ``checkpoint_dir``; returns how many were read.

    A live estimator with the same name and options loads its state now; the others at first use.
    A missing file is a FileNotFoundError (resuming with a fresh tracker would be silent).
    """
    global _PENDING_SOURCE
    path = os.path.join(checkpoint_dir, STATE_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} does not exist: the checkpoint holds no riskrl estimator state (was it saved with "
            "trainer.checkpoint_callback_class=llm.integrations.verl.RiskrlCheckpointCallback?). "
            "Resume from a checkpoint that has it, or start fresh with trainer.resume_mode=disable"
        )
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("version") != _STATE_VERSION:
        raise ValueError(f"{path}: state version {saved.get('version')!r}, expected {_STATE_VERSION}")
    _PENDING.clear()
    for entry in saved["estimators"]:
        key = (entry["name"], entry["options"])
        if key in _INSTANCES:
            _INSTANCES[key].load_state_dict(entry["state"])
        else:
            _PENDING[key] = entry["state"]
    _PENDING_SOURCE = path
    return len(saved["estimators"])


def resume_dir(config: Any) -> str | None:
    """The ``global_step_N`` folder verl's trainer resumes from under ``config`` (None: fresh start).

    Mirrors the v1 trainer's ``_load_checkpoint``: ``trainer.resume_mode`` disable / auto (the
    latest checkpoint under ``trainer.default_local_dir``) / resume_path (``trainer.resume_from_path``).
    """
    from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path

    trainer = _get(config, "trainer", None)
    mode = _get(trainer, "resume_mode", "auto")
    if mode == "disable":
        return None
    if mode == "auto":
        folder = _get(trainer, "default_local_dir", None)
        if folder is None:
            return None
        return find_latest_ckpt_path(os.path.abspath(folder))
    if mode == "resume_path":
        path = _get(trainer, "resume_from_path", None)
        if not isinstance(path, str) or "global_step_" not in path:
            raise ValueError(f"trainer.resume_from_path={path!r} must be a global_step_N checkpoint folder")
        return os.path.abspath(path)
    raise ValueError(f"trainer.resume_mode={mode!r} must be one of 'disable', 'auto', 'resume_path'")


def _uses_riskrl(config: Any) -> bool:
    name = _get(_get(config, "algorithm", None), "adv_estimator", None)
    name = getattr(name, "value", name)
    return isinstance(name, str) and name in _NAMES


class RiskrlCheckpointCallback(CheckpointCallback):
    """verl ``trainer.checkpoint_callback_class``: saves the riskrl estimator state with every checkpoint
    and restores it, at trainer construction, from the checkpoint the trainer resumes from."""

    def __init__(self, config=None):
        super().__init__(config=config)
        self.restored_from: str | None = None
        folder = resume_dir(config) if config is not None else None
        if folder is not None and _uses_riskrl(config):
            load_state(folder)  # FileNotFoundError when the checkpoint lacks the state
            self.restored_from = folder

    def on_save(self, trainer, global_step: int, checkpoint_dir: str, async_save: bool = False, **kwargs) -> None:
        save_state(checkpoint_dir)


# --------------------------------------------------------------------------- reward


def math_verify_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None) -> float:
    """verl ``reward.custom_reward_function``: 1.0 when the last \\boxed{} answer equals ``ground_truth``
    under math-verify, else 0.0 (the papers' reward; ``llm.rewards.math_verify_reward`` scores it)."""
    from llm.data import Example
    from llm.rewards import math_verify_reward

    example = Example(
        id=str((extra_info or {}).get("index", "")), question="", answer=str(ground_truth), source=data_source
    )
    return math_verify_reward([solution_str], [example])[0]


_register_all()

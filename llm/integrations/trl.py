"""riskrl advantage estimators inside TRL's ``GRPOTrainer``.

    from llm.integrations.trl import RiskGRPOTrainer, riskrl_reward, trl_dataset
    args = GRPOConfig(output_dir="out", num_generations=4, per_device_train_batch_size=20,
                      scale_rewards="none", ...)
    trainer = RiskGRPOTrainer(model, reward_funcs=[riskrl_reward("math_verify")], args=args,
                              train_dataset=trl_dataset(examples), estimator="riskpo",
                              estimator_params={"alpha": 0.2, "beta": 0.8, "omega": 0.5, "bundle_size": 5})

What changes relative to ``GRPOTrainer`` (everything else — generation, vLLM
server/colocate mode, loss, DeepSpeed/FSDP, logging — is TRL's own):

* advantages: TRL computes its group-normalised advantages from the reward
  matrix it has gathered from every process; we take the same gathered
  rewards (weighted sum over reward functions, TRL's ``reward_weights``),
  reshape them to (P, G) with TRL's grouping (G = ``num_generations``
  consecutive rows per prompt), run ``theory.get_estimator(name, **params)``
  on that GLOBAL matrix, and each process keeps its own rows. RiskPO bundles
  therefore span all processes, and every process feeds its quantile tracker
  the same scores (same seed, same input -> bit-identical tracker state).
  TRL's own advantages are discarded, as TRL's maintainers suggest for custom
  advantages (huggingface/trl#4525); the logged advantage column is replaced
  too (the staleness reported in huggingface/trl#7298).
* metrics: every ``AdvantageOutput.metrics`` entry is logged as ``riskrl/<name>``
  through TRL's metric buffer (averaged over the logging window like TRL's).
* checkpoints: the estimator state (quantile tracker + bundle RNG) is written to
  ``<checkpoint>/riskrl_estimator.pt`` and restored on ``resume_from_checkpoint``.

Only training batches use the estimator; evaluation losses keep TRL's
advantages and never advance the tracker. The tracker advances once per
generation batch (``generation_batch_size`` completions), i.e. once every
``steps_per_generation`` optimiser steps.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from typing import Any

import torch
import trl
from packaging.version import Version
from trl import GRPOConfig, GRPOTrainer

from llm.data import Example
from llm.rewards import RewardPipeline
from theory.estimator_registry import AdvantageEstimator, get_estimator

__all__ = [
    "SUPPORTED_TRL",
    "ESTIMATOR_STATE_FILE",
    "RiskGRPOTrainer",
    "check_trl_version",
    "check_trl_settings",
    "riskrl_reward",
    "trl_dataset",
]

# TRL's GRPOTrainer internals this module relies on (``_calculate_rewards`` returning the
# gathered (N, F) reward matrix, the ``advantages`` entry of ``_generate_and_score_completions``'
# output, ``_metrics``/``_logs``) are stable across the 1.x line we tested; they moved before.
SUPPORTED_TRL = (Version("1.0.0"), Version("1.17.0"))  # [low, high)
ESTIMATOR_STATE_FILE = "riskrl_estimator.pt"


def check_trl_version(version: str | None = None) -> None:
    """ImportError naming the installed and the supported TRL versions when they differ."""
    installed = Version(version or trl.__version__)
    low, high = SUPPORTED_TRL
    if not (low <= Version(installed.base_version) < high):
        raise ImportError(
            f"llm.integrations.trl supports trl>={low},<{high}; found trl=={installed}. "
            f"Install a supported version: pip install 'trl>={low},<{high}' (or pip install -e '.[trl]')."
        )


check_trl_version()


def check_trl_settings(args: GRPOConfig, estimator: AdvantageEstimator) -> None:
    """ValueError naming the GRPOConfig field when TRL settings would make the estimator wrong."""
    if not isinstance(args, GRPOConfig):
        raise ValueError(
            f"args must be a trl.GRPOConfig (with scale_rewards='none'), got {type(args).__name__}; "
            "RiskGRPOTrainer does not build a default config because TRL's defaults normalise rewards"
        )
    if args.scale_rewards not in ("none", False):
        raise ValueError(
            f"GRPOConfig.scale_rewards={args.scale_rewards!r} must be 'none': the estimator "
            f"{estimator.name!r} defines the whole advantage (its own baseline/scale), so TRL's scaling would be "
            "silently ignored"
        )
    if args.multi_objective_aggregation != "sum_then_normalize":
        raise ValueError(
            f"GRPOConfig.multi_objective_aggregation={args.multi_objective_aggregation!r} must be "
            "'sum_then_normalize': the estimator needs one reward per completion, the reward_weights-weighted sum"
        )
    group_size = args.num_generations
    if group_size is None or group_size < 2:
        raise ValueError(
            f"GRPOConfig.num_generations={group_size} must be >= 2 (G completions per prompt form a group)"
        )
    batch = args.generation_batch_size
    if batch % group_size:
        raise ValueError(f"GRPOConfig.generation_batch_size={batch} must be a multiple of num_generations={group_size}")
    num_prompts = batch // group_size
    if num_prompts % estimator.bundle_size:
        raise ValueError(
            f"each generation batch holds P = generation_batch_size / num_generations = {batch} / {group_size} = "
            f"{num_prompts} prompts (generation_batch_size = "
            f"per_device_train_batch_size={args.per_device_train_batch_size}"
            f" x processes={args.world_size} x steps_per_generation={args.steps_per_generation}); P must be a multiple "
            f"of the estimator's bundle_size={estimator.bundle_size} ({estimator.name!r} bundles prompts across the "
            "whole batch)"
        )
    probe = copy.deepcopy(estimator)  # the real tracker and bundle RNG must not move
    try:
        probe(torch.zeros(num_prompts, group_size, dtype=torch.float64))
    except ValueError as error:
        raise ValueError(
            f"estimator {estimator.name!r} rejects the (P, G) = ({num_prompts}, {group_size}) reward matrix that "
            f"generation_batch_size={batch} and num_generations={group_size} give: {error}"
        ) from None


class RiskGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose advantages are ``get_estimator(estimator, **estimator_params)`` on the global rewards.

    ``estimator`` is a registry name (``theory.list_estimators()``) or an
    ``AdvantageEstimator`` instance. ``args`` must be a ``GRPOConfig`` that
    passes ``check_trl_settings``. All other arguments are ``GRPOTrainer``'s.
    """

    def __init__(
        self,
        model,
        reward_funcs=None,
        args: GRPOConfig | None = None,
        *,
        estimator: str | AdvantageEstimator = "riskpo",
        estimator_params: dict | None = None,
        **kwargs,
    ):
        if isinstance(estimator, AdvantageEstimator):
            if estimator_params:
                raise ValueError("estimator_params must be empty when estimator is an AdvantageEstimator instance")
            self.estimator = estimator
        else:
            self.estimator = get_estimator(estimator, **(estimator_params or {}))
        check_trl_settings(args, self.estimator)
        self._global_rewards_per_func: torch.Tensor | None = None
        super().__init__(model, reward_funcs, args, **kwargs)

    # ------------------------------------------------------------------ advantages

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._global_rewards_per_func = rewards_per_func  # (N_global, F), gathered from every process
        return rewards_per_func

    def global_rewards(self, rewards_per_func: torch.Tensor) -> torch.Tensor:
        """(N, F) per-function rewards -> (P, G) total rewards, TRL's reward_weights and grouping."""
        weights = self.reward_weights.to(rewards_per_func.device, rewards_per_func.dtype)
        unscorable = torch.isnan(rewards_per_func).all(dim=1)
        if unscorable.any():
            row = int(unscorable.nonzero()[0, 0])
            raise ValueError(
                f"every reward function returned None for completion {row} of the generation batch; "
                f"estimator {self.estimator.name!r} needs a finite reward for every completion"
            )
        totals = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)  # None from one function counts 0, as in TRL
        return totals.view(-1, self.num_generations)

    def _generate_and_score_completions(self, inputs):
        self._global_rewards_per_func = None
        output = super()._generate_and_score_completions(inputs)
        if not self.model.training:  # eval batches keep TRL's advantages and leave the tracker alone
            return output
        if self._global_rewards_per_func is None:
            raise RuntimeError(
                f"trl=={trl.__version__} did not score completions through _calculate_rewards; "
                "RiskGRPOTrainer cannot see the rewards (unsupported TRL internals)"
            )
        rewards = self.global_rewards(self._global_rewards_per_func)
        result = self.estimator(rewards.detach().cpu().double())
        advantages = result.advantages.reshape(-1)
        local = output["advantages"]
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        if advantages.numel() != local.shape[0] * world:
            raise RuntimeError(
                f"global reward matrix has {advantages.numel()} rows but {world} process(es) x {local.shape[0]} local "
                "completions were expected (unsupported TRL internals)"
            )
        output["advantages"] = advantages[rank * local.shape[0] : (rank + 1) * local.shape[0]].to(
            local.device, local.dtype
        )
        self._replace_logged_advantages(advantages)
        for name, value in result.metrics.items():
            self._metrics["train"][f"riskrl/{name}"].append(float(value))
        return output

    def _replace_logged_advantages(self, advantages: torch.Tensor) -> None:
        # TRL appended its own (discarded) advantages for the completions table; swap in ours.
        logged = self._logs["advantages"]
        for _ in range(min(advantages.numel(), len(logged))):
            logged.pop()
        logged.extend(advantages.float().tolist())

    # ------------------------------------------------------------------ checkpoints

    def _estimator_record(self) -> dict:
        return {
            "estimator": self.estimator.name,
            "params": self.estimator.params(),
            "state": self.estimator.state_dict(),
        }

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:  # the state is identical on every process; one copy suffices
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = os.path.join(
                self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            )
            torch.save(self._estimator_record(), os.path.join(folder, ESTIMATOR_STATE_FILE))

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)  # runs on every process when resuming
        if checkpoint is not None:
            self.load_estimator_state(checkpoint)

    def load_estimator_state(self, checkpoint: str | os.PathLike) -> None:
        """Restore the estimator from ``<checkpoint>/riskrl_estimator.pt``; ValueError if it is absent or foreign."""
        path = os.path.join(checkpoint, ESTIMATOR_STATE_FILE)
        if not os.path.isfile(path):
            if not self.estimator.state_dict():  # stateless estimators (grpo, rs_grpo, pass@k) lose nothing
                return
            raise ValueError(
                f"checkpoint {checkpoint} has no {ESTIMATOR_STATE_FILE}; resuming would restart the "
                f"{self.estimator.name!r} quantile tracker (was it written by plain GRPOTrainer?)"
            )
        record = torch.load(path, weights_only=True)
        mine = {"estimator": self.estimator.name, "params": self.estimator.params()}
        saved = {"estimator": record["estimator"], "params": record["params"]}
        if json.dumps(saved, sort_keys=True, default=str) != json.dumps(mine, sort_keys=True, default=str):
            raise ValueError(f"checkpoint {checkpoint} holds estimator {saved}, but this trainer uses {mine}")
        self.estimator.load_state_dict(record["state"])


# --------------------------------------------------------------------------- data and rewards


def trl_dataset(examples: Sequence[Example], system_prompt: str = ""):
    """``datasets.Dataset`` in TRL's conversational prompt format, carrying each Example's fields.

    TRL applies the tokenizer's chat template itself (the same messages
    ``llm.data.format_prompt`` renders); the other columns reach reward
    functions as keyword arguments, where ``riskrl_reward`` rebuilds Examples.
    """
    from datasets import Dataset

    if not examples:
        raise ValueError("examples must not be empty")
    rows: dict[str, list[Any]] = {"prompt": [], "question": [], "answer": [], "id": [], "source": [], "metadata": []}
    for example in examples:
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        rows["prompt"].append(messages + [{"role": "user", "content": example.question}])
        rows["question"].append(example.question)
        rows["answer"].append(example.answer)
        rows["id"].append(example.id)
        rows["source"].append(example.source)
        rows["metadata"].append(json.dumps(example.metadata, default=str))  # heterogeneous dicts break Arrow
    return Dataset.from_dict(rows)


def _completion_text(completion) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}, ...]
        return "".join(str(message.get("content") or "") for message in completion if isinstance(message, dict))
    raise ValueError(f"completion must be a string or a list of chat messages, got {type(completion).__name__}")


class riskrl_reward:  # noqa: N801  (used like a function: reward_funcs=[riskrl_reward("math_verify")])
    """One riskrl reward function (``llm.rewards`` name or ``module:function``) as a TRL reward function.

    Scores through ``llm.rewards.RewardPipeline`` (worker processes with a
    per-item deadline when ``num_workers > 0``); its name in TRL's logs is
    the spec. Weights go in ``GRPOConfig.reward_weights``.
    """

    def __init__(self, spec: str, num_workers: int = 0, timeout_s: float = 5.0):
        RewardPipeline([(spec, 1.0)], num_workers=0, timeout_s=timeout_s)  # validates spec and timeout now
        if int(num_workers) != num_workers or num_workers < 0:
            raise ValueError(f"num_workers={num_workers} must be an integer >= 0")
        self.spec, self.num_workers, self.timeout_s = spec, int(num_workers), float(timeout_s)
        self.__name__ = spec.rsplit(":", 1)[-1]
        self._pipeline: RewardPipeline | None = None

    def __getstate__(self):  # worker pools do not pickle; rebuild lazily
        return {**self.__dict__, "_pipeline": None}

    def __call__(self, prompts, completions, completion_ids=None, **columns) -> list[float]:
        missing = [key for key in ("answer", "question") if key not in columns]
        if missing:
            raise ValueError(
                f"reward {self.spec!r} needs dataset column(s) {missing}; build the dataset with trl_dataset()"
            )
        if self._pipeline is None:
            self._pipeline = RewardPipeline([(self.spec, 1.0)], num_workers=self.num_workers, timeout_s=self.timeout_s)
        count = len(completions)
        examples = [
            Example(
                id=str(columns["id"][i]) if "id" in columns else str(i),
                question=str(columns["question"][i]),
                answer=str(columns["answer"][i]),
                source=str(columns["source"][i]) if "source" in columns else "trl",
                metadata=json.loads(columns["metadata"][i]) if "metadata" in columns else {},
            )
            for i in range(count)
        ]
        total, _, _ = self._pipeline([_completion_text(c) for c in completions], examples)
        return total.tolist()

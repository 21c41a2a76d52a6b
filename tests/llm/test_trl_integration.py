"""riskrl estimators inside TRL's GRPOTrainer (llm/integrations/trl.py); skipped without TRL.

The reference for every check is an independent ``get_estimator`` built from
the same parameters and fed the rewards the reward function actually returned:
the advantages TRL's loss receives must be exactly that estimator's output.
"""

from __future__ import annotations

import copy
import zlib

import pytest
import torch

pytest.importorskip("trl")
try:
    import llm.integrations.trl  # noqa: F401  (raises ImportError naming the supported range)
except ImportError as error:  # a TRL outside the pinned range: say so in the -ra summary
    pytest.skip(str(error), allow_module_level=True)

from trl import GRPOConfig  # noqa: E402

from llm.integrations.trl import (  # noqa: E402
    ESTIMATOR_STATE_FILE,
    RiskGRPOTrainer,
    check_trl_settings,
    check_trl_version,
    riskrl_reward,
    trl_dataset,
)
from theory import get_estimator  # noqa: E402

RISKPO = {"alpha": 0.2, "beta": 0.8, "omega": 0.5, "bundle_size": 2}


class RecordingReward:
    """Deterministic pseudo-random reward of the completion tokens; remembers every call in order."""

    __name__ = "crc_ids"

    def __init__(self):
        self.calls: list[tuple[list[tuple[int, ...]], list[float]]] = []

    def __call__(self, prompts, completions, completion_ids, **columns):
        keys = [tuple(int(t) for t in ids) for ids in completion_ids]
        values = [(zlib.crc32(repr(key).encode()) % 1000) / 1000.0 for key in keys]
        self.calls.append((keys, values))
        return values


def tiny_config(output_dir, **overrides) -> GRPOConfig:
    values = dict(
        output_dir=str(output_dir),
        num_generations=4,
        per_device_train_batch_size=8,
        steps_per_generation=1,
        max_completion_length=6,
        max_steps=2,
        scale_rewards="none",
        use_cpu=True,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        learning_rate=1e-3,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    values.update(overrides)
    return GRPOConfig(**values)


def make_trainer(args, reward, trainer_cls=RiskGRPOTrainer, **estimator):
    from llm.data import load_dataset_examples
    from llm.model import SMOLLM2, build_tiny_model, load_tokenizer

    tokenizer = load_tokenizer(SMOLLM2)
    model = build_tiny_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0)
    dataset = trl_dataset(load_dataset_examples("fixture:gsm8k", split="train"))
    estimator = estimator or {"estimator": "riskpo", "estimator_params": RISKPO}
    return trainer_cls(
        model, reward_funcs=[reward], args=args, train_dataset=dataset, processing_class=tokenizer, **estimator
    )


def expected_advantages(calls, group_size, name="riskpo", params=RISKPO):
    """completion key -> advantage from a fresh estimator fed each generation batch's rewards in order."""
    reference = get_estimator(name, **params)
    expected = {}
    for keys, values in calls:
        # TRL stores rewards as float32; the estimator then sees them in float64.
        rewards = torch.tensor(values, dtype=torch.float32).double().view(-1, group_size)
        advantages = reference(rewards).advantages.reshape(-1).float()
        for key, value in zip(keys, advantages.tolist()):
            assert key not in expected, "duplicate completion: rows cannot be matched"
            expected[key] = value
    return expected, reference


class RecordingTrainer(RiskGRPOTrainer):
    """Records (completion key, advantage) for every row that reaches TRL's loss."""

    def _compute_loss(self, model, inputs):
        self.seen = getattr(self, "seen", [])
        for ids, mask, advantage in zip(inputs["completion_ids"], inputs["completion_mask"], inputs["advantages"]):
            self.seen.append((tuple(int(t) for t in ids[mask.bool()]), float(advantage)))
        return super()._compute_loss(model, inputs)


# ----------------------------------------------------------------------------- settings checks (no model)


def test_version_gate_names_supported_range():
    check_trl_version("1.16.0")
    for bad in ("0.29.1", "1.17.0", "2.0.0"):
        with pytest.raises(ImportError, match=r"trl>=1\.0\.0,<1\.17\.0"):
            check_trl_version(bad)


@pytest.mark.parametrize(
    "overrides, estimator, params, message",
    [
        ({"scale_rewards": "group"}, "riskpo", RISKPO, "scale_rewards='group' must be 'none'"),
        ({"scale_rewards": "batch"}, "grpo", {}, "scale_rewards='batch' must be 'none'"),
        ({"multi_objective_aggregation": "normalize_then_sum"}, "riskpo", RISKPO, "sum_then_normalize"),
        # 8 completions / G=4 = 2 prompts per generation batch: not a multiple of bundle_size=5
        ({}, "riskpo", {"bundle_size": 5}, r"P must be a multiple of the estimator's bundle_size=5"),
        # pass@k needs k <= G; the probe run reports it with the TRL fields that set G
        ({}, "passk_chen", {"k": 8}, r"rejects the \(P, G\) = \(2, 4\) reward matrix"),
    ],
)
def test_bad_settings_raise_naming_the_field(tmp_path, overrides, estimator, params, message):
    with pytest.raises(ValueError, match=message):
        check_trl_settings(tiny_config(tmp_path, **overrides), get_estimator(estimator, **params))


def test_settings_check_leaves_tracker_untouched_and_accepts_good_geometry(tmp_path):
    estimator = get_estimator("riskpo", **RISKPO)
    before = copy.deepcopy(estimator.state_dict())
    check_trl_settings(tiny_config(tmp_path, steps_per_generation=2), estimator)  # P = 16/4 = 4, bundle 2
    assert estimator.state_dict()["tracker"] == before["tracker"]
    assert torch.equal(estimator.state_dict()["generator"], before["generator"])
    args = tiny_config(tmp_path)
    args.num_generations = 1  # TRL rejects this at construction; a later mutation must not slip through
    with pytest.raises(ValueError, match="num_generations=1 must be >= 2"):
        check_trl_settings(args, estimator)
    with pytest.raises(ValueError, match="must be a trl.GRPOConfig"):
        check_trl_settings(None, estimator)


def test_riskrl_reward_adapts_signature_and_columns():
    from llm.data import Example

    examples = [
        Example(id="a", question="1+1?", answer="2", source="t"),
        Example(id="b", question="2+2?", answer="4", source="t"),
    ]
    dataset = trl_dataset(examples, system_prompt="Be brief.")
    assert dataset[0]["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}]
    reward = riskrl_reward("format")
    columns = {key: dataset[key] for key in ("question", "answer", "id", "source", "metadata")}
    completions = [[{"role": "assistant", "content": "so \\boxed{2}"}], [{"role": "assistant", "content": "four"}]]
    from llm.rewards import format_reward

    direct = format_reward(["so \\boxed{2}", "four"], examples)
    assert reward(prompts=dataset["prompt"], completions=completions, **columns) == direct
    assert direct[0] != direct[1]  # the two completions differ in format, so the comparison can fail
    with pytest.raises(ValueError, match=r"needs dataset column\(s\) \['answer'\]"):
        reward(prompts=["p"], completions=["c"], question=["q"])


# ----------------------------------------------------------------------------- tiny-model training


@pytest.mark.slow  # end to end (a whole training run or process launch): the default tier stays <= 90 s
def test_loss_receives_the_estimators_advantages(tmp_path):
    """Two generation batches of 8 (P=2 prompts x G=4, one bundle), each split into 2 shuffled optimiser steps."""
    reward = RecordingReward()
    args = tiny_config(
        tmp_path, per_device_train_batch_size=4, steps_per_generation=2, max_steps=4, max_completion_length=4
    )
    trainer = make_trainer(args, reward, RecordingTrainer)
    trainer.train()
    assert len(reward.calls) == 2 and all(len(keys) == 8 for keys, _ in reward.calls)
    expected, reference = expected_advantages(reward.calls, group_size=4)
    assert len(trainer.seen) == 16 and {key for key, _ in trainer.seen} == set(expected)
    for key, advantage in trainer.seen:
        # Same float64 arithmetic on the same float32 rewards, one cast to float32 each: exact.
        assert advantage == expected[key]
    assert trainer.estimator.state_dict()["tracker"] == reference.state_dict()["tracker"]
    assert trainer.estimator.state_dict()["tracker"]["step"] == 1  # batch-initialised, then one tracked update
    # TRL's group normalisation would have given different numbers: the replacement is real.
    rewards = torch.tensor(reward.calls[0][1]).view(-1, 4)
    trl_group = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)).reshape(-1)
    ours = torch.tensor([expected[key] for key in reward.calls[0][0]])
    assert not torch.allclose(ours, trl_group, atol=1e-2)
    logged = [entry for entry in trainer.state.log_history if "riskrl/q_alpha" in entry]
    assert [entry["riskrl/q_alpha"] for entry in logged][-1] == pytest.approx(reference.tracker.values[0].item())


@pytest.mark.slow  # end to end (a whole training run or process launch): the default tier stays <= 90 s
def test_checkpoint_saves_and_resume_restores_the_tracker(tmp_path):
    args = tiny_config(tmp_path / "run", save_strategy="steps", save_steps=1, max_completion_length=4)
    first = make_trainer(args, RecordingReward())
    first.train()
    final_state = copy.deepcopy(first.estimator.state_dict())
    assert final_state["tracker"]["step"] == 1 and final_state["tracker"]["initialized"]
    saved = torch.load(tmp_path / "run" / "checkpoint-1" / ESTIMATOR_STATE_FILE, weights_only=True)
    assert saved["estimator"] == "riskpo" and saved["params"] == first.estimator.params()
    assert saved["state"]["tracker"]["step"] == 0 and saved["state"]["tracker"]["initialized"]

    resumed = make_trainer(args, RecordingReward())
    resumed.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-1"))
    # Resumed step 2 regenerates the same completions (TRL restores RNG, data order and weights),
    # so the restored tracker must end exactly where the uninterrupted run ended.
    assert resumed.estimator.state_dict()["tracker"] == final_state["tracker"]
    assert torch.equal(resumed.estimator.state_dict()["generator"], final_state["generator"])

    other = make_trainer(args, RecordingReward(), estimator="riskpo", estimator_params={**RISKPO, "omega": 1.0})
    with pytest.raises(ValueError, match="holds estimator"):
        other.load_estimator_state(tmp_path / "run" / "checkpoint-1")
    with pytest.raises(ValueError, match=f"has no {ESTIMATOR_STATE_FILE}"):
        other.load_estimator_state(tmp_path)  # e.g. a checkpoint written by plain GRPOTrainer

"""The trainer as a user meets it (summary, export, resume, errors) and the update step's metrics and options.

End-to-end parts run the tiny random model (``tiny.tiny_args``);
``ppo_update`` parts call the update directly on a hand-made batch, so every
expected number is computed independently from the same model.
"""

import math

import numpy as np
import pytest
import torch
from tiny import tiny_args, update_setup

from llm.config import TrainConfig
from llm.loss import completion_logprobs
from llm.train import main, train


def test_failing_reward_aborts_the_run_with_its_error(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError) as info:
        main(
            tiny_args(
                out, rewards="[[test_llm_train_stubs:crc_reward, 1.0], [test_llm_train_stubs:raising_reward, 0.5]]"
            )
        )
    message = str(info.value)
    assert "raising_reward" in message and "16/16" in message and "this reward always fails" in message
    assert "reward_max_error_frac=0.5" in message
    assert not (out / "checkpoints").exists(), "nothing may be trained or saved on a broken reward"


def test_one_step_run_summary_checkpoint_size_export_resume_and_evaluate_defaults(tmp_path, capsys):
    out = tmp_path / "run"
    result = train(TrainConfig.from_args(tiny_args(out, steps=1, save_model="true")))
    err = capsys.readouterr().err
    assert "[riskrl] done: step 1/1" in err and "reward_mean" in err and "entropy" in err
    assert f"checkpoint: {out / 'checkpoints' / 'step-00000001'}" in err
    assert f"python -m llm.evaluate --model {out}" in err

    # Weights once: checkpoint = model/ (safetensors + config + tokenizer) + trainer_state (Adam: 2 moments).
    step_dir = out / "checkpoints" / "step-00000001"
    n_params = sum(p.numel() for p in result.model.parameters())  # tied weights counted once
    weights, optimizer = 4 * n_params, 2 * 4 * n_params
    tokenizer_bytes = sum(f.stat().st_size for f in (step_dir / "model").iterdir() if "token" in f.name)
    on_disk = sum(f.stat().st_size for f in step_dir.rglob("*") if f.is_file()) - tokenizer_bytes
    assert on_disk <= 1.1 * weights + optimizer, (on_disk, weights, optimizer)
    assert (out / "model" / "model.safetensors").is_file()  # save_model: the weights-only export, apart

    # --resume latest with nothing left: says so, trains nothing, rewrites nothing.
    config_before = (out / "config.yaml").read_text()
    metrics_before = (out / "metrics.jsonl").read_text()
    again = train(TrainConfig.from_args(tiny_args(out, steps=1, lr=5e-3, resume="latest")))
    assert again.metrics == {}
    assert "nothing to do" in capsys.readouterr().err
    assert (out / "config.yaml").read_text() == config_before and (out / "metrics.jsonl").read_text() == metrics_before

    # llm.evaluate on the run folder: its exported weights and the rewards it was trained with.
    from llm.evaluate import parse_args

    config = parse_args(["--model", str(out), "--datasets", "fixture:gsm8k_test", "--n", "2", "--k", "1"])
    assert config.model == str(out / "model")
    assert config.rewards == [("test_llm_train_stubs:crc_reward", 1.0)]
    assert config.accuracy_reward == "test_llm_train_stubs:crc_reward"
    explicit = parse_args(["--model", str(out), "--accuracy-reward", "format", "--n", "2", "--k", "1"])
    assert explicit.accuracy_reward == "format" and explicit.rewards == [("format", 1.0)]


# ---------------------------------------------------------------------------- ppo_update on a hand-made batch


def _policy_logprobs(model, batch):
    with torch.no_grad():
        return completion_logprobs(
            model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"], batch["completion_mask"]
        )[0]


def test_cov_logp_adv_is_the_batch_covariance_of_mean_logprob_and_advantage():
    from llm.update import ppo_update

    cfg, acc, model, optimizer, scheduler, batch = update_setup()
    logp = _policy_logprobs(model, batch).double().numpy()
    mask = batch["completion_mask"].double().numpy()
    seq = (logp * mask).sum(1) / mask.sum(1)
    adv = batch["advantages"].double().numpy()
    expected = float(np.mean((seq - seq.mean()) * (adv - adv.mean())))  # population covariance (1/N)
    metrics = ppo_update(cfg, acc, model, None, optimizer, scheduler, batch)
    # float32 log-probs of a 50k-way softmax, averaged: agreement to ~1e-6 relative.
    assert metrics["cov_logp_adv"] == pytest.approx(expected, rel=1e-5, abs=1e-8)
    assert expected != 0.0


def test_truncated_importance_sampling_weights_and_mismatch_metrics():
    from llm.update import ppo_update

    # Rollout log-probs equal to the trainer's: weights 1, the loss is the uncorrected one.
    cfg, acc, model, optimizer, scheduler, batch = update_setup(tis_cap=2.0)
    plain = ppo_update(cfg, acc, model, None, optimizer, scheduler, dict(batch))
    cfg, acc, model, optimizer, scheduler, batch = update_setup(tis_cap=2.0)
    exact = ppo_update(
        cfg, acc, model, None, optimizer, scheduler, {**batch, "sampled_logprobs": _policy_logprobs(model, batch)}
    )
    assert "mismatch/max_ratio" not in plain
    assert exact["loss"] == pytest.approx(plain["loss"], rel=1e-6)
    assert exact["mismatch/mean_abs_logp_diff"] == pytest.approx(0.0, abs=1e-6)
    assert exact["mismatch/max_ratio"] == pytest.approx(1.0, abs=1e-5)

    # The rollout engine gave every sampled token log(4) less: ρ = 4 everywhere, truncated at C = 2,
    # so every token's surrogate term is doubled and the (token-mean) loss with it.
    cfg, acc, model, optimizer, scheduler, batch = update_setup(tis_cap=2.0)
    shifted = ppo_update(
        cfg,
        acc,
        model,
        None,
        optimizer,
        scheduler,
        {**batch, "sampled_logprobs": _policy_logprobs(model, batch) - math.log(4.0)},
    )
    assert shifted["loss"] == pytest.approx(2.0 * plain["loss"], rel=1e-5)
    assert shifted["mismatch/mean_abs_logp_diff"] == pytest.approx(math.log(4.0), rel=1e-5)
    assert shifted["mismatch/max_ratio"] == pytest.approx(4.0, rel=1e-5)
    assert shifted["mismatch/tis_truncated_frac"] == 1.0

    # tis_cap = 0 switches the correction off even when the rollout reports log-probs.
    cfg, acc, model, optimizer, scheduler, batch = update_setup(tis_cap=0.0)
    off = ppo_update(
        cfg,
        acc,
        model,
        None,
        optimizer,
        scheduler,
        {**batch, "sampled_logprobs": _policy_logprobs(model, batch) - math.log(4.0)},
    )
    assert off["loss"] == pytest.approx(plain["loss"], rel=1e-6) and "mismatch/max_ratio" not in off


def test_gradient_checkpointing_gives_the_same_update():
    from llm.update import ppo_update

    results = []
    for checkpointing in (False, True):
        cfg, acc, model, optimizer, scheduler, batch = update_setup(gradient_checkpointing=checkpointing)
        if checkpointing:
            from llm.model import enable_activation_checkpointing

            enable_activation_checkpointing(model)
            assert getattr(model, "is_activation_checkpointing", None) or model.is_gradient_checkpointing
        metrics = ppo_update(cfg, acc, model, None, optimizer, scheduler, batch)
        results.append((metrics, {k: v.detach().clone() for k, v in model.state_dict().items()}))
    (plain, w_plain), (ckpt, w_ckpt) = results
    # Recomputing activations repeats the same float32 operations: identical up to kernel non-determinism.
    assert ckpt["loss"] == pytest.approx(plain["loss"], rel=1e-6)
    for name in w_plain:
        torch.testing.assert_close(w_ckpt[name], w_plain[name], rtol=0, atol=1e-6)
    assert any(
        not torch.equal(w_plain[n], v) for n, v in update_setup()[2].state_dict().items()
    )  # the update moved weights


def test_fsdp_needs_several_processes_and_says_so_before_loading(tmp_path, monkeypatch):
    import llm.train as train_mod

    def forbidden(*args, **kwargs):
        raise AssertionError("model was loaded before the bad input was reported")

    monkeypatch.setattr(train_mod, "load_policy", forbidden)
    with pytest.raises(ValueError, match="fsdp=true shards over several processes"):
        main(tiny_args(tmp_path / "run", fsdp="true", tied_embedding_grad_in_place="false"))
    with pytest.raises(ValueError, match="fsdp=true with rollout_backend='vllm'"):
        main(tiny_args(tmp_path / "run", fsdp="true", rollout_backend="vllm"))
    with pytest.raises(ValueError, match="tis_cap=0.5"):
        main(tiny_args(tmp_path / "run", tis_cap=0.5))


def test_shard_model_refuses_a_model_without_decoder_layers():
    from llm.sharding import is_sharded, shard_model

    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    assert not is_sharded(model)
    with pytest.raises(ValueError, match="no decoder layers"):
        shard_model(model)

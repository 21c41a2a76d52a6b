"""llm/train.py end to end on a tiny random model: config, bad input, a 2-step run, exact resume.

The tiny model (llm.model.build_tiny_model, hidden 64, 2 layers) uses the real
SmolLM2 tokenizer, so prompts and chat template are those of the default run;
rewards come from ``test_llm_train_stubs`` (deterministic, in-process).
"""

import math
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from tiny import read_jsonl, tiny_args, tiny_model, update_setup

import llm.train as train_mod
from llm.config import TrainConfig, check_batch_geometry
from llm.loss import completion_logprobs
from llm.train import main, train

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "llm" / "configs"


# ---------------------------------------------------------------------------- config


def test_dataclass_defaults_are_the_default_preset():
    assert TrainConfig.from_yaml(CONFIGS / "default.yaml") == TrainConfig()
    # ... and the preset spells out every field, so it documents the full default run.
    import yaml

    assert set(yaml.safe_load((CONFIGS / "default.yaml").read_text())) == {f.name for f in fields(TrainConfig)}


# compare*.yaml are llm/compare/experiment.py experiment files (methods x seeds), not train presets.
@pytest.mark.parametrize("preset", sorted(p.name for p in CONFIGS.glob("*.yaml") if not p.name.startswith("compare")))
def test_every_preset_loads_and_validates(preset):
    cfg = TrainConfig.from_yaml(CONFIGS / preset)
    cfg.validate()
    estimator = train_mod.build_estimator(cfg)
    check_batch_geometry(cfg, estimator.bundle_size, world_size=1)


def test_cli_overrides_are_typed_and_later_keys_win():
    cfg = TrainConfig.from_args(
        [
            "--config",
            str(CONFIGS / "dapo.yaml"),
            "--lr",
            "3e-5",
            "--steps=7",
            "--dynamic_sampling",
            "false",
            "--estimator_params",
            "{eps: 0.001}",
            "--output-dir",
            "x/y",
            "--clip_eps_high",
            "1",
        ]
    )
    assert cfg.lr == 3e-5 and isinstance(cfg.lr, float)
    assert cfg.steps == 7 and cfg.dynamic_sampling is False
    assert cfg.estimator == "grpo" and cfg.estimator_params == {"eps": 0.001}
    assert cfg.output_dir == "x/y" and cfg.clip_eps_high == 1.0 and isinstance(cfg.clip_eps_high, float)
    assert cfg.clip_eps_low == TrainConfig().clip_eps_low  # untouched keys keep the preset/default value


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--learning_rate", "1e-5"], "learning_rate"),
        (["--steps", "two"], "steps"),
        (["--steps", "1.5"], "steps"),
        (["--dynamic_sampling", "maybe"], "dynamic_sampling"),
        (["--lr"], "--lr: expected one argument"),
        (["steps", "3"], "unrecognized arguments: steps 3"),
    ],
)
def test_cli_errors_name_the_key(argv, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_args(argv)


def test_yaml_unknown_key_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("estimator: grpo\nbundle: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*bundle"):
        TrainConfig.from_yaml(bad)


# ---------------------------------------------------------------------------- bad input, before any compute


@pytest.fixture
def no_model_load(monkeypatch):
    """Fails the test if training gets as far as loading a model or generating."""

    def forbidden(*args, **kwargs):
        raise AssertionError("model was loaded before the bad input was reported")

    monkeypatch.setattr(train_mod, "load_policy", forbidden)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"estimator": "ppo"}, "unknown estimator 'ppo'"),
        ({"estimator_params": "{alpha: 0.9, beta: 0.8, bundle_size: 2}"}, "alpha=0.9 must be < beta=0.8"),
        (
            {"estimator_params": "{bundle_size: 3}"},
            "prompts_per_step=4 must be a multiple of the estimator's bundle_size=3",
        ),
        ({"estimator_params": "{bundel_size: 2}"}, "bundel_size"),
        ({"group_size": "1"}, "group_size=1"),
        ({"mini_batches": "3"}, "must be divisible by mini_batches \\* grad_accum = 3 \\* 1"),
        ({"clip_eps_low": "1.0"}, "clip_eps_low=1.0"),
        ({"importance_ratio": "seq"}, "importance_ratio='seq'"),
        ({"loss_agg": "mean"}, "loss_agg='mean'"),
        ({"temperature": "0"}, "temperature=0.0"),
        ({"report_to": "mlflow"}, "unknown tracker 'mlflow'"),
        ({"model": "/nonexistent/model/dir"}, "/nonexistent/model/dir"),
        ({"dataset": "no_such_benchmark"}, "no_such_benchmark"),
        ({"rewards": "[[no_such_module:fn, 1.0]]"}, "no_such_module"),
        ({"rewards": "[[format]]"}, "rewards\\[0\\]"),
    ],
)
def test_bad_input_fails_before_model_load(tmp_path, no_model_load, overrides, match):
    with pytest.raises((ValueError, ImportError)) as info:
        main(tiny_args(tmp_path / "run", **overrides))
    assert info.match(match)


def test_malformed_dataset_row_names_file_and_row(tmp_path, no_model_load):
    data = tmp_path / "broken.jsonl"
    data.write_text('{"question": "1+1?", "answer": "2"}\n{"question": "2+2?"}\n')
    with pytest.raises(ValueError) as info:
        main(tiny_args(tmp_path / "run", dataset=str(data)))
    message = str(info.value)
    assert "broken.jsonl" in message and "2" in message and "answer" in message


def test_resume_without_checkpoint_is_an_error(tmp_path, no_model_load):
    with pytest.raises(FileNotFoundError, match="no finished checkpoint"):
        main(tiny_args(tmp_path / "run", resume="latest"))


# ---------------------------------------------------------------------------- log-probs


def test_completion_logprobs_match_unpadded_forward():
    """Left-padded batched log-probs equal a one-sequence-at-a-time forward without padding."""
    from llm.model import SMOLLM2, build_tiny_model, load_tokenizer

    tokenizer = load_tokenizer(SMOLLM2)
    model = build_tiny_model(tokenizer, seed=1).double()
    prompts = [[5, 6, 7, 8, 9], [11, 12]]
    completions = [[21, 22, 23], [31, 32, 0]]
    completion_mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    width = max(map(len, prompts))
    pad = tokenizer.pad_token_id
    prompt_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    prompt_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    logprobs, entropy = completion_logprobs(
        model, prompt_ids, prompt_mask, torch.tensor(completions), completion_mask, temperature=0.7, with_entropy=True
    )
    for i, (p, c) in enumerate(zip(prompts, completions)):
        n = int(completion_mask[i].sum())
        ids = torch.tensor([p + c[:n]])
        logits = model(input_ids=ids).logits[0, len(p) - 1 : -1].double() / 0.7
        expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(c[:n]).unsqueeze(-1)).squeeze(-1)
        # float64 model: padding only changes which positions are masked, so agreement is to rounding.
        torch.testing.assert_close(logprobs[i, :n], expected, rtol=1e-9, atol=1e-9)
        probs = torch.softmax(logits, -1)
        torch.testing.assert_close(entropy[i, :n], -(probs * probs.log()).sum(-1), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------- end to end


METRIC_KEYS = {
    "step",
    "reward_mean",
    "reward_std",
    "entropy",
    "clip_frac",
    "kl",
    "completion_length",
    "adv_mean",
    "adv_std",
    "frac_zero_adv_groups",
    "q_alpha",
    "q_beta",
    "loss",
    "grad_norm",
    "lr",
    "time/generate",
    "time/reward",
    "time/train",
}


@pytest.mark.slow  # end to end (a whole training run or process launch): the default tier stays <= 90 s
def test_two_step_run_logs_metrics_and_changes_the_model(tmp_path, capsys):
    out = tmp_path / "run"
    # reward_max_error_frac=1: a function failing everywhere is tolerated (counted), not fatal, in this test.
    result = train(
        TrainConfig.from_args(
            tiny_args(
                out,
                rewards="[[test_llm_train_stubs:crc_reward, 1.0], [test_llm_train_stubs:raising_reward, 0.5]]",
                reward_max_error_frac=1.0,
            )
        )
    )
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert METRIC_KEYS <= set(row), METRIC_KEYS - set(row)
        assert all(math.isfinite(v) for v in row.values() if isinstance(v, float))
        # crc rewards lie in [0, 1); the raising function scores 0 on all 16 items and is counted.
        assert 0.0 <= row["reward_mean"] < 1.0 and row["reward_std"] > 0
        assert row["reward/test_llm_train_stubs:raising_reward"] == 0.0
        assert row["reward_errors/test_llm_train_stubs:raising_reward"] == 16
        assert row["q_alpha"] <= row["q_beta"]
        assert 1 <= row["completion_length"] <= 12
        # on-policy single update: ratio is exactly 1, nothing clipped
        assert row["clip_frac"] == 0.0 and row["ratio_mean"] == pytest.approx(1.0, abs=1e-6)
        # entropy of a near-uniform random model is close to log(vocab)
        assert 0 < row["entropy"] <= math.log(result.model.config.vocab_size) + 1e-4
        # the roofline account: achieved rates are positive fractions of the measured peaks
        assert row["roofline/update_gflop"] > 0 and 0 < row["roofline/update_frac_of_matmul_peak"]
        assert row["roofline/generate_gb"] > 0 and 0 < row["roofline/generate_frac_of_bound"]
    summary = capsys.readouterr().err
    assert "% of measured matmul peak" in summary and "% of the bandwidth bound" in summary
    assert f"peak RSS {rows[-1]['peak_memory_gb']:.2f} GiB" in summary
    # q_alpha/q_beta logged equal the tracker after the last step.
    tracker = result.estimator.tracker.values.tolist()
    assert rows[-1]["q_alpha"] == pytest.approx(tracker[0], abs=1e-12)
    assert rows[-1]["q_beta"] == pytest.approx(tracker[1], abs=1e-12)
    # The final checkpoint holds the trained weights (model/, once), which differ from the initial ones.
    from llm.checkpoint import load_checkpoint, load_weights
    from llm.model import SMOLLM2, build_tiny_model, load_tokenizer

    path, state = load_checkpoint("latest", out / "checkpoints")
    assert state["step"] == 2 and state["sampler"]["position"] == 8 and "model" not in state
    initial = build_tiny_model(load_tokenizer(SMOLLM2), seed=0)
    before = {k: v.clone() for k, v in initial.state_dict().items()}
    load_weights(initial, path / "model")
    changed = [k for k, v in initial.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "two optimizer steps at lr=1e-3 must move some weights"
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, initial.state_dict()[k]), k


@pytest.mark.slow  # end to end (a whole training run or process launch): the default tier stays <= 90 s
def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    """Train 2 steps saving every step; resume from step 1 elsewhere; step 2 must match exactly."""
    common = dict(  # 4-token completions: exactness does not depend on their length, and it is 3x cheaper
        max_new_tokens=4,
        steps=2,
        save_every=1,
        keep_last=2,
        mini_batches=2,
        ppo_epochs=2,
        grad_accum=2,
        kl_coef=0.05,
        lr_scheduler="cosine",
        warmup_steps=1,
    )
    full_dir = tmp_path / "full"
    full = train(TrainConfig.from_args(tiny_args(full_dir, **common)))
    full_rows = read_jsonl(full_dir / "metrics.jsonl")

    resumed_dir = tmp_path / "resumed"
    resumed = train(
        TrainConfig.from_args(tiny_args(resumed_dir, resume=str(full_dir / "checkpoints" / "step-00000001"), **common))
    )
    resumed_rows = read_jsonl(resumed_dir / "metrics.jsonl")
    assert [r["step"] for r in resumed_rows] == [2]
    # CPU float32 with the same inputs is deterministic: equality, not closeness.
    for a, b in zip(full_rows[1:], resumed_rows):
        for key in ("loss", "reward_mean", "q_alpha", "q_beta", "kl", "clip_frac", "entropy", "lr", "grad_norm"):
            assert a[key] == b[key], (key, a[key], b[key])
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert full.estimator.state_dict()["tracker"] == resumed.estimator.state_dict()["tracker"]


@pytest.mark.slow  # end to end, several generation rounds (~20 s): the default tier stays <= 90 s
def test_dynamic_sampling_replaces_zero_advantage_prompts(tmp_path):
    out = tmp_path / "run"
    train(
        TrainConfig.from_args(
            tiny_args(
                out,
                estimator="grpo",
                estimator_params="{}",
                steps=1,
                dynamic_sampling="true",
                dynamic_sampling_max_rounds=4,
                rewards="[[test_llm_train_stubs:half_constant_reward, 1.0]]",
            )
        )
    )
    row = read_jsonl(out / "metrics.jsonl")[0]
    # Some first-round prompts get a constant reward (zero GRPO advantage) ...
    assert row["frac_zero_adv_groups"] > 0
    # ... dynamic sampling generated again and trained on prompts that carry signal only.
    assert row["dynamic_sampling_rounds"] >= 1
    assert row["frac_zero_adv_groups_trained"] == 0.0


@pytest.mark.slow
def test_real_smollm2_default_config_runs_one_step(tmp_path):
    """The default preset with the real SmolLM2-135M-Instruct, shrunk to one short step (~1-2 min on 2 cores)."""
    out = tmp_path / "run"
    result = train(
        TrainConfig.from_args(
            [
                "--config",
                str(CONFIGS / "default.yaml"),
                "--steps",
                "1",
                "--group_size",
                "2",
                "--max_new_tokens",
                "24",
                "--output_dir",
                str(out),
                "--report_to",
                "none",
            ]
        )
    )
    row = read_jsonl(out / "metrics.jsonl")[0]
    assert METRIC_KEYS <= set(row)
    assert all(math.isfinite(v) for v in row.values() if isinstance(v, float))
    # rewards: final-answer (0/1) + 0.1 * format (0/1)
    assert 0.0 <= row["reward_mean"] <= 1.1 and 1 <= row["completion_length"] <= 24
    assert result.model.config.hidden_size == 576  # really SmolLM2-135M, not the tiny model
    checkpoint = out / "checkpoints" / "step-00000001"
    assert (checkpoint / "COMPLETE").is_file() and (checkpoint / "model" / "config.json").is_file()


@pytest.mark.parametrize("loss_agg", ["token-mean", "seq-mean-token-mean"])
def test_grad_accumulation_matches_one_big_micro_batch(loss_agg):
    """Micro-batch denominators span the mini-batch: on the same batch and start weights,
    grad_accum=4 must give grad_accum=1's loss and gradient (ppo_update on a hand-made batch)."""
    from llm.update import ppo_update

    results = []
    for accum in (1, 4):
        cfg, acc, model, optimizer, scheduler, batch = update_setup(
            rows=8, grad_accum=accum, loss_agg=loss_agg, max_grad_norm=1e9
        )
        results.append(ppo_update(cfg, acc, model, None, optimizer, scheduler, batch))
    one, four = results
    # every row's π_old sequence log-prob is collected whichever micro-batch it falls in
    assert four["cov_logp_adv"] == pytest.approx(one["cov_logp_adv"], rel=1e-6)
    # float32 sums in a different order: agreement to ~1e-6 relative.
    assert four["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-7)
    assert four["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-5)
    assert one["grad_norm"] > 0


@pytest.mark.parametrize(
    "geometry",
    [
        {"micro_batch_max_tokens": 24},  # 2 rows of 5 + 7 padded tokens per pass
        {"micro_batch_max_tokens": 1},  # below one row: one row per pass
        {"micro_batch_max_tokens": 36, "grad_accum": 2},  # 3 rows per pass, 4-row micro-batches
        {"micro_batch_max_tokens": 24, "mini_batches": 2},  # off policy: the no-grad pass is chunked too
    ],
)
def test_token_budget_chunks_give_the_unchunked_update(geometry):
    """micro_batch_max_tokens splits each micro-batch into row chunks whose gradients add up: the same
    loss, gradient norm and weights as one pass, with the forward count the budget implies."""
    from llm.update import ppo_update

    results, weights, passes = [], [], []
    for budget in (0, geometry["micro_batch_max_tokens"]):
        cfg, acc, model, optimizer, scheduler, batch = update_setup(
            rows=8, max_grad_norm=1e9, **{**geometry, "micro_batch_max_tokens": budget}
        )
        calls = []
        hook = acc.unwrap_model(model).register_forward_hook(lambda _m, _args, _out, calls=calls: calls.append(1))
        results.append(ppo_update(cfg, acc, model, None, optimizer, scheduler, batch))
        hook.remove()
        passes.append(len(calls))
        weights.append(torch.cat([p.detach().flatten() for p in acc.unwrap_model(model).parameters()]))
    (plain, chunked), width = results, 5 + 7
    per_pass = max(1, geometry["micro_batch_max_tokens"] // width)
    micro = 8 // (geometry.get("mini_batches", 1) * geometry.get("grad_accum", 1))
    forwards = -(-micro // per_pass) * (8 // micro)  # ceil per micro-batch, times micro-batches
    off_policy = geometry.get("mini_batches", 1) > 1
    assert passes == [8 // micro * (1 + off_policy), forwards * (1 + off_policy)]
    # float32 sums in a different order: agreement to ~1e-6 relative (as grad_accum above).
    assert chunked["loss"] == pytest.approx(plain["loss"], rel=1e-5, abs=1e-7)
    assert chunked["grad_norm"] == pytest.approx(plain["grad_norm"], rel=1e-5)
    assert chunked["cov_logp_adv"] == pytest.approx(plain["cov_logp_adv"], rel=1e-5)
    assert plain["grad_norm"] > 0
    # AdamW's first step moves every weight by ~lr whatever the gradient's scale; 1e-6 absolute.
    assert torch.allclose(weights[0], weights[1], rtol=0, atol=1e-6)


def test_cpu_threads_use_every_core_despite_accelerates_omp_default(monkeypatch):
    """accelerate launch exports OMP_NUM_THREADS=1; cpu_threads=0 gives each local process its share of the
    cores this process may run on, an explicit value is kept, a negative one is refused by name."""
    import os

    from llm.train import cpu_threads

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert cpu_threads(0) == cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert cpu_threads(0) == max(1, cores // 2)
    assert cpu_threads(3) == 3
    with pytest.raises(ValueError, match="cpu_threads"):
        TrainConfig(cpu_threads=-1).validate()


def test_tied_embedding_grad_in_place_gives_the_dense_gradient():
    """The LM head's weight gradient added straight into ``.grad`` plus the embedding's sparse rows: over
    two accumulated passes (``.grad`` absent, then present) every parameter's gradient equals the plain
    autograd one, and stays dense; the head really bypasses autograd and the embedding really is sparse
    (so the setting is not a no-op); untied embeddings and fsdp are refused by name."""
    from llm.loss import completion_logprobs
    from llm.model import accumulate_tied_grad_in_place

    _cfg, _acc, _model, _opt, _sched, batch = update_setup(rows=6, tied_embedding_grad_in_place=False)
    grads = []
    for in_place in (False, True):
        model = tiny_model(seed=0)
        if in_place:
            accumulate_tied_grad_in_place(model)
        for rows in (slice(0, 3), slice(3, 6)):  # two passes accumulate, as row chunks do
            mb = {k: v[rows] for k, v in batch.items()}
            logprobs, _ = completion_logprobs(
                model, mb["prompt_ids"], mb["prompt_mask"], mb["completion_ids"], mb["completion_mask"]
            )
            (logprobs * mb["completion_mask"]).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    plain, in_place = grads
    assert plain.keys() == in_place.keys()
    for name, grad in plain.items():
        assert in_place[name].layout == torch.strided and not in_place[name].is_sparse
        # float32 sums in a different order: equal to ~1e-7 relative; 1e-6 of the largest entry.
        assert torch.allclose(in_place[name], grad, rtol=0, atol=1e-6 * float(grad.abs().max())), name
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    assert embedding.weight.grad.abs().sum() > 0
    hidden = torch.randn(2, embedding.weight.shape[1], requires_grad=True)
    assert torch.autograd.grad(head(hidden).sum(), embedding.weight, allow_unused=True)[0] is None
    alone = torch.autograd.grad(embedding(batch["prompt_ids"]).sum(), embedding.weight)[0]
    assert alone.is_sparse

    untied = tiny_model(seed=0)
    untied.config.tie_word_embeddings = False
    untied.lm_head.weight = torch.nn.Parameter(untied.lm_head.weight.detach().clone())
    with pytest.raises(ValueError, match="tied_embedding_grad_in_place"):
        accumulate_tied_grad_in_place(untied)
    with pytest.raises(ValueError, match="tied_embedding_grad_in_place"):
        TrainConfig(fsdp=True).validate()


def test_every_cpu_pass_returns_its_heap_pages(monkeypatch):
    """After each forward/backward on CPU the freed activations' pages go back to the OS (malloc_trim):
    one trim per pass, so the next pass and AdamW's moments reuse pages instead of growing the heap."""
    import llm.update
    from llm.model import trim_heap

    assert trim_heap() is True  # glibc: the trim ran (this suite runs on Linux)
    calls = []
    monkeypatch.setattr(llm.update, "trim_heap", lambda: calls.append(1) or True)
    cfg, acc, model, optimizer, scheduler, batch = update_setup(rows=8, micro_batch_max_tokens=24)
    llm.update.ppo_update(cfg, acc, model, None, optimizer, scheduler, batch)
    assert len(calls) == 8 // 2  # 2 rows of 12 padded tokens per pass


def test_token_budget_must_be_a_nonnegative_integer():
    with pytest.raises(ValueError, match="micro_batch_max_tokens"):
        TrainConfig(micro_batch_max_tokens=-1).validate()


@pytest.mark.slow
@pytest.mark.parametrize("loss_agg", ["token-mean", "seq-mean-token-mean"])
def test_grad_accumulation_matches_one_big_micro_batch_end_to_end(tmp_path, loss_agg):
    """The same through train(): the trainer hands grad_accum to the Accelerator and the rollouts match."""
    results = []
    for accum in (1, 4):
        out = tmp_path / f"accum{accum}"
        train(TrainConfig.from_args(tiny_args(out, steps=1, grad_accum=accum, loss_agg=loss_agg, max_grad_norm=1e9)))
        results.append(read_jsonl(out / "metrics.jsonl")[0])
    one, four = results
    assert one["reward_mean"] == four["reward_mean"]  # same rollouts (seeded per step)
    # float32 sums in a different order: agreement to ~1e-6 relative.
    assert four["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-7)
    assert four["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-5)
    assert one["grad_norm"] > 0

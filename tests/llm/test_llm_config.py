"""llm/config.py: every key reachable from the command line and YAML, and a --help that documents each one."""

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from llm.config import TrainConfig, build_parser

REPO = Path(__file__).resolve().parents[2]

# A value different from the default for every key, written as a user would type it.
NON_DEFAULT = {
    "model": ("tiny-random", "tiny-random"),
    "dtype": ("bfloat16", "bfloat16"),
    "dataset": ("gsm8k", "gsm8k"),
    "dataset_limit": ("7", 7),
    "system_prompt": ("Be brief.", "Be brief."),
    "max_prompt_tokens": ("99", 99),
    "estimator": ("grpo", "grpo"),
    "estimator_params": ("{eps: 0.01}", {"eps": 0.01}),
    "prompts_per_step": ("10", 10),
    "group_size": ("3", 3),
    "max_new_tokens": ("17", 17),
    "temperature": ("0.7", 0.7),
    "top_p": ("0.9", 0.9),
    "rollout_backend": ("vllm", "vllm"),
    "vllm_gpu_memory_utilization": ("0.5", 0.5),
    "tis_cap": ("3", 3.0),
    "rewards": ("[[format, 2.0]]", [["format", 2.0]]),
    "reward_workers": ("0", 0),
    "reward_timeout_s": ("1.5", 1.5),
    "reward_max_error_frac": ("0.2", 0.2),
    "lr": ("1e-5", 1e-5),
    "weight_decay": ("0.1", 0.1),
    "warmup_steps": ("4", 4),
    "lr_scheduler": ("cosine", "cosine"),
    "ppo_epochs": ("2", 2),
    "mini_batches": ("2", 2),
    "grad_accum": ("2", 2),
    "max_grad_norm": ("0", 0.0),
    "clip_eps_low": ("0.1", 0.1),
    "clip_eps_high": ("0.28", 0.28),
    "importance_ratio": ("token", "token"),
    "loss_agg": ("seq-mean-token-sum", "seq-mean-token-sum"),
    "kl_coef": ("0.04", 0.04),
    "dynamic_sampling": ("true", True),
    "dynamic_sampling_max_rounds": ("5", 5),
    "micro_batch_max_tokens": ("64", 64),
    "gradient_checkpointing": ("false", False),
    "tied_embedding_grad_in_place": ("false", False),
    "cpu_threads": ("3", 3),
    "fsdp": ("true", True),
    "seed": ("3", 3),
    "steps": ("9", 9),
    "log_every": ("2", 2),
    "save_every": ("3", 3),
    "keep_last": ("4", 4),
    "save_model": ("false", False),
    "output_dir": ("runs/x", "runs/x"),
    "resume": ("latest", "latest"),
    "report_to": ("none", "none"),
    "dist_timeout_s": ("60", 60.0),
}


def test_table_covers_every_key():
    assert set(NON_DEFAULT) == {f.name for f in fields(TrainConfig)}


@pytest.mark.parametrize("key", sorted(NON_DEFAULT))
def test_every_key_is_settable_from_the_command_line_in_both_spellings(key):
    text, expected = NON_DEFAULT[key]
    assert getattr(TrainConfig(), key) != expected
    for flag in (f"--{key}", f"--{key.replace('_', '-')}"):
        cfg = TrainConfig.from_args([flag, text])
        assert getattr(cfg, key) == expected and type(getattr(cfg, key)) is type(expected)
    assert getattr(TrainConfig.from_args([f"--{key}={text}"]), key) == expected


def test_every_key_is_settable_from_yaml(tmp_path):
    preset = tmp_path / "all.yaml"
    preset.write_text(
        "".join(
            f"{key}: {text!r}\n" if key in ("system_prompt",) else f"{key}: {text}\n"
            for key, (text, _) in NON_DEFAULT.items()
        )
    )
    cfg = TrainConfig.from_yaml(preset)
    assert {k: getattr(cfg, k) for k in NON_DEFAULT} == {k: v for k, (_, v) in NON_DEFAULT.items()}


def test_flags_beat_the_preset_wherever_config_appears():
    preset = str(REPO / "llm" / "configs" / "gspo.yaml")
    before = TrainConfig.from_args(["--steps", "2", "--config", preset])
    after = TrainConfig.from_args(["--config", preset, "--steps", "2"])
    assert before == after and before.steps == 2 and before.clip_eps_low == 0.0003  # 0.0003 from gspo.yaml
    assert TrainConfig.from_args(["--steps", "2", "--steps", "5"]).steps == 5  # the last flag wins


def test_bare_boolean_flag_and_no_flag():
    assert TrainConfig.from_args(["--dynamic_sampling"]).dynamic_sampling is True
    assert TrainConfig.from_args(["--no_save_model"]).save_model is False


def test_help_lists_every_key_with_its_default_and_meaning(monkeypatch):
    monkeypatch.setenv("COLUMNS", "10000")  # argparse wraps (and splits hyphenated words) at the terminal width
    text = " ".join(build_parser().format_help().split())
    for f in fields(TrainConfig):
        assert f"--{f.name}" in text, f.name
        assert " ".join(f.metadata["help"].split()) in text, f.name
    assert text.count("(default:") >= len(fields(TrainConfig))
    assert "(default: riskpo)" in text and "(default: 5)" in text


def test_help_shows_the_presets_values(monkeypatch):
    monkeypatch.setenv("COLUMNS", "10000")
    text = " ".join(
        build_parser(defaults=yaml.safe_load((REPO / "llm/configs/dapo.yaml").read_text())).format_help().split()
    )
    assert "(default: grpo)" in text and "(default: 0.28)" in text


def test_help_from_the_command_line_exits_zero():
    proc = subprocess.run(
        [sys.executable, str(REPO / "llm" / "train.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--prompts_per_step" in proc.stdout and "--estimator_params" in proc.stdout


def test_dict_and_list_keys_reject_the_wrong_yaml_kind():
    with pytest.raises(ValueError, match="estimator_params"):
        TrainConfig.from_args(["--estimator_params", "[1, 2]"])
    with pytest.raises(ValueError, match="rewards"):
        TrainConfig.from_args(["--rewards", "format"])


@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), float("nan")])
def test_dist_timeout_must_be_a_positive_finite_number(value):
    with pytest.raises(ValueError, match="dist_timeout_s"):
        TrainConfig(dist_timeout_s=value).validate()

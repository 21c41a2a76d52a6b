"""The accelerate launch configs and the batch arithmetic they rely on (no GPU here: configs are parsed, not run)."""

from pathlib import Path

import pytest
import yaml

from llm.config import TrainConfig, check_batch_geometry
from llm.sharding import deepspeed_batch_config
from llm.train import build_estimator

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "llm" / "accelerate_configs"
PRESETS = REPO / "llm" / "configs"


@pytest.mark.parametrize(
    "name, kind, processes, machines",
    [
        ("ddp", "MULTI_GPU", 2, 1),
        ("fsdp", "FSDP", 2, 1),
        ("deepspeed", "DEEPSPEED", 2, 1),
        ("multinode_2x8", "MULTI_GPU", 16, 2),
    ],
)
def test_accelerate_reads_every_launch_config(name, kind, processes, machines):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(LAUNCH / f"{name}.yaml"))
    assert config.distributed_type.name == kind
    assert (config.num_processes, config.num_machines) == (processes, machines)
    if machines > 1:
        assert config.main_process_ip and config.main_process_port


def test_deepspeed_plugin_gets_explicit_batch_sizes_from_the_trainer_settings():
    """accelerate refuses "auto" micro-batch sizes when prepare() sees no dataloader (our case);
    the trainer fills them."""
    from accelerate.utils import DeepSpeedPlugin

    keys = yaml.safe_load((LAUNCH / "deepspeed.yaml").read_text())["deepspeed_config"]
    cfg = TrainConfig(prompts_per_step=8, group_size=8, mini_batches=2, grad_accum=2, max_grad_norm=1.0)
    plugin = DeepSpeedPlugin(gradient_accumulation_steps=cfg.grad_accum, **keys)
    assert plugin.deepspeed_config["train_micro_batch_size_per_gpu"] == "auto"  # what accelerate would reject
    plugin.deepspeed_config.update(deepspeed_batch_config(cfg, num_processes=2))
    ds = plugin.deepspeed_config
    # 8 prompts / 2 processes * 8 completions = 32 rows per process = 2 mini-batches x 2 micro-batches x 8 rows.
    assert ds["train_micro_batch_size_per_gpu"] == 8 and ds["gradient_accumulation_steps"] == 2
    assert ds["train_batch_size"] == 8 * 2 * 2 and ds["gradient_clipping"] == 1.0
    assert "auto" not in (ds["train_batch_size"], ds["train_micro_batch_size_per_gpu"], ds["gradient_clipping"])


@pytest.mark.parametrize(
    "preset",
    sorted(p.name for p in PRESETS.glob("*.yaml") if p.name != "default.yaml" and not p.name.startswith("compare")),
)
def test_gpu_presets_fit_one_node_of_up_to_8_gpus(preset):
    cfg = TrainConfig.from_yaml(PRESETS / preset)
    estimator = build_estimator(cfg)
    for processes in (1, 2, 4, 8):
        check_batch_geometry(cfg, estimator.bundle_size, processes)
    assert cfg.gradient_checkpointing  # GPU presets trade compute for activation memory


def test_riskpo_on_two_nodes_needs_a_multiple_of_bundle_size_and_16():
    cfg = TrainConfig.from_yaml(PRESETS / "riskpo.yaml")
    check_batch_geometry(cfg, 5, 16)  # the preset's 480 prompts: bundles of 5, 30 prompts per process on 2 x 8
    cfg.prompts_per_step = 40  # a multiple of B = 5 and of 8 processes, but not of 16
    with pytest.raises(ValueError, match="divisible by the number of processes=16"):
        check_batch_geometry(cfg, 5, 16)

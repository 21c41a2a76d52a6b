"""The trainer's configuration: one dataclass, loaded from YAML presets and the command line.

    python llm/train.py --help                                  # every key, its default and meaning
    accelerate launch llm/train.py --config llm/configs/gspo.yaml --steps 20 --lr 2e-6

Precedence: dataclass defaults < ``--config`` YAML < ``--key value`` flags (the
last flag wins). Parsing uses transformers' ``HfArgumentParser`` (as TRL and
open-r1 do); dict and list keys (``estimator_params``, ``rewards``) take a YAML
value, e.g. ``--estimator_params '{alpha: 0.1, beta: 0.9, bundle_size: 5}'``.
Bad input is a ``ValueError`` naming the key, raised before anything is loaded.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import yaml

from theory.checks import (
    check_choice,
    check_finite_number,
    check_int,
    check_nonnegative,
    check_positive,
    check_probability,
)

__all__ = ["TrainConfig", "ROLLOUT_BACKENDS", "SCHEDULERS", "TRACKERS", "TINY_MODEL", "DTYPES", "build_parser"]

DTYPES = ("float32", "bfloat16", "float16")
ROLLOUT_BACKENDS = ("hf", "vllm")
SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
TRACKERS = ("none", "tensorboard", "wandb", "trackio")
IMPORTANCE_RATIOS = ("token", "sequence")
LOSS_AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")
TINY_MODEL = "tiny-random"  # random-init tiny Llama with the SmolLM2 tokenizer: smoke tests, no weights needed


def _key(default, help: str, section: str):
    """A config key: its default, the one-line meaning ``--help`` prints, and its --help section."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help, "section": section})
    return field(default=default, metadata={"help": help, "section": section})


MODEL, ADV, ROLL, REWARD, OPTIM, LOSS, MEMORY, RUN = (
    "model and data",
    "advantages (theory/ registry)",
    "rollouts",
    "rewards",
    "optimisation",
    "loss",
    "memory and distribution",
    "run",
)


@dataclass
class TrainConfig:
    """Every knob of a run. Defaults ARE llm/configs/default.yaml (a test keeps them equal)."""

    model: str = _key("smollm2-135m-instruct", "alias, local dir, .gguf, hub id, or tiny-random (smoke tests)", MODEL)
    dtype: str = _key("float32", "parameter dtype: float32 | bfloat16 | float16", MODEL)
    dataset: str = _key(
        "reasoning_gym:basic_arithmetic?max_terms=2&max_digits=1",
        "training prompts, see llm.data.load_dataset_examples (gsm8k, fixture:NAME, file.jsonl, ...)",
        MODEL,
    )
    dataset_limit: int = _key(0, "use only the first N rows (0 = all)", MODEL)
    system_prompt: str = _key("", "system message of the chat template (empty = llm.data.DEFAULT_SYSTEM_PROMPT)", MODEL)
    max_prompt_tokens: int = _key(256, "prompts are truncated to this many tokens", MODEL)

    estimator: str = _key("riskpo", "advantage estimator name in theory/ (riskpo, grpo, dr_grpo, rs_grpo, ...)", ADV)
    estimator_params: dict = _key(
        {"alpha": 0.2, "beta": 0.8, "omega": 0.5, "bundle_size": 5}, "YAML mapping of the estimator's parameters", ADV
    )

    prompts_per_step: int = _key(
        5, "GLOBAL prompts per step (all processes); a multiple of bundle_size x processes", ROLL
    )
    group_size: int = _key(4, "G completions sampled per prompt (>= 2)", ROLL)
    max_new_tokens: int = _key(64, "completion length cap in tokens", ROLL)
    temperature: float = _key(1.0, "sampling temperature (log-probs use the same temperature)", ROLL)
    top_p: float = _key(1.0, "nucleus sampling mass in (0, 1]", ROLL)
    rollout_backend: str = _key("hf", "hf (model.generate on the policy) | vllm (colocated engine)", ROLL)
    vllm_gpu_memory_utilization: float = _key(0.3, "share of GPU memory the vLLM engine may take", ROLL)
    tis_cap: float = _key(
        2.0,
        "truncated importance sampling cap C >= 1 for the rollout/trainer mismatch: tokens are "
        "weighted by min(pi_train/pi_rollout, C) when the backend reports sampled log-probs; "
        "0 = no correction",
        ROLL,
    )

    rewards: list = _key(
        [["llm.rewards.builtin:final_answer_reward", 1.0], ["format", 0.1]],
        "YAML list of [name_or_module:function, weight] pairs, summed",
        REWARD,
    )
    reward_workers: int = _key(2, "worker processes for rewards with a deadline (0 = in-process)", REWARD)
    reward_timeout_s: float = _key(
        5.0, "per-item deadline of worker rewards; a late item scores 0 and counts as an error", REWARD
    )
    reward_max_error_frac: float = _key(
        0.5,
        "abort the run when one reward function fails (raises or times out) on more "
        "than this share of a step's completions",
        REWARD,
    )

    lr: float = _key(2e-6, "AdamW learning rate", OPTIM)
    weight_decay: float = _key(0.0, "AdamW weight decay", OPTIM)
    warmup_steps: int = _key(0, "learning-rate warm-up, in optimizer steps", OPTIM)
    lr_scheduler: str = _key("constant", "constant | constant_with_warmup | linear | cosine", OPTIM)
    ppo_epochs: int = _key(1, "passes over each step's rollouts", OPTIM)
    mini_batches: int = _key(1, "optimizer steps per epoch (rollouts split into this many mini-batches)", OPTIM)
    grad_accum: int = _key(1, "micro-batches per mini-batch (gradient accumulation)", OPTIM)
    max_grad_norm: float = _key(1.0, "gradient-norm clipping (0 = none)", OPTIM)

    clip_eps_low: float = _key(0.2, "ratio lower bound 1 - eps_low, in [0, 1)", LOSS)
    clip_eps_high: float = _key(0.2, "ratio upper bound 1 + eps_high (> clip_eps_low = DAPO clip-higher)", LOSS)
    importance_ratio: str = _key("sequence", "token (PPO/GRPO) | sequence (GSPO, RiskPO paper)", LOSS)
    loss_agg: str = _key(
        "seq-mean-token-mean", "token-mean | seq-mean-token-mean (RiskPO eq. (3)) | seq-mean-token-sum", LOSS
    )
    kl_coef: float = _key(0.0, "k3 KL penalty to the starting policy (> 0 builds a frozen reference)", LOSS)
    dynamic_sampling: bool = _key(False, "DAPO: replace prompts whose advantages are all zero by fresh ones", LOSS)
    dynamic_sampling_max_rounds: int = _key(3, "extra generation rounds per step at most", LOSS)

    gradient_checkpointing: bool = _key(
        False, "recompute activations in backward (less memory, about a third more compute)", MEMORY
    )
    fsdp: bool = _key(
        False,
        "shard the policy (and the KL reference) over the processes with torch FSDP2 fully_shard, "
        "applied by the trainer: works with a plain multi-process launch, CPU (gloo) included; "
        "not together with an accelerate FSDP/DeepSpeed config",
        MEMORY,
    )

    seed: int = _key(0, "seed of data order, sampling and initialisation", RUN)
    steps: int = _key(3, "training steps (one rollout batch each)", RUN)
    log_every: int = _key(1, "write metrics every N steps (the last step is always written)", RUN)
    save_every: int = _key(0, "checkpoint every N steps (0 = only after the last step)", RUN)
    keep_last: int = _key(2, "finished checkpoints to keep", RUN)
    save_model: bool = _key(True, "also export the final weights with save_pretrained to output_dir/model", RUN)
    output_dir: str = _key("runs/default", "run folder: config.yaml, metrics.jsonl, checkpoints/, model/", RUN)
    resume: str = _key("", "'' | latest | a checkpoint dir (or checkpoints root) to continue from", RUN)
    report_to: str = _key("tensorboard", "comma list of none | tensorboard | wandb | trackio", RUN)

    # ------------------------------------------------------------------ loading

    @classmethod
    def field_types(cls) -> dict[str, type]:
        return typing.get_type_hints(cls)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> TrainConfig:
        types = cls.field_types()
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise ValueError(f"{source}: unknown config key(s) {unknown}; valid keys: {sorted(types)}")
        return cls(**{k: _coerce(k, v, types[k], source) for k, v in values.items()})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a config file must be a mapping of key: value")
        return cls.from_dict(values, source=str(path))

    @classmethod
    def from_args(cls, argv: list[str] | None = None) -> TrainConfig:
        """``[--config file.yaml] [--key value | --key=value ...]``; flags beat the file, later flags win."""
        argv = list(sys.argv[1:] if argv is None else argv)
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--config", default=None)
        known, _ = pre.parse_known_args(argv)
        base = cls.from_yaml(known.config) if known.config else cls()
        parser = build_parser(defaults=asdict(base))
        values = vars(parser.parse_args(argv))
        values.pop("config", None)
        return cls.from_dict(values, source="command line")

    def validate(self) -> None:
        """Cheap checks that need no model, no data and no processes; each error names its field."""
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("rollout_backend", self.rollout_backend, ROLLOUT_BACKENDS)
        check_choice("lr_scheduler", self.lr_scheduler, SCHEDULERS)
        check_choice("importance_ratio", self.importance_ratio, IMPORTANCE_RATIOS)
        check_choice("loss_agg", self.loss_agg, LOSS_AGGREGATIONS)
        for name, minimum in (
            ("max_prompt_tokens", 1),
            ("dataset_limit", 0),
            ("prompts_per_step", 1),
            ("group_size", 2),
            ("max_new_tokens", 1),
            ("reward_workers", 0),
            ("warmup_steps", 0),
            ("ppo_epochs", 1),
            ("mini_batches", 1),
            ("grad_accum", 1),
            ("dynamic_sampling_max_rounds", 0),
            ("seed", 0),
            ("steps", 1),
            ("log_every", 1),
            ("save_every", 0),
            ("keep_last", 1),
        ):
            check_int(name, getattr(self, name), minimum)
        for name in (
            "temperature",
            "top_p",
            "vllm_gpu_memory_utilization",
            "tis_cap",
            "reward_timeout_s",
            "reward_max_error_frac",
            "lr",
            "weight_decay",
            "max_grad_norm",
            "clip_eps_low",
            "clip_eps_high",
            "kl_coef",
        ):
            check_finite_number(name, getattr(self, name))
        check_positive("temperature", self.temperature)
        check_probability("top_p", self.top_p, open_low=True)
        check_probability("vllm_gpu_memory_utilization", self.vllm_gpu_memory_utilization, open_low=True)
        if self.tis_cap != 0 and self.tis_cap < 1:
            raise ValueError(f"tis_cap={self.tis_cap} must be 0 (no correction) or >= 1")
        check_positive("reward_timeout_s", self.reward_timeout_s)
        check_probability("reward_max_error_frac", self.reward_max_error_frac)
        for name in ("lr", "weight_decay", "max_grad_norm", "clip_eps_high", "kl_coef"):
            check_nonnegative(name, getattr(self, name))
        check_probability("clip_eps_low", self.clip_eps_low, open_high=True)  # 1 - eps_low must stay > 0
        if self.fsdp and self.rollout_backend == "vllm":
            # The engine's weight sync reads module.state_dict(), which FSDP2 keeps sharded (DTensors).
            raise ValueError("fsdp=true with rollout_backend='vllm' is not supported yet: use the hf backend or DDP")
        if not self.output_dir:
            raise ValueError("output_dir='' must be a directory path")
        for tracker in self.trackers():
            if tracker not in TRACKERS:
                raise ValueError(f"report_to={self.report_to!r}: unknown tracker {tracker!r}; choose from {TRACKERS}")
        if not self.rewards:
            raise ValueError("rewards=[] must name at least one reward function")
        for i, spec in enumerate(self.rewards):
            if not (
                isinstance(spec, (list, tuple))
                and len(spec) == 2
                and isinstance(spec[0], str)
                and isinstance(spec[1], (int, float))
                and not isinstance(spec[1], bool)
                and math.isfinite(spec[1])
            ):
                raise ValueError(f"rewards[{i}]={spec!r} must be [name_or_module:function, finite weight]")

    def trackers(self) -> list[str]:
        return [t.strip() for t in self.report_to.split(",") if t.strip() and t.strip() != "none"]


# ============================================================================ parsing


def _coerce(key: str, value, typ: type, source: str):
    """Checks a loaded value against the field type; ints are accepted for float fields."""
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        dict: lambda v: isinstance(v, dict),
        list: lambda v: isinstance(v, list),
    }[typ]
    if value is None and typ is str:
        return ""
    if isinstance(value, str) and typ in (int, float):
        # YAML 1.1 reads "1e-5" (no dot) as a string; accept any numeral Python accepts.
        try:
            value = typ(value)
        except ValueError:
            pass
    if not ok(value):
        raise ValueError(f"{source}: {key}={value!r} must be of type {typ.__name__}")
    return float(value) if typ is float else value


def _yaml_of(key: str, kind: type):
    def parse(text: str):
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise argparse.ArgumentTypeError(f"cannot parse {text!r} as YAML: {err}") from None
        if not isinstance(value, kind):
            raise argparse.ArgumentTypeError(f"{text!r} must be a YAML {kind.__name__}")
        return value

    parse.__name__ = f"YAML {kind.__name__}"
    return parse


def _parser_base():
    from transformers import HfArgumentParser

    class ConfigParser(HfArgumentParser):
        """HfArgumentParser with YAML-valued dict/list keys, --help sections, and ValueError instead of exit(2)."""

        def _add_dataclass_arguments(self, dtype) -> None:
            hints = typing.get_type_hints(dtype)
            groups: dict[str, argparse._ArgumentGroup] = {}
            for f in fields(dtype):
                f = copy.copy(f)
                meta = dict(f.metadata)
                section = meta.pop("section", "options")
                f.metadata, f.type = meta, hints[f.name]
                group = groups.get(section) or groups.setdefault(section, self.add_argument_group(section))
                self._parse_dataclass_field(group, f)

        @staticmethod
        def _parse_dataclass_field(parser, f) -> None:
            if f.type in (dict, list):
                names = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
                parser.add_argument(
                    *names,
                    type=_yaml_of(f.name, f.type),
                    default=f.default_factory(),
                    help=f.metadata.get("help"),
                    metavar="YAML",
                )
            else:
                HfArgumentParser._parse_dataclass_field(parser, f)

        def error(self, message: str):
            raise ValueError(f"llm/train.py: {message} (see --help)")

    return ConfigParser


def build_parser(defaults: dict | None = None) -> argparse.ArgumentParser:
    """The command-line parser; ``defaults`` (e.g. a loaded preset) replace the dataclass defaults shown and used."""
    parser = _parser_base()(
        TrainConfig,
        prog="llm/train.py",
        allow_abbrev=False,
        usage="%(prog)s [-h] [--config FILE.yaml] [--KEY VALUE ...]",
        description="RLVR post-training of a causal LM with any advantage estimator from theory/. "
        "Keys can also come from a YAML preset (--config); flags override it.",
        epilog="Examples: accelerate launch llm/train.py  |  accelerate launch llm/train.py --config "
        "llm/configs/gspo.yaml --steps 20  |  python llm/train.py --resume latest --output_dir runs/default",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE.yaml",
        help="YAML preset (llm/configs/*.yaml); its keys replace the defaults below",
    )
    if defaults:
        parser.set_defaults(**{k: v for k, v in defaults.items() if k != "config"})
    return parser


def default_values() -> dict:
    """Field name -> default (the dataclass's, without instantiating the parser)."""
    out = {}
    for f in fields(TrainConfig):
        out[f.name] = f.default if f.default is not MISSING else f.default_factory()
    return out

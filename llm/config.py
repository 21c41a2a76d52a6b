"""The trainer's configuration: one dataclass, loaded from YAML presets and the command line.

    python llm/train.py --help                                  # every key, its default and meaning
    accelerate launch llm/train.py --config llm/configs/gspo.yaml --steps 20 --lr 2e-6

Precedence: dataclass defaults < ``--config`` YAML < ``--key value`` flags (the last flag wins).
Bad input is a ``ValueError`` naming the key, raised before anything is loaded.

Parsing uses transformers' ``HfArgumentParser`` (as TRL and open-r1 do: the flag spellings, bool
``--x``/``--no_x`` pairs and ``--help`` with defaults users of those tools know), through its
public API only: the constructor, ``parse_args_into_dataclasses`` and the argparse methods it
inherits (``add_argument``, ``set_defaults``; ``exit_on_error=False`` so errors become
ValueErrors). The parser reads ``cli_dataclasses()``: one dataclass per ``--help`` section (the
``_argument_group_name`` HfArgumentParser reads), in which the dict and list keys
(``estimator_params``, ``rewards``) are YAML text, e.g. ``--estimator_params '{alpha: 0.1,
beta: 0.9, bundle_size: 5}'``; ``TrainConfig.from_dict`` then checks every value's type. tyro
or simple-parsing would read nested types directly, but neither is a dependency, and
transformers already is. ``read_yaml_mapping`` is the one YAML loader of the trainer and of
``llm.compare``.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, make_dataclass
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

__all__ = [
    "TrainConfig",
    "ROLLOUT_BACKENDS",
    "SCHEDULERS",
    "TRACKERS",
    "TINY_MODEL",
    "DTYPES",
    "build_parser",
    "read_yaml_mapping",
    "check_batch_geometry",
]

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

    micro_batch_max_tokens: int = _key(
        128,
        "cap on the padded tokens (rows x (prompt + completion width)) of one forward/backward: a "
        "micro-batch over it runs as row chunks whose gradients add up to the same update, as verl's "
        "ppo_max_token_len_per_gpu (0 = no cap; at least one row per chunk)",
        MEMORY,
    )
    gradient_checkpointing: bool = _key(
        True, "recompute activations in backward (less memory, about a third more compute)", MEMORY
    )
    tied_embedding_grad_in_place: bool = _key(
        True, "tied embeddings: head gradient added into .grad, sparse embedding backward (not with fsdp)", MEMORY
    )
    cpu_threads: int = _key(
        0,
        "torch threads per process on CPU; 0 = the cores this process may use divided by the processes on "
        "this machine (accelerate launch exports OMP_NUM_THREADS=1 unless --cpu or "
        "--num_cpu_threads_per_process is given, which leaves all cores but one idle)",
        MEMORY,
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
    dist_timeout_s: float = _key(
        1800.0,
        "seconds a collective (all-reduce, barrier) waits for the other ranks before the run stops with an "
        "error: a dead or hung rank ends the run instead of hanging it (torch.distributed init timeout)",
        RUN,
    )

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
        return cls.from_dict(read_yaml_mapping(path, "config file"), source=str(path))

    @classmethod
    def from_args(cls, argv: list[str] | None = None) -> TrainConfig:
        """``[--config file.yaml] [--key value | --key=value ...]``; flags beat the file, later flags win."""
        argv = list(sys.argv[1:] if argv is None else argv)
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
        pre.add_argument("--config", default=None)
        known, _ = pre.parse_known_args(argv)
        base = cls.from_yaml(known.config) if known.config else cls()
        parser = build_parser(defaults=asdict(base))
        try:
            *sections, _, remaining = parser.parse_args_into_dataclasses(
                argv, return_remaining_strings=True, look_for_args_file=False
            )
        except argparse.ArgumentError as err:
            raise ValueError(f"llm/train.py: {err} (see --help)") from None
        if remaining:
            raise ValueError(f"llm/train.py: unrecognized arguments: {' '.join(remaining)} (see --help)")
        types = cls.field_types()
        values = {}
        for section in sections:
            for key, value in asdict(section).items():
                values[key] = _from_yaml_text(key, value, types[key]) if types[key] in (dict, list) else value
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
            ("micro_batch_max_tokens", 0),
            ("cpu_threads", 0),
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
        check_finite_number("dist_timeout_s", self.dist_timeout_s)
        check_positive("dist_timeout_s", self.dist_timeout_s)
        check_probability("reward_max_error_frac", self.reward_max_error_frac)
        for name in ("lr", "weight_decay", "max_grad_norm", "clip_eps_high", "kl_coef"):
            check_nonnegative(name, getattr(self, name))
        check_probability("clip_eps_low", self.clip_eps_low, open_high=True)  # 1 - eps_low must stay > 0
        if self.fsdp and self.rollout_backend == "vllm":
            # The engine's weight sync reads module.state_dict(), which FSDP2 keeps sharded (DTensors).
            raise ValueError("fsdp=true with rollout_backend='vllm' is not supported yet: use the hf backend or DDP")
        if self.fsdp and self.tied_embedding_grad_in_place:  # FSDP2 reduce-scatters dense gradient shards
            raise ValueError("fsdp=true needs tied_embedding_grad_in_place=false (sharded gradients are dense)")
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


def read_yaml_mapping(path: str | os.PathLike, what: str = "config file") -> dict:
    """The YAML file at ``path`` as a dict (empty file: {}); a missing file or a non-mapping is an
    error naming the file. The one YAML loader of the trainer and of ``llm.compare``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a {what} must be a mapping of key: value")
    return values


def _yaml_text(value) -> str:
    """A dict or list default as the YAML a user would type (``--help`` shows it)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


def _from_yaml_text(key: str, text, kind: type):
    if not isinstance(text, str):
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"command line: {key}: cannot parse {text!r} as YAML: {err}") from None
    if not isinstance(value, kind):
        raise ValueError(f"command line: {key}={text!r} must be a YAML {kind.__name__}")
    return value


def cli_dataclasses() -> list[type]:
    """TrainConfig's keys as HfArgumentParser reads them: one dataclass per --help section (in
    order), same names, defaults and help; dict and list keys as YAML text."""
    hints = typing.get_type_hints(TrainConfig)
    sections: dict[str, list] = {}
    for f in fields(TrainConfig):
        kind = hints[f.name]
        default = f.default if f.default is not MISSING else f.default_factory()
        meta = {"help": f.metadata["help"]}
        if kind in (dict, list):
            kind, default, meta = str, _yaml_text(default), {**meta, "metavar": "YAML"}
        sections.setdefault(f.metadata["section"], []).append((f.name, kind, field(default=default, metadata=meta)))
    out = []
    for section, specs in sections.items():
        cls = make_dataclass("".join(w.capitalize() for w in section.split() if w.isalpha()) + "Keys", specs)
        cls._argument_group_name = section
        out.append(cls)
    return out


def build_parser(defaults: dict | None = None):
    """The command-line parser (an ``HfArgumentParser``); ``defaults`` (e.g. a loaded preset) replace
    the dataclass defaults shown and used."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        cli_dataclasses(),
        prog="llm/train.py",
        allow_abbrev=False,
        exit_on_error=False,
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
        kinds = TrainConfig.field_types()
        parser.set_defaults(
            **{k: _yaml_text(v) if kinds.get(k) in (dict, list) else v for k, v in defaults.items() if k != "config"}
        )
    return parser


def check_batch_geometry(cfg: TrainConfig, bundle_size: int, world_size: int) -> None:
    """Prompt and micro-batch arithmetic, checked before any model is loaded."""
    if cfg.prompts_per_step % bundle_size:
        raise ValueError(
            f"prompts_per_step={cfg.prompts_per_step} must be a multiple of the estimator's bundle_size={bundle_size} "
            f"(estimator={cfg.estimator!r}): bundles are formed from the global prompt batch"
        )
    if cfg.prompts_per_step % world_size:
        raise ValueError(
            f"prompts_per_step={cfg.prompts_per_step} must be divisible by the number of processes={world_size}"
        )
    rows = cfg.prompts_per_step // world_size * cfg.group_size
    if rows % (cfg.mini_batches * cfg.grad_accum):
        raise ValueError(
            f"completions per process = prompts_per_step/processes * group_size = {rows} must be divisible by "
            f"mini_batches * grad_accum = {cfg.mini_batches} * {cfg.grad_accum}"
        )

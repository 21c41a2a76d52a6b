"""RLVR post-training of a causal LM with any advantage estimator from theory/.

    accelerate launch llm/train.py                                   # default.yaml: RiskPO, SmolLM2, CPU-sized
    accelerate launch llm/train.py --config llm/configs/gspo.yaml --steps 20 --lr 2e-6
    python llm/train.py --help                                       # every key, its default and meaning

One training step reads top to bottom in ``train`` below:

1. collect     every rank draws the same global prompt batch, keeps its slice and
               samples G completions per prompt (llm/collect.py, llm/rollout.py);
2. score       rewards are computed and GATHERED into the global (P, G) matrix;
3. advantages  once per step on that matrix with ``theory.get_estimator(cfg.estimator)``,
               identical on every rank (RiskPO bundles span ranks, one quantile tracker);
               DAPO dynamic sampling repeats 1-3 for prompts without signal;
4. update      PPO epochs over mini-batches of the clipped surrogate of
               theory/surrogate.py (llm/update.py, llm/loss.py);
5. log         metrics.jsonl + trackers;
6. save        atomic checkpoint: weights once, optimizer (sharded under FSDP), RNG, sampler, tracker.

No advantage formula and no surrogate formula lives in llm/: GRPO, Dr.GRPO,
RS-GRPO, RiskPO, ... are registry entries; DAPO and GSPO are loss settings.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import yaml
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a script (`accelerate launch llm/train.py`): import from the repo root
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from llm.checkpoint import save_run
from llm.collect import StepTally, advantages, collect, enough_signal, prompt_groups, score, stack_groups
from llm.config import TINY_MODEL, TrainConfig, check_batch_geometry
from llm.run_summary import peak_memory_gb, run_summary
from llm.seeding import seed_everything, set_rng_state
from llm.sharding import full_params_for_generation
from llm.update import ppo_update
from theory import get_estimator

if TYPE_CHECKING:
    from accelerate import Accelerator
    from torch.optim.lr_scheduler import LRScheduler
    from transformers import PreTrainedTokenizerBase

    from llm.data import PromptSampler
    from llm.rewards import RewardPipeline
    from llm.rollout import HFGenerateBackend
    from llm.rollout_vllm import VLLMBackend
    from llm.roofline import RooflineAccount
    from theory.estimator_registry import AdvantageEstimator


@dataclass
class TrainResult:
    metrics: dict  # the last step's logged metrics ({} when there was nothing to do)
    model: torch.nn.Module  # the policy after the last step (unwrapped; sharded under fsdp)
    estimator: object  # the advantage estimator (quantile tracker state inside)
    num_processes: int = 1
    checkpoint: Path | None = None


def main(argv: list[str] | None = None) -> dict:
    """Runs training from command-line arguments; returns the last step's metrics."""
    from accelerate import PartialState

    metrics = train(TrainConfig.from_args(argv)).metrics
    PartialState().destroy_process_group()  # train() leaves it up, so a library caller can keep using the ranks
    return metrics


def train(cfg: TrainConfig) -> TrainResult:
    checked = setup(cfg)
    if checked.start_step >= cfg.steps:  # e.g. `--resume latest` on a finished run: touch nothing
        checked.rewards.close()
        if checked.accelerator.is_main_process:
            print(
                f"[riskrl] nothing to do: {checked.resumed_from} is at step {checked.start_step} and "
                f"steps={cfg.steps}; pass a larger --steps to train further",
                file=sys.stderr,
            )
        return TrainResult({}, None, checked.estimator, checked.accelerator.num_processes, checked.resumed_from)
    try:
        run = build_run(checked)
    except BaseException:
        checked.rewards.close()
        raise
    acc, metrics, first, began, checkpoint = run.accelerator, {}, None, time.perf_counter(), None
    with run.rewards, contextlib.closing(run.backend):
        progress = tqdm(
            range(run.start_step, cfg.steps),
            initial=run.start_step,
            total=cfg.steps,
            desc="train",
            disable=not acc.is_local_main_process,
            dynamic_ncols=True,
        )
        for step in progress:
            step_began, tally = time.perf_counter(), StepTally()
            groups, batch = sample_batch(run, step, tally)  # ---- 1-3. collect → score → advantages
            with tally.timed("train"):  # ---- 4. update
                update_metrics = ppo_update(cfg, acc, run.model, run.reference, run.optimizer, run.scheduler, batch)
            metrics = step_metrics(run, step, tally, groups, batch, update_metrics)  # ---- 5. log
            metrics["time/step"] = time.perf_counter() - step_began
            first = first or metrics
            log_step(run, progress, step, metrics)
            if (cfg.save_every and (step + 1) % cfg.save_every == 0) or step + 1 == cfg.steps:  # ---- 6. save
                checkpoint = save_run(run, step + 1)

    if cfg.save_model and acc.is_main_process and checkpoint is not None:  # weights-only export, apart from checkpoints
        shutil.rmtree(run.output_dir / "model", ignore_errors=True)
        shutil.copytree(checkpoint / "model", run.output_dir / "model")
    for tracker in acc.trackers:  # accelerator.end_training() would also destroy the process group
        tracker.finish()
    if acc.is_main_process:
        print(run_summary(cfg, first, metrics, time.perf_counter() - began, checkpoint), file=sys.stderr)
        print(run.roofline.summary(metrics.get("peak_memory_gb"), acc.device.type == "cuda"), file=sys.stderr)
    return TrainResult(metrics, run.unwrapped, run.estimator, acc.num_processes, checkpoint)


# ============================================================================ one step


def sample_batch(run: Run, step: int, tally: StepTally) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """Steps 1-3: collect → score → advantages, repeated by DAPO dynamic sampling for prompts without
    signal. The full weights are gathered once for the whole step (every round samples from them)."""
    cfg, acc = run.cfg, run.accelerator
    groups: list[dict] = []
    with contextlib.ExitStack() as gathered:
        with tally.timed("generate"):
            policy = gathered.enter_context(full_params_for_generation(run.model, run.unwrapped))
            run.backend.sync_weights(policy)  # once per step (vLLM): weights do not change between rounds
        while True:
            with tally.timed("generate"):
                examples, rollout = collect(run, policy, step, tally.rounds)
            with tally.timed("reward"):
                global_rewards = score(run, rollout, examples, tally, step)
            groups += prompt_groups(rollout, advantages(run, global_rewards, tally), cfg.group_size)
            if (
                not cfg.dynamic_sampling
                or tally.rounds >= cfg.dynamic_sampling_max_rounds
                or enough_signal(run, groups)
            ):
                break
            tally.rounds += 1
    if cfg.dynamic_sampling:  # prompts with signal first; zero-advantage ones pad when rounds ran out
        groups = sorted(groups, key=lambda g: not g["signal"])[: cfg.prompts_per_step // acc.num_processes]
    return groups, stack_groups(groups, run.tokenizer.pad_token_id)


def step_metrics(run: Run, step: int, tally: StepTally, groups: list[dict], batch: dict, update_metrics: dict) -> dict:
    """The step's logged metrics (every reduction over ranks happens here or in ppo_update)."""
    acc = run.accelerator
    zero_trained = acc.gather(torch.tensor([float(not g["signal"]) for g in groups], device=acc.device))
    lengths = acc.gather(batch["completion_mask"].sum(-1).float()).cpu()
    rewards = torch.cat(tally.rewards["total"])
    return {
        "step": step + 1,
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
        **{f"reward/{n}": float(torch.cat(v).mean()) for n, v in tally.rewards.items() if n != "total"},
        **{f"reward_errors/{n}": c for n, c in tally.reward_errors.items()},
        "completion_length": float(lengths.mean()),
        "completion_length_max": float(lengths.max()),
        **tally.estimator_metrics,
        **update_metrics,
        **(run.roofline.trainer_step(run.cfg, batch, tally.seconds["train"], run.backend) if run.roofline else {}),
        "lr": run.scheduler.get_last_lr()[0],
        "dynamic_sampling_rounds": tally.rounds,
        "frac_zero_adv_groups_trained": float(zero_trained.mean()),
        "peak_memory_gb": peak_memory_gb(acc),
        **{f"time/{k}": v for k, v in tally.seconds.items()},
    }


def log_step(run: Run, progress, step: int, metrics: dict) -> None:
    """metrics.jsonl (every log_every steps and the last), the progress bar, the trackers."""
    cfg, acc = run.cfg, run.accelerator
    if acc.is_main_process and ((step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps):
        with open(run.output_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(metrics) + "\n")
        progress.set_postfix(
            reward=f"{metrics['reward_mean']:.3f}",
            loss=f"{metrics['loss']:.4f}",
            len=f"{metrics['completion_length']:.0f}",
        )
    if run.trackers and (step + 1) % cfg.log_every == 0:
        finite = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        acc.log(finite, step=step + 1)


# ============================================================================ set-up and checkpoints


@dataclass
class Checked:
    """What ``setup`` settles before any model is loaded: config, accelerator, estimator, data,
    rewards, and where a resumed run starts."""

    cfg: TrainConfig
    accelerator: Accelerator
    estimator: AdvantageEstimator
    sampler: PromptSampler
    rewards: RewardPipeline
    output_dir: Path
    trackers: list[str]
    model_path: str | None  # None for the tiny random model
    resume_state: dict | None  # the checkpoint's trainer state when resuming
    resumed_from: Path | None
    start_step: int


@dataclass
class Run(Checked):
    """Everything a step touches: the checks above plus the policy, its frozen reference, the
    optimizer and scheduler, and the rollout backend. Built once, by ``build_run``; saved by
    ``llm.checkpoint.save_run``."""

    model: torch.nn.Module  # prepared (DDP/FSDP wrapper) or FSDP2-sharded
    unwrapped: torch.nn.Module  # the HF model under the wrapper
    reference: torch.nn.Module | None  # frozen π_ref when kl_coef > 0
    tokenizer: PreTrainedTokenizerBase
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    backend: HFGenerateBackend | VLLMBackend
    system_prompt: str
    roofline: RooflineAccount | None  # achieved FLOP/s and bytes/s vs the machine's peaks (main process only)


def build_run(checked: Checked) -> Run:
    """Model, optimizer, scheduler, rollout backend (and the resumed state), after every cheap check passed."""
    from transformers import get_scheduler

    from llm.backends import build_backend
    from llm.checkpoint import load_weights
    from llm.data import DEFAULT_SYSTEM_PROMPT
    from llm.model import accumulate_tied_grad_in_place, enable_activation_checkpointing
    from llm.roofline import RooflineAccount
    from llm.sharding import deepspeed_batch_config, shard_model

    cfg, acc = checked.cfg, checked.accelerator
    seed_everything(cfg.seed)
    model, tokenizer = load_policy(cfg)
    reference = copy.deepcopy(model).eval().requires_grad_(False) if cfg.kl_coef > 0 else None  # π_ref = start
    if checked.resume_state is not None:
        load_weights(model, checked.resumed_from / "model")
    if cfg.gradient_checkpointing:
        enable_activation_checkpointing(model)
    model.train()
    if cfg.fsdp:  # FSDP2 applied here, so it also runs on CPU (gloo), where accelerate builds no FSDP
        model = shard_model(model.to(acc.device))
        reference = shard_model(reference.to(acc.device)) if reference is not None else None
    # Fused AdamW: one kernel per tensor, without the multi-tensor path's parameters-sized temporaries.
    fused = True if not cfg.fsdp and acc.state.deepspeed_plugin is None else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    # Stepped by hand once per optimizer step: accelerate's prepared scheduler would step num_processes times.
    scheduler = get_scheduler(
        cfg.lr_scheduler,
        optimizer,
        num_warmup_steps=cfg.warmup_steps,
        num_training_steps=cfg.steps * cfg.ppo_epochs * cfg.mini_batches,
    )
    if acc.state.deepspeed_plugin is not None:  # untested here (no GPU): explicit sizes instead of "auto"
        acc.state.deepspeed_plugin.deepspeed_config.update(deepspeed_batch_config(cfg, acc.num_processes))
    model, reference, optimizer = _prepare(cfg, acc, model, reference, optimizer)
    if cfg.tied_embedding_grad_in_place:
        # After DDP is built: it reads the embedding's sparse flag once and would expect a sparse gradient.
        accumulate_tied_grad_in_place(acc.unwrap_model(model))
    backend = build_backend(
        cfg.rollout_backend,
        tokenizer,
        checked.model_path,
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_prompt_tokens=cfg.max_prompt_tokens,
        seed=cfg.seed,
        vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        dtype=cfg.dtype,
    )
    run = Run(
        **{f.name: getattr(checked, f.name) for f in fields(Checked)},
        model=model,
        unwrapped=acc.unwrap_model(model),
        reference=reference,
        tokenizer=tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        backend=backend,
        system_prompt=cfg.system_prompt or DEFAULT_SYSTEM_PROMPT,
        roofline=RooflineAccount.for_model(acc.unwrap_model(model), acc.device) if acc.is_main_process else None,
    )
    if run.resume_state is not None:
        _restore(run)
    if acc.is_main_process:
        run.output_dir.mkdir(parents=True, exist_ok=True)
        (run.output_dir / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    if run.trackers:
        flat = {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v)) for k, v in asdict(cfg).items()}
        acc.init_trackers("riskrl", config=flat)
    return run


def _prepare(cfg: TrainConfig, acc, model, reference, optimizer):
    """The policy (and reference) wrapped for the launch and the optimizer prepared (FSDP2: already sharded)."""
    if cfg.fsdp:
        return model, reference, acc.prepare_optimizer(optimizer)
    model, optimizer = acc.prepare(model, optimizer)
    if reference is not None:  # FSDP via accelerate shards it like the policy; DDP leaves a frozen model unwrapped
        reference = acc.prepare_model(reference) if acc.distributed_type.name == "FSDP" else reference.to(acc.device)
    return model, reference, optimizer


def _restore(run: Run) -> None:
    """Optimizer, scheduler, estimator (quantile tracker), sampler and this rank's RNG from the checkpoint."""
    from llm.sharding import load_sharded_optimizer

    resume, acc = run.resume_state, run.accelerator
    if resume.get("optimizer") is not None:
        run.optimizer.load_state_dict(resume["optimizer"])
    else:
        load_sharded_optimizer(run.model, run.optimizer, run.resumed_from / "optimizer")
    run.scheduler.load_state_dict(resume["scheduler"])
    run.estimator.load_state_dict(resume["estimator"])
    run.sampler.load_state_dict(resume["sampler"])
    if len(resume["rng"]) != acc.num_processes:
        raise ValueError(f"checkpoint was written by {len(resume['rng'])} processes; now running {acc.num_processes}")
    set_rng_state(resume["rng"][acc.process_index])


def cpu_threads(requested: int) -> int:
    """torch threads for this process: ``requested``, or (0) its usable cores shared by this machine's processes."""
    if requested:
        return requested
    local_processes = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // local_processes)


def setup(cfg: TrainConfig) -> Checked:
    """Every check that needs no model (config, geometry, model path, data, rewards, checkpoint)."""
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    from llm.checkpoint import load_checkpoint
    from llm.data import PromptSampler, load_dataset_examples
    from llm.model import resolve_model_path
    from llm.rewards import RewardPipeline

    cfg.validate()
    estimator = build_estimator(cfg)
    output_dir = Path(cfg.output_dir)
    trackers = _available_trackers(cfg)
    acc = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum,
        log_with=trackers or None,
        project_dir=str(output_dir),
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=cfg.dist_timeout_s))],
    )
    check_batch_geometry(cfg, estimator.bundle_size, acc.num_processes)
    if acc.device.type == "cpu":
        torch.set_num_threads(cpu_threads(cfg.cpu_threads))
    if cfg.micro_batch_max_tokens and acc.distributed_type.name == "DEEPSPEED":
        # DeepSpeed's engine counts backward calls as accumulation steps: chunks would step it early.
        raise ValueError(
            f"micro_batch_max_tokens={cfg.micro_batch_max_tokens} is not supported with DeepSpeed: "
            "set micro_batch_max_tokens=0 and size micro-batches with grad_accum"
        )
    if cfg.tied_embedding_grad_in_place and acc.distributed_type.name == "DEEPSPEED":
        raise ValueError("tied_embedding_grad_in_place=true is not supported with DeepSpeed: set it to false")
    if cfg.fsdp and (acc.num_processes < 2 or acc.distributed_type.name in ("FSDP", "DEEPSPEED")):
        raise ValueError(
            f"fsdp=true shards over several processes of a plain (DDP-style) launch; got "
            f"{acc.num_processes} process(es), distributed_type={acc.distributed_type.name}"
        )
    model_path = None if cfg.model == TINY_MODEL else resolve_model_path(cfg.model)  # missing path -> error now
    examples = load_dataset_examples(cfg.dataset, limit=cfg.dataset_limit or None, seed=cfg.seed)
    if not examples:
        raise ValueError(f"dataset={cfg.dataset!r} has no rows")
    resume_state, resumed_from = None, None
    if cfg.resume:
        resumed_from, resume_state = load_checkpoint(cfg.resume, output_dir / "checkpoints")
    # Unknown reward names / unimportable module:function fail here, before any model is loaded
    # (last: the pipeline may start worker processes, which train() closes).
    rewards = RewardPipeline(
        [tuple(s) for s in cfg.rewards], num_workers=cfg.reward_workers, timeout_s=cfg.reward_timeout_s
    )
    return Checked(
        cfg=cfg,
        accelerator=acc,
        estimator=estimator,
        sampler=PromptSampler(examples, batch_size=cfg.prompts_per_step, seed=cfg.seed),
        rewards=rewards,
        output_dir=output_dir,
        trackers=trackers,
        model_path=model_path,
        resume_state=resume_state,
        resumed_from=resumed_from,
        start_step=int(resume_state["step"]) if resume_state is not None else 0,
    )


# ============================================================================ helpers


def build_estimator(cfg: TrainConfig):
    return get_estimator(cfg.estimator, **cfg.estimator_params)  # unknown name / bad params -> ValueError naming them


def load_policy(cfg: TrainConfig):
    from llm.model import SMOLLM2, build_tiny_model, load_model_and_tokenizer, load_tokenizer

    if cfg.model == TINY_MODEL:
        tokenizer = load_tokenizer(SMOLLM2)
        return build_tiny_model(tokenizer, seed=cfg.seed), tokenizer
    return load_model_and_tokenizer(cfg.model, dtype=getattr(torch, cfg.dtype))


def _available_trackers(cfg: TrainConfig) -> list[str]:
    from accelerate.utils import is_tensorboard_available, is_trackio_available, is_wandb_available

    available = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available, "trackio": is_trackio_available}
    chosen = []
    for name in cfg.trackers():
        if available[name]():
            chosen.append(name)
        else:
            print(f"[riskrl] report_to: {name} is not installed; skipping it", file=sys.stderr)
    return chosen


if __name__ == "__main__":
    main()

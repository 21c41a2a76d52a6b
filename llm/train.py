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

import copy
import json
import math
import random
import resource
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a script (`accelerate launch llm/train.py`): import from the repo root
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from llm.collect import StepTally, advantages, collect, enough_signal, prompt_groups, score, stack_groups
from llm.config import TINY_MODEL, TrainConfig
from llm.loss import aggregate_loss, completion_logprobs, policy_loss  # noqa: F401  (re-exported for callers)
from llm.sharding import full_params_for_generation
from llm.update import ppo_update, step_seed  # noqa: F401
from theory import get_estimator


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
    run = setup(cfg)
    if run.start_step >= cfg.steps:  # e.g. `--resume latest` on a finished run: touch nothing
        run.rewards.close()
        if run.accelerator.is_main_process:
            print(
                f"[riskrl] nothing to do: {run.resumed_from} is at step {run.start_step} and steps={cfg.steps}; "
                f"pass a larger --steps to train further",
                file=sys.stderr,
            )
        return TrainResult({}, None, run.estimator, run.accelerator.num_processes, run.resumed_from)
    try:
        run.build()
    except BaseException:
        run.rewards.close()
        raise
    acc, metrics, first, began, checkpoint = run.accelerator, {}, None, time.perf_counter(), None
    with run.rewards:
        progress = tqdm(
            range(run.start_step, cfg.steps),
            initial=run.start_step,
            total=cfg.steps,
            desc="train",
            disable=not acc.is_local_main_process,
            dynamic_ncols=True,
        )
        for step in progress:
            step_began = time.perf_counter()
            tally = StepTally()
            with tally.timed("generate"), full_params_for_generation(run.model, run.unwrapped) as policy:
                run.backend.sync_weights(policy)  # once per step (vLLM): weights do not change between rounds

            # ---- 1-3. collect → score → advantages; dynamic sampling refills prompts without signal
            groups: list[dict] = []
            while True:
                with tally.timed("generate"):
                    examples, rollout = collect(run, step, tally.rounds)
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
            batch = stack_groups(groups, run.tokenizer.pad_token_id)

            # ---- 4. update
            with tally.timed("train"):
                update_metrics = ppo_update(cfg, acc, run.model, run.reference, run.optimizer, run.scheduler, batch)

            # ---- 5. log
            zero_trained = acc.gather(torch.tensor([float(not g["signal"]) for g in groups], device=acc.device))
            lengths = acc.gather(batch["completion_mask"].sum(-1).float()).cpu()
            rewards = torch.cat(tally.rewards["total"])
            metrics = {
                "step": step + 1,
                "reward_mean": float(rewards.mean()),
                "reward_std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
                **{f"reward/{n}": float(torch.cat(v).mean()) for n, v in tally.rewards.items() if n != "total"},
                **{f"reward_errors/{n}": c for n, c in tally.reward_errors.items()},
                "completion_length": float(lengths.mean()),
                "completion_length_max": float(lengths.max()),
                **tally.estimator_metrics,
                **update_metrics,
                **(run.roofline.trainer_step(cfg, batch, tally.seconds["train"], run.backend) if run.roofline else {}),
                "lr": run.scheduler.get_last_lr()[0],
                "dynamic_sampling_rounds": tally.rounds,
                "frac_zero_adv_groups_trained": float(zero_trained.mean()),
                "peak_memory_gb": peak_memory_gb(acc),
                **{f"time/{k}": v for k, v in tally.seconds.items()},
                "time/step": time.perf_counter() - step_began,
            }
            first = first or metrics
            if acc.is_main_process and ((step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps):
                with open(run.output_dir / "metrics.jsonl", "a") as handle:
                    handle.write(json.dumps(metrics) + "\n")
                progress.set_postfix(
                    reward=f"{metrics['reward_mean']:.3f}",
                    loss=f"{metrics['loss']:.4f}",
                    len=f"{metrics['completion_length']:.0f}",
                )
            if run.trackers and (step + 1) % cfg.log_every == 0:
                acc.log(
                    {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)},
                    step=step + 1,
                )

            # ---- 6. save
            if (cfg.save_every and (step + 1) % cfg.save_every == 0) or step + 1 == cfg.steps:
                checkpoint = run.save(step + 1)

    if cfg.save_model and acc.is_main_process and checkpoint is not None:  # weights-only export, apart from checkpoints
        shutil.rmtree(run.output_dir / "model", ignore_errors=True)
        shutil.copytree(checkpoint / "model", run.output_dir / "model")
    for tracker in acc.trackers:  # accelerator.end_training() would also destroy the process group
        tracker.finish()
    if acc.is_main_process:
        print(run_summary(cfg, first, metrics, time.perf_counter() - began, checkpoint), file=sys.stderr)
        print(run.roofline.summary(metrics.get("peak_memory_gb"), acc.device.type == "cuda"), file=sys.stderr)
    return TrainResult(metrics, run.unwrapped, run.estimator, acc.num_processes, checkpoint)


# ============================================================================ set-up and checkpoints


class Run:
    """Everything a step touches: config, accelerator, policy, optimizer, estimator, data, rewards, rollouts."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg

    def build(self) -> None:
        """Model, optimizer, scheduler, rollout backend (and the resumed state), after every cheap check passed."""
        from transformers import get_scheduler

        from llm.checkpoint import load_weights
        from llm.data import DEFAULT_SYSTEM_PROMPT
        from llm.model import enable_activation_checkpointing
        from llm.rollout import build_backend
        from llm.roofline import RooflineAccount
        from llm.sharding import deepspeed_batch_config, load_sharded_optimizer, shard_model

        cfg, acc, resume = self.cfg, self.accelerator, self.resume_state
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        model, self.tokenizer = load_policy(cfg)
        reference = copy.deepcopy(model).eval().requires_grad_(False) if cfg.kl_coef > 0 else None  # π_ref = start
        if resume is not None:
            load_weights(model, self.resumed_from / "model")
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
        self.scheduler = get_scheduler(
            cfg.lr_scheduler,
            optimizer,
            num_warmup_steps=cfg.warmup_steps,
            num_training_steps=cfg.steps * cfg.ppo_epochs * cfg.mini_batches,
        )
        if acc.state.deepspeed_plugin is not None:  # untested here (no GPU): explicit sizes instead of "auto"
            acc.state.deepspeed_plugin.deepspeed_config.update(deepspeed_batch_config(cfg, acc.num_processes))
        if cfg.fsdp:
            self.model, self.optimizer = model, acc.prepare_optimizer(optimizer)
        else:
            self.model, self.optimizer = acc.prepare(model, optimizer)
            if (
                reference is not None
            ):  # FSDP via accelerate shards it like the policy; DDP leaves a frozen model unwrapped
                reference = (
                    acc.prepare_model(reference) if acc.distributed_type.name == "FSDP" else reference.to(acc.device)
                )
        self.reference, self.unwrapped = reference, acc.unwrap_model(self.model)
        self.backend = build_backend(
            cfg.rollout_backend,
            self.tokenizer,
            self.model_path,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_prompt_tokens=cfg.max_prompt_tokens,
            seed=cfg.seed,
            vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
            dtype=cfg.dtype,
        )
        self.system_prompt = cfg.system_prompt or DEFAULT_SYSTEM_PROMPT
        # Achieved FLOP/s and bytes/s against this machine's measured peaks, logged by the main process.
        self.roofline = RooflineAccount.for_model(self.unwrapped, acc.device) if acc.is_main_process else None
        if resume is not None:
            if resume.get("optimizer") is not None:
                self.optimizer.load_state_dict(resume["optimizer"])
            else:
                load_sharded_optimizer(self.model, self.optimizer, self.resumed_from / "optimizer")
            self.scheduler.load_state_dict(resume["scheduler"])
            self.estimator.load_state_dict(resume["estimator"])
            self.sampler.load_state_dict(resume["sampler"])
            if len(resume["rng"]) != acc.num_processes:
                raise ValueError(
                    f"checkpoint was written by {len(resume['rng'])} processes; now running {acc.num_processes}"
                )
            set_rng_state(resume["rng"][acc.process_index])
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
        if self.trackers:
            flat = {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v)) for k, v in asdict(cfg).items()}
            acc.init_trackers("riskrl", config=flat)

    def save(self, step: int) -> Path:
        """Atomic checkpoint ``step-N``: model/ (weights once, + tokenizer), trainer_state.pt, optimizer shards."""
        from accelerate.utils import gather_object

        from llm.checkpoint import STATE_FILE, begin_checkpoint, commit_checkpoint
        from llm.sharding import full_state_dict, is_sharded, save_sharded_optimizer

        acc, root = self.accelerator, self.output_dir / "checkpoints"
        if acc.is_main_process:
            begin_checkpoint(root, step)
        acc.wait_for_everyone()
        tmp = root / f".tmp-step-{step:08d}"
        sharded = is_sharded(self.model)
        weights = full_state_dict(self.model) if sharded or acc.is_main_process else None  # collective when sharded
        rng_states = gather_object([rng_state()])
        if sharded:  # every process writes its own shard: the checkpoint dir must be on a shared filesystem
            save_sharded_optimizer(self.model, self.optimizer, tmp / "optimizer")
        if acc.is_main_process:
            state = {
                "step": step,
                "config": asdict(self.cfg),
                "optimizer": None if sharded else self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "estimator": self.estimator.state_dict(),
                "sampler": self.sampler.state_dict(),
                "rng": rng_states,
            }
            torch.save(state, tmp / STATE_FILE)
            self.unwrapped.save_pretrained(tmp / "model", state_dict=weights)
            self.tokenizer.save_pretrained(tmp / "model")
        acc.wait_for_everyone()
        if acc.is_main_process:
            commit_checkpoint(root, step, keep_last=self.cfg.keep_last)
        acc.wait_for_everyone()
        return root / f"step-{step:08d}"


def setup(cfg: TrainConfig) -> Run:
    """Every check that needs no model (config, geometry, model path, data, rewards, checkpoint), then the Run."""
    from accelerate import Accelerator

    from llm.checkpoint import load_checkpoint
    from llm.data import PromptSampler, load_dataset_examples
    from llm.model import resolve_model_path
    from llm.rewards import RewardPipeline

    cfg.validate()
    run = Run(cfg)
    run.estimator = build_estimator(cfg)
    run.output_dir = Path(cfg.output_dir)
    run.trackers = _available_trackers(cfg)
    run.accelerator = acc = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum, log_with=run.trackers or None, project_dir=str(run.output_dir)
    )
    check_batch_geometry(cfg, run.estimator.bundle_size, acc.num_processes)
    if cfg.fsdp and (acc.num_processes < 2 or acc.distributed_type.name in ("FSDP", "DEEPSPEED")):
        raise ValueError(
            f"fsdp=true shards over several processes of a plain (DDP-style) launch; got "
            f"{acc.num_processes} process(es), distributed_type={acc.distributed_type.name}"
        )
    run.model_path = None if cfg.model == TINY_MODEL else resolve_model_path(cfg.model)  # missing path -> error now
    examples = load_dataset_examples(cfg.dataset, limit=cfg.dataset_limit or None, seed=cfg.seed)
    if not examples:
        raise ValueError(f"dataset={cfg.dataset!r} has no rows")
    run.sampler = PromptSampler(examples, batch_size=cfg.prompts_per_step, seed=cfg.seed)
    run.resume_state, run.resumed_from, run.start_step = None, None, 0
    if cfg.resume:
        run.resumed_from, run.resume_state = load_checkpoint(cfg.resume, run.output_dir / "checkpoints")
        run.start_step = int(run.resume_state["step"])
    # Unknown reward names / unimportable module:function fail here, before any model is loaded
    # (last: the pipeline may start worker processes, which train() closes).
    run.rewards = RewardPipeline(
        [tuple(s) for s in cfg.rewards], num_workers=cfg.reward_workers, timeout_s=cfg.reward_timeout_s
    )
    return run


def run_summary(cfg: TrainConfig, first: dict | None, last: dict, seconds: float, checkpoint: Path | None) -> str:
    """What a user wants to read when the run ends: progress, where the weights are, how to evaluate them."""
    if not last:
        return "[riskrl] no step ran"
    lines = [
        f"[riskrl] done: step {last['step']}/{cfg.steps} in {seconds / 60:.1f} min; "
        f"reward_mean {first['reward_mean']:.3f} (step {first['step']}) -> {last['reward_mean']:.3f} "
        f"(step {last['step']}); entropy {last['entropy']:.3f}",
        f"[riskrl] checkpoint: {checkpoint}"
        + (f"; weights: {Path(cfg.output_dir) / 'model'}" if cfg.save_model else ""),
        f"[riskrl] evaluate: python -m llm.evaluate --model {cfg.output_dir} --datasets gsm8k_test --n 4 --k 1,4 "
        f"(uses the run's rewards)",
        f"[riskrl] continue: accelerate launch llm/train.py --output_dir {cfg.output_dir} --resume latest "
        f"--steps {cfg.steps * 2}",
    ]
    return "\n".join(lines)


# ============================================================================ helpers


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def peak_memory_gb(accelerator) -> float:
    """Largest over ranks of: peak accelerator memory allocated this step (CUDA, reset after reading) or,
    on CPU, the process's peak resident set size since it started (the kernel keeps no per-step peak)."""
    if accelerator.device.type == "cuda":
        used = torch.cuda.max_memory_allocated(accelerator.device)
        torch.cuda.reset_peak_memory_stats(accelerator.device)
    else:
        used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return float(accelerator.gather(torch.tensor([used / 2**30], device=accelerator.device, dtype=torch.float64)).max())


def build_estimator(cfg: TrainConfig):
    return get_estimator(cfg.estimator, **cfg.estimator_params)  # unknown name / bad params -> ValueError naming them


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

"""RLVR post-training of a causal LM with any advantage estimator from theory/.

    accelerate launch llm/train.py                                   # default.yaml: RiskPO, SmolLM2, CPU-sized
    accelerate launch llm/train.py --config llm/configs/gspo.yaml --steps 20 --lr 2e-6
    accelerate launch --num_processes 2 --cpu llm/train.py --prompts_per_step 10

One training step, top to bottom (see ``train_step``):

1. every rank draws the same global prompt batch and keeps its slice;
2. the rollout backend samples G completions per prompt;
3. rewards are scored, then GATHERED into the global (P, G) matrix;
4. advantages are computed ONCE per step on that matrix with
   ``theory.get_estimator(cfg.estimator)`` — identical on every rank, so
   RiskPO bundles span ranks and its quantile tracker never diverges;
5. PPO epochs over mini-batches: clipped surrogate (ε_low/ε_high, token or
   sequence importance ratio), loss aggregation, optional k3 KL to a frozen
   reference, gradient accumulation and clipping.

No advantage formula lives here: GRPO, Dr.GRPO, RS-GRPO, RiskPO, ... are all
registry entries. DAPO and GSPO are loss settings (clip-higher + dynamic
sampling; sequence-level ratio) on top of a registry estimator.
"""
from __future__ import annotations

import copy
import json
import math
import os
import random
import sys
import time
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a script (`accelerate launch llm/train.py`): import from the repo root
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from llm.config import TINY_MODEL, TrainConfig
from llm.loss import IMPORTANCE_RATIOS, LOSS_AGGREGATIONS, aggregate_loss, completion_logprobs, policy_loss  # noqa: F401
from theory import get_estimator



# ============================================================================ helpers


def step_seed(seed: int, step: int, rank: int, round_: int = 0) -> int:
    """Independent, reproducible seed for one rank's rollouts of one step."""
    return int(np.random.SeedSequence([seed, step, rank, round_]).generate_state(1)[0])


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


def build_estimator(cfg: TrainConfig):
    return get_estimator(cfg.estimator, **cfg.estimator_params)  # unknown name / bad params -> ValueError naming them


def check_batch_geometry(cfg: TrainConfig, bundle_size: int, world_size: int) -> None:
    """Prompt and micro-batch arithmetic, checked before any model is loaded."""
    if cfg.prompts_per_step % bundle_size:
        raise ValueError(
            f"prompts_per_step={cfg.prompts_per_step} must be a multiple of the estimator's bundle_size={bundle_size} "
            f"(estimator={cfg.estimator!r}): bundles are formed from the global prompt batch")
    if cfg.prompts_per_step % world_size:
        raise ValueError(f"prompts_per_step={cfg.prompts_per_step} must be divisible by the number of processes={world_size}")
    rows = cfg.prompts_per_step // world_size * cfg.group_size
    if rows % (cfg.mini_batches * cfg.grad_accum):
        raise ValueError(
            f"completions per process = prompts_per_step/processes * group_size = {rows} must be divisible by "
            f"mini_batches * grad_accum = {cfg.mini_batches} * {cfg.grad_accum}")


def load_policy(cfg: TrainConfig):
    from llm.model import SMOLLM2, build_tiny_model, load_model_and_tokenizer, load_tokenizer

    if cfg.model == TINY_MODEL:
        tokenizer = load_tokenizer(SMOLLM2)
        return build_tiny_model(tokenizer, seed=cfg.seed), tokenizer
    return load_model_and_tokenizer(cfg.model, dtype=getattr(torch, cfg.dtype))


def _init_trackers(accelerator, cfg: TrainConfig) -> None:
    if not cfg.trackers():
        return
    flat = {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v)) for k, v in asdict(cfg).items()}
    accelerator.init_trackers("riskrl", config=flat)


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


# ============================================================================ the training loop


@dataclass
class TrainResult:
    metrics: dict              # the last step's logged metrics
    model: torch.nn.Module     # unwrapped policy after the last step
    estimator: object          # the advantage estimator (quantile tracker state inside)
    num_processes: int = 1


def main(argv: list[str] | None = None) -> dict:
    """Runs training from command-line arguments; returns the last step's metrics."""
    cfg = TrainConfig.from_args(argv)
    return train(cfg).metrics


def train(cfg: TrainConfig) -> TrainResult:
    from accelerate import Accelerator
    from accelerate.utils import gather_object
    from transformers import get_scheduler

    from llm.checkpoint import load_checkpoint, save_checkpoint
    from llm.data import DEFAULT_SYSTEM_PROMPT, PromptSampler, format_prompt, load_dataset_examples
    from llm.model import resolve_model_path
    from llm.rewards import RewardPipeline
    from llm.rollout import build_backend

    # ---- 1. validate everything that is cheap, before any model or rollout
    cfg.validate()
    estimator = build_estimator(cfg)
    output_dir = Path(cfg.output_dir)
    trackers = _available_trackers(cfg)
    accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum, log_with=trackers or None,
                              project_dir=str(output_dir))
    world, rank = accelerator.num_processes, accelerator.process_index
    check_batch_geometry(cfg, estimator.bundle_size, world)
    model_path = None if cfg.model == TINY_MODEL else resolve_model_path(cfg.model)  # missing path -> error now
    examples = load_dataset_examples(cfg.dataset, limit=cfg.dataset_limit or None, seed=cfg.seed)
    if not examples:
        raise ValueError(f"dataset={cfg.dataset!r} has no rows")
    # Unknown reward names / unimportable module:function fail here, before any model is loaded.
    reward_pipeline = RewardPipeline([tuple(s) for s in cfg.rewards], num_workers=cfg.reward_workers,
                                     timeout_s=cfg.reward_timeout_s)
    checkpoint_root = output_dir / "checkpoints"
    resume_state = None
    if cfg.resume:
        _, resume_state = load_checkpoint(cfg.resume, checkpoint_root)

    # ---- 2. build model, optimizer, data, rewards, rollouts
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_policy(cfg)
    model.train()
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
    reference = None
    if cfg.kl_coef > 0:
        reference = copy.deepcopy(model).eval().requires_grad_(False)  # frozen π_ref = the starting policy
        if resume_state is not None and "reference" in resume_state:
            reference.load_state_dict(resume_state["reference"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    optimizer_steps_per_step = cfg.ppo_epochs * cfg.mini_batches
    # Stepped by hand once per optimizer step: accelerate's prepared scheduler
    # would advance num_processes times per call.
    scheduler = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.warmup_steps,
                              num_training_steps=cfg.steps * optimizer_steps_per_step)
    model, optimizer = accelerator.prepare(model, optimizer)
    if reference is not None:
        reference = reference.to(accelerator.device)
    sampler = PromptSampler(examples, batch_size=cfg.prompts_per_step, seed=cfg.seed)
    backend = build_backend(cfg.rollout_backend, tokenizer, model_path, max_new_tokens=cfg.max_new_tokens,
                            temperature=cfg.temperature, top_p=cfg.top_p, max_prompt_tokens=cfg.max_prompt_tokens,
                            seed=cfg.seed, vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization)
    system_prompt = cfg.system_prompt or DEFAULT_SYSTEM_PROMPT
    start_step = 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        estimator.load_state_dict(resume_state["estimator"])
        sampler.load_state_dict(resume_state["sampler"])
        if len(resume_state["rng"]) != world:
            raise ValueError(f"checkpoint was written by {len(resume_state['rng'])} processes; now running {world}")
        set_rng_state(resume_state["rng"][rank])
        start_step = int(resume_state["step"])

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    _init_trackers(accelerator, cfg)
    metrics_path = output_dir / "metrics.jsonl"
    prompts_per_rank = cfg.prompts_per_step // world
    unwrapped = accelerator.unwrap_model(model)
    last_metrics: dict = {}

    with reward_pipeline:
        progress = tqdm(range(start_step, cfg.steps), initial=start_step, total=cfg.steps, desc="train",
                        disable=not accelerator.is_local_main_process, dynamic_ncols=True)
        for step in progress:
            step_started = time.perf_counter()
            timers = {"generate": 0.0, "reward": 0.0, "train": 0.0}

            # ---- 3. rollouts + rewards + global advantages (dynamic sampling may repeat this)
            kept: list[dict] = []  # per prompt of this rank: its G rollout rows and advantages
            reward_log: dict[str, list[torch.Tensor]] = {"total": []}
            reward_errors: dict[str, int] = {}
            estimator_metrics: dict[str, float] = {}
            rounds = 0
            t0 = time.perf_counter()
            backend.sync_weights(unwrapped)  # once per step: the weights do not change between sampling rounds
            timers["generate"] += time.perf_counter() - t0
            while True:
                global_batch = next(sampler)  # same on every rank (same seed, same state)
                local_batch = global_batch[rank * prompts_per_rank:(rank + 1) * prompts_per_rank]
                prompts = [format_prompt(tokenizer, ex.question, system_prompt=system_prompt) for ex in local_batch]

                t0 = time.perf_counter()
                rollout = backend.generate(unwrapped, prompts, cfg.group_size, step_seed(cfg.seed, step, rank, rounds))
                timers["generate"] += time.perf_counter() - t0

                t0 = time.perf_counter()
                row_examples = [ex for ex in local_batch for _ in range(cfg.group_size)]
                total, per_function, errors = reward_pipeline(rollout.completions, row_examples)
                for name, count in errors.items():
                    reward_errors[name] = reward_errors.get(name, 0) + int(count)
                local_rewards = total.to(accelerator.device, torch.float32).view(prompts_per_rank, cfg.group_size)
                global_rewards = accelerator.gather(local_rewards)  # (P_global, G), rank-major
                for name, values in per_function.items():
                    reward_log.setdefault(name, []).append(accelerator.gather(values.to(accelerator.device, torch.float32)).cpu())
                reward_log["total"].append(global_rewards.reshape(-1).cpu())
                timers["reward"] += time.perf_counter() - t0

                # Advantages once, on the global matrix: every rank computes the same numbers.
                out = estimator(global_rewards.cpu().double())
                if rounds == 0:  # the estimator's view of the step as sampled; later rounds only refill
                    estimator_metrics = dict(out.metrics)
                advantages = out.advantages.float()
                local_adv = advantages[rank * prompts_per_rank:(rank + 1) * prompts_per_rank]
                for p in range(prompts_per_rank):
                    rows = slice(p * cfg.group_size, (p + 1) * cfg.group_size)
                    kept.append({
                        "prompt_ids": rollout.prompt_ids[rows], "prompt_mask": rollout.prompt_mask[rows],
                        "completion_ids": rollout.completion_ids[rows], "completion_mask": rollout.completion_mask[rows],
                        "advantages": local_adv[p], "signal": bool((local_adv[p].abs() > 0).any()),
                    })
                if not cfg.dynamic_sampling:
                    break
                # DAPO dynamic sampling: prompts (bundles) whose advantages all vanish carry no
                # gradient; replace them with fresh prompts, up to dynamic_sampling_max_rounds times.
                with_signal = torch.tensor([sum(k["signal"] for k in kept)], device=accelerator.device)
                enough = bool((accelerator.gather(with_signal) >= prompts_per_rank).all())
                if enough or rounds >= cfg.dynamic_sampling_max_rounds:
                    break
                rounds += 1
            if cfg.dynamic_sampling:  # prompts with signal first; zero-advantage ones pad if rounds ran out
                kept.sort(key=lambda k: not k["signal"])
                kept = kept[:prompts_per_rank]

            batch = _stack_rows(kept, tokenizer.pad_token_id)
            trained_zero = torch.tensor([float(not k["signal"]) for k in kept], device=accelerator.device)
            frac_zero_trained = float(accelerator.gather(trained_zero).mean())
            global_lengths = accelerator.gather(batch["completion_mask"].sum(-1).float()).cpu()

            # ---- 4. policy update: PPO epochs x mini-batches x micro-batches
            t0 = time.perf_counter()
            train_stats = ppo_update(cfg, accelerator, model, reference, optimizer, scheduler, batch)
            timers["train"] += time.perf_counter() - t0

            # ---- 5. log
            completed = step + 1
            rewards_all = torch.cat(reward_log["total"])
            metrics = {
                "step": completed,
                "reward_mean": float(rewards_all.mean()),
                "reward_std": float(rewards_all.std()) if rewards_all.numel() > 1 else 0.0,
                **{f"reward/{n}": float(torch.cat(v).mean()) for n, v in reward_log.items() if n != "total"},
                **{f"reward_errors/{n}": c for n, c in reward_errors.items()},
                "completion_length": float(global_lengths.mean()),
                "completion_length_max": float(global_lengths.max()),
                **estimator_metrics,
                **train_stats,
                "lr": scheduler.get_last_lr()[0],
                "dynamic_sampling_rounds": rounds,
                "frac_zero_adv_groups_trained": frac_zero_trained,
                "time/generate": timers["generate"],
                "time/reward": timers["reward"],
                "time/train": timers["train"],
                "time/step": time.perf_counter() - step_started,
            }
            last_metrics = metrics
            if accelerator.is_main_process and (completed % cfg.log_every == 0 or completed == cfg.steps):
                with open(metrics_path, "a") as handle:
                    handle.write(json.dumps(metrics) + "\n")
                progress.set_postfix(reward=f"{metrics['reward_mean']:.3f}", loss=f"{metrics['loss']:.4f}",
                                     len=f"{metrics['completion_length']:.0f}")
            if trackers and completed % cfg.log_every == 0:
                accelerator.log({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)},
                                step=completed)

            # ---- 6. checkpoint (atomic; all ranks contribute their RNG state)
            if (cfg.save_every and completed % cfg.save_every == 0) or completed == cfg.steps:
                rng_states = gather_object([rng_state()])
                model_state = accelerator.get_state_dict(model)
                if accelerator.is_main_process:
                    state = {
                        "step": completed, "config": asdict(cfg), "model": model_state,
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "estimator": estimator.state_dict(), "sampler": sampler.state_dict(), "rng": rng_states,
                    }
                    if reference is not None:
                        state["reference"] = reference.state_dict()

                    def export(tmp_dir: Path) -> None:
                        if cfg.save_model:
                            unwrapped.save_pretrained(tmp_dir / "model", state_dict=model_state)
                            tokenizer.save_pretrained(tmp_dir / "model")

                    save_checkpoint(checkpoint_root, completed, state, keep_last=cfg.keep_last, write_extra=export)
                accelerator.wait_for_everyone()

    accelerator.end_training()
    return TrainResult(metrics=last_metrics, model=unwrapped, estimator=estimator, num_processes=world)


def _stack_rows(kept: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Concatenate per-prompt row groups (possibly from different rounds, so different widths)."""
    def cat(key: str, left: bool, pad) -> torch.Tensor:
        parts = [k[key] for k in kept]
        width = max(p.shape[1] for p in parts)
        padded = []
        for p in parts:
            fill = torch.full((p.shape[0], width - p.shape[1]), pad, dtype=p.dtype, device=p.device)
            padded.append(torch.cat([fill, p] if left else [p, fill], dim=1))
        return torch.cat(padded, dim=0)

    return {
        "prompt_ids": cat("prompt_ids", True, pad_token_id),
        "prompt_mask": cat("prompt_mask", True, 0),
        "completion_ids": cat("completion_ids", False, pad_token_id),
        "completion_mask": cat("completion_mask", False, 0),
        "advantages": torch.cat([k["advantages"] for k in kept]),
    }


def ppo_update(cfg: TrainConfig, accelerator, model, reference, optimizer, scheduler, batch: dict) -> dict[str, float]:
    """PPO epochs over mini-batches of this rank's rows; returns metrics averaged over ranks."""
    rows = batch["advantages"].shape[0]
    device = accelerator.device
    batch = {k: v.to(device) for k, v in batch.items()}
    micro_size = rows // (cfg.mini_batches * cfg.grad_accum)
    # One epoch, one mini-batch: the policy cannot move before its own update, so
    # π_old = π_θ.detach() and the extra no-grad forward is skipped (as in TRL).
    on_policy = cfg.ppo_epochs == 1 and cfg.mini_batches == 1

    def micro_batches(indices: torch.Tensor):
        for start in range(0, len(indices), micro_size):
            idx = indices[start:start + micro_size]
            yield idx, {k: v[idx] for k, v in batch.items()}

    def forward(mb, with_entropy=False, module=model):
        return completion_logprobs(module, mb["prompt_ids"], mb["prompt_mask"], mb["completion_ids"],
                                   mb["completion_mask"], cfg.temperature, with_entropy)

    old_logprobs = torch.zeros_like(batch["completion_ids"], dtype=torch.float32)
    ref_logprobs = torch.zeros_like(old_logprobs) if reference is not None else None
    entropy_sum = torch.zeros((), device=device)
    with torch.no_grad():
        for idx, mb in micro_batches(torch.arange(rows, device=device)):
            if not on_policy:
                logprobs, entropy = forward(mb, with_entropy=True)
                old_logprobs[idx] = logprobs
                entropy_sum += (entropy * mb["completion_mask"]).sum()
            if reference is not None:
                ref_logprobs[idx] = forward(mb, module=reference)[0]

    mask = batch["completion_mask"]
    sums = {"loss": 0.0, "clip_frac": 0.0, "kl": 0.0, "ratio": 0.0, "grad_norm": 0.0}
    counts = {"updates": 0, "micro": 0}
    generator = torch.Generator().manual_seed(step_seed(cfg.seed, int(scheduler.last_epoch), accelerator.process_index))
    for epoch in range(cfg.ppo_epochs):
        order = torch.randperm(rows, generator=generator).to(device) if cfg.mini_batches > 1 else torch.arange(rows, device=device)
        mini_size = rows // cfg.mini_batches
        for m in range(cfg.mini_batches):
            mini = order[m * mini_size:(m + 1) * mini_size]
            # Denominators of the whole mini-batch summed over ranks, divided by the rank count
            # because DDP averages gradients: the update is that of one global mini-batch.
            totals = accelerator.reduce(torch.stack([mask[mini].sum().float(), torch.tensor(float(len(mini)), device=device)]), "sum")
            num_tokens = (totals[0] / accelerator.num_processes).clamp(min=1.0)
            num_sequences = totals[1] / accelerator.num_processes
            for idx, mb in micro_batches(mini):
                with accelerator.accumulate(model):
                    logprobs, entropy = forward(mb, with_entropy=on_policy)
                    old = logprobs.detach() if on_policy else old_logprobs[idx]
                    loss, stats = policy_loss(
                        logprobs, old, mb["advantages"], mb["completion_mask"], clip_eps_low=cfg.clip_eps_low,
                        clip_eps_high=cfg.clip_eps_high, importance_ratio=cfg.importance_ratio, loss_agg=cfg.loss_agg,
                        ref_logprobs=ref_logprobs[idx] if ref_logprobs is not None else None, kl_coef=cfg.kl_coef,
                        num_tokens=num_tokens, num_sequences=num_sequences)
                    # accelerate divides by grad_accum; our denominators already span the mini-batch.
                    accelerator.backward(loss * cfg.grad_accum)
                    if on_policy:
                        entropy_sum += (entropy * mb["completion_mask"]).sum()
                    if accelerator.sync_gradients:
                        if cfg.max_grad_norm > 0:
                            norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                            sums["grad_norm"] += float(norm) if norm is not None else math.nan  # DeepSpeed clips inside
                        counts["updates"] += 1
                    optimizer.step()
                    if accelerator.sync_gradients:
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                sums["loss"] += float(loss.detach())
                for key in ("clip_frac", "kl", "ratio"):
                    sums[key] += float(stats[key])
                counts["micro"] += 1

    local = torch.tensor([
        sums["loss"] / max(cfg.ppo_epochs * cfg.mini_batches, 1),  # micro losses add up to the mini-batch loss
        sums["clip_frac"] / counts["micro"], sums["kl"] / counts["micro"], sums["ratio"] / counts["micro"],
        sums["grad_norm"] / max(counts["updates"], 1), float(entropy_sum), float(mask.sum()),
    ], device=device, dtype=torch.float64)
    # Each rank's loss is scaled by world/global-count, so the global loss is the mean over ranks.
    summed = accelerator.reduce(local.clone(), "sum")
    mean = summed / accelerator.num_processes
    return {
        "loss": float(mean[0]), "clip_frac": float(mean[1]), "kl": float(mean[2]), "ratio_mean": float(mean[3]),
        "grad_norm": float(mean[4]), "entropy": float(summed[5] / summed[6].clamp(min=1.0)),
    }


if __name__ == "__main__":
    main()

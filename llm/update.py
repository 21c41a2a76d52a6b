"""The policy update of one training step: PPO epochs × mini-batches × micro-batches over this rank's rows.

The loss is ``llm.loss.policy_loss`` (theory/surrogate.py underneath); this
module only schedules it: old log-probs, the optional frozen reference, the
rollout/trainer importance weights, gradient accumulation and clipping, and
the step's update metrics averaged over ranks.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from llm.loss import completion_logprobs, policy_loss
from theory.dynamics import covariance
from theory.surrogate import truncated_importance_weights


def step_seed(seed: int, step: int, rank: int, round_: int = 0) -> int:
    """Independent, reproducible seed for one rank's rollouts (or shuffles) of one step."""
    return int(np.random.SeedSequence([seed, step, rank, round_]).generate_state(1)[0])


def _sequence_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def ppo_update(cfg, accelerator, model, reference, optimizer, scheduler, batch: dict) -> dict[str, float]:
    """Update the policy on ``batch`` (this rank's rows); returns metrics averaged over ranks.

    ``batch`` holds prompt_ids/prompt_mask (N, Lp), completion_ids/completion_mask
    (N, Lc), advantages (N,) and, when the rollout backend reports them,
    sampled_logprobs (N, Lc): the rollout engine's log-probs of the sampled tokens.
    """
    rows = batch["advantages"].shape[0]
    device = accelerator.device
    batch = {k: v.to(device) for k, v in batch.items()}
    micro_size = rows // (cfg.mini_batches * cfg.grad_accum)
    # One epoch, one mini-batch: the policy cannot move before its own update, so
    # π_old = π_θ.detach() and the extra no-grad forward is skipped (as in TRL).
    on_policy = cfg.ppo_epochs == 1 and cfg.mini_batches == 1
    sampled = batch.get("sampled_logprobs") if cfg.tis_cap > 0 else None

    def micro_batches(indices: torch.Tensor):
        for start in range(0, len(indices), micro_size):
            idx = indices[start : start + micro_size]
            yield idx, {k: v[idx] for k, v in batch.items()}

    def forward(mb, with_entropy=False, module=model):
        return completion_logprobs(
            module,
            mb["prompt_ids"],
            mb["prompt_mask"],
            mb["completion_ids"],
            mb["completion_mask"],
            cfg.temperature,
            with_entropy,
        )

    mask = batch["completion_mask"]
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

    sums = {"loss": 0.0, "clip_frac": 0.0, "kl": 0.0, "ratio": 0.0, "grad_norm": 0.0}
    counts = {"updates": 0, "micro": 0}
    mismatch = {"abs": 0.0, "max": 0.0, "truncated": 0.0, "tokens": 0.0}
    seq_logp = torch.zeros(rows, device=device)  # π_θ' sequence mean log-prob, for cov_logp_adv
    generator = torch.Generator().manual_seed(step_seed(cfg.seed, int(scheduler.last_epoch), accelerator.process_index))
    for epoch in range(cfg.ppo_epochs):
        order = (
            torch.randperm(rows, generator=generator).to(device)
            if cfg.mini_batches > 1
            else torch.arange(rows, device=device)
        )
        mini_size = rows // cfg.mini_batches
        for m in range(cfg.mini_batches):
            mini = order[m * mini_size : (m + 1) * mini_size]
            # Denominators of the whole mini-batch summed over ranks, divided by the rank count
            # because DDP/FSDP average gradients: the update is that of one global mini-batch.
            totals = accelerator.reduce(
                torch.stack([mask[mini].sum().float(), torch.tensor(float(len(mini)), device=device)]), "sum"
            )
            num_tokens = (totals[0] / accelerator.num_processes).clamp(min=1.0)
            num_sequences = totals[1] / accelerator.num_processes
            for idx, mb in micro_batches(mini):
                with accelerator.accumulate(model):
                    logprobs, entropy = forward(mb, with_entropy=on_policy)
                    old = logprobs.detach() if on_policy else old_logprobs[idx]
                    tis = None
                    if sampled is not None:
                        correction = truncated_importance_weights(
                            old, mb["sampled_logprobs"], mb["completion_mask"], cfg.tis_cap
                        )
                        tis = correction.weights
                        if epoch == 0:
                            n_tok = float(mb["completion_mask"].sum())
                            mismatch["abs"] += float(correction.mean_abs_log_diff) * n_tok
                            mismatch["truncated"] += float(correction.truncated_frac) * n_tok
                            mismatch["tokens"] += n_tok
                            mismatch["max"] = max(mismatch["max"], float(correction.max_ratio))
                    if epoch == 0:
                        seq_logp[idx] = _sequence_mean(old.float(), mb["completion_mask"])
                    loss, stats = policy_loss(
                        logprobs,
                        old,
                        mb["advantages"],
                        mb["completion_mask"],
                        clip_eps_low=cfg.clip_eps_low,
                        clip_eps_high=cfg.clip_eps_high,
                        importance_ratio=cfg.importance_ratio,
                        loss_agg=cfg.loss_agg,
                        ref_logprobs=ref_logprobs[idx] if ref_logprobs is not None else None,
                        kl_coef=cfg.kl_coef,
                        num_tokens=num_tokens,
                        num_sequences=num_sequences,
                        tis_weights=tis,
                    )
                    # accelerate divides by grad_accum; our denominators already span the mini-batch.
                    accelerator.backward(loss * cfg.grad_accum)
                    if on_policy:
                        entropy_sum += (entropy * mb["completion_mask"]).sum()
                    if accelerator.sync_gradients:
                        if cfg.max_grad_norm > 0:
                            norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                            if hasattr(norm, "full_tensor"):  # FSDP2: a DTensor
                                norm = norm.full_tensor()
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

    local = torch.tensor(
        [
            sums["loss"] / max(cfg.ppo_epochs * cfg.mini_batches, 1),  # micro losses add up to the mini-batch loss
            sums["clip_frac"] / counts["micro"],
            sums["kl"] / counts["micro"],
            sums["ratio"] / counts["micro"],
            sums["grad_norm"] / max(counts["updates"], 1),
            float(entropy_sum),
            float(mask.sum()),
            mismatch["abs"],
            mismatch["truncated"],
            mismatch["tokens"],
        ],
        device=device,
        dtype=torch.float64,
    )
    # Each rank's loss is scaled by world/global-count, so the global loss is the mean over ranks.
    summed = accelerator.reduce(local.clone(), "sum")
    mean = summed / accelerator.num_processes
    metrics = {
        "loss": float(mean[0]),
        "clip_frac": float(mean[1]),
        "kl": float(mean[2]),
        "ratio_mean": float(mean[3]),
        "grad_norm": float(mean[4]),
        "entropy": float(summed[5] / summed[6].clamp(min=1.0)),
    }
    # Cov over the global batch of (sequence mean log-prob under π_θ', advantage): RiskPO Prop. 1's entropy driver.
    logp_all = accelerator.gather(seq_logp.double()).cpu()
    adv_all = accelerator.gather(batch["advantages"].double()).cpu()
    uniform = torch.full_like(adv_all, 1.0 / adv_all.numel())
    metrics["cov_logp_adv"] = float(covariance(logp_all, adv_all, uniform))
    if sampled is not None:
        tokens = float(summed[9])
        worst = (
            accelerator.gather(torch.tensor([mismatch["max"]], device=device, dtype=torch.float64))
            .max(0, keepdim=True)
            .values
        )
        metrics["mismatch/mean_abs_logp_diff"] = float(summed[7]) / max(tokens, 1.0)
        metrics["mismatch/tis_truncated_frac"] = float(summed[8]) / max(tokens, 1.0)
        metrics["mismatch/max_ratio"] = float(worst[0])
    return metrics

"""The policy update of one training step: PPO epochs × mini-batches × micro-batches over this rank's rows.

The loss is ``llm.loss.policy_loss`` (theory/surrogate.py underneath); this module only schedules
it. ``ppo_update`` reads top to bottom in four named pieces:

1. ``frozen_logprobs``   no-grad pass: π_old (skipped on policy) and the frozen reference's log-probs;
2. ``mini_batch_denominators``  tokens and sequences of one global mini-batch (over ranks);
3. ``micro_step``        one micro-batch: ``chunk_backward`` over row chunks of at most
                         ``micro_batch_max_tokens`` padded tokens, then (at the accumulation boundary)
                         the optimizer step;
4. ``reduce_metrics``    the step's named sums, reduced over ranks into the logged metrics.

Every piece adds into one ``UpdateSums`` of named running sums; nothing is read back by position.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch

from llm.loss import completion_logprobs, policy_loss
from llm.model import trim_heap
from llm.seeding import step_seed
from theory.dynamics import covariance
from theory.surrogate import truncated_importance_weights

#: The sums every rank adds up over the step, summed over ranks at the end (in this order).
SUMMED_OVER_RANKS = (
    "loss",  # mean over mini-batches of the mini-batch loss (the micro losses add up to it)
    "clip_frac",  # mean over forward passes (micro-batch chunks)
    "kl",
    "ratio_mean",
    "grad_norm",  # mean over optimizer steps
    "entropy_sum",  # Σ token entropy · mask
    "tokens",  # Σ mask
    "mismatch_abs",  # Σ |log π_old − log π_rollout| over tokens (first epoch)
    "mismatch_truncated",  # Σ truncated-weight indicator over tokens (first epoch)
    "mismatch_tokens",  # tokens the two sums above count
)


@dataclass
class UpdateSums:
    """Running sums of one rank's update, by name."""

    loss: float = 0.0
    clip_frac: float = 0.0
    kl: float = 0.0
    ratio: float = 0.0
    grad_norm: float = 0.0
    updates: int = 0  # optimizer steps
    micro: int = 0  # micro-batches
    mismatch_abs: float = 0.0
    mismatch_max: float = 0.0
    mismatch_truncated: float = 0.0
    mismatch_tokens: float = 0.0
    entropy: torch.Tensor = field(default_factory=lambda: torch.zeros(()))


def _sequence_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def _micro_batches(batch: dict, indices: torch.Tensor, size: int):
    for start in range(0, len(indices), size):
        idx = indices[start : start + size]
        yield idx, {k: v[idx] for k, v in batch.items()}


def _forward(cfg, module, mb: dict, with_entropy: bool = False):
    return completion_logprobs(
        module,
        mb["prompt_ids"],
        mb["prompt_mask"],
        mb["completion_ids"],
        mb["completion_mask"],
        cfg.temperature,
        with_entropy,
    )


def frozen_logprobs(cfg, model, reference, batch: dict, micro_size: int, on_policy: bool, sums: UpdateSums):
    """No-grad pass over the rows: π_old's log-probs (and entropy) unless on policy, the reference's
    log-probs when there is one. Returns (old_logprobs, ref_logprobs or None)."""
    rows, device = batch["advantages"].shape[0], batch["advantages"].device
    old_logprobs = torch.zeros_like(batch["completion_ids"], dtype=torch.float32)
    ref_logprobs = torch.zeros_like(old_logprobs) if reference is not None else None
    with torch.no_grad():
        for idx, mb in _micro_batches(batch, torch.arange(rows, device=device), micro_size):
            if not on_policy:
                logprobs, entropy = _forward(cfg, model, mb, with_entropy=True)
                old_logprobs[idx] = logprobs
                sums.entropy += (entropy * mb["completion_mask"]).sum()
            if reference is not None:
                ref_logprobs[idx] = _forward(cfg, reference, mb)[0]
    return old_logprobs, ref_logprobs


def mini_batch_denominators(accelerator, mask: torch.Tensor, mini: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, sequences) of the global mini-batch, summed over ranks and divided by the rank count
    because DDP/FSDP average gradients: the update is that of one global mini-batch."""
    device = mask.device
    totals = accelerator.reduce(
        torch.stack([mask[mini].sum().float(), torch.tensor(float(len(mini)), device=device)]), "sum"
    )
    return (totals[0] / accelerator.num_processes).clamp(min=1.0), totals[1] / accelerator.num_processes


def _tis_weights(cfg, old, mb: dict, first_epoch: bool, sums: UpdateSums):
    """Truncated importance weights π_old/π_rollout (and, in the first epoch, the mismatch sums)."""
    correction = truncated_importance_weights(old, mb["sampled_logprobs"], mb["completion_mask"], cfg.tis_cap)
    if first_epoch:
        n_tok = float(mb["completion_mask"].sum())
        sums.mismatch_abs += float(correction.mean_abs_log_diff) * n_tok
        sums.mismatch_truncated += float(correction.truncated_frac) * n_tok
        sums.mismatch_tokens += n_tok
        sums.mismatch_max = max(sums.mismatch_max, float(correction.max_ratio))
    return correction.weights


def chunk_rows(cfg, accelerator, batch: dict) -> int:
    """Rows of one forward/backward under ``micro_batch_max_tokens`` (padded tokens per pass).

    Every micro-batch of the step has the same padded width; the widest rank's sets the chunk, so
    every rank runs as many passes (FSDP gathers weights once per forward and reduces once per
    backward, in lockstep). 0 = no cap: one pass per micro-batch."""
    rows = batch["advantages"].shape[0]
    if cfg.micro_batch_max_tokens <= 0:
        return max(rows, 1)
    width = batch["prompt_ids"].shape[1] + batch["completion_ids"].shape[1]
    widest = int(accelerator.gather(torch.tensor([width], device=batch["advantages"].device)).max())
    return max(1, cfg.micro_batch_max_tokens // widest)


def chunk_backward(cfg, accelerator, model, mb: dict, step_inputs: dict, sums: UpdateSums) -> torch.Tensor:
    """Loss and backward of one chunk of rows (the losses of a micro-batch's chunks add up to its loss:
    the denominators ``num_tokens``/``num_sequences`` span the mini-batch). Returns the rows' sequence-mean
    log-prob under π_old (for cov_logp_adv)."""
    on_policy = step_inputs["on_policy"]
    logprobs, entropy = _forward(cfg, model, mb, with_entropy=on_policy)
    old = logprobs.detach() if on_policy else step_inputs["old"]
    tis = _tis_weights(cfg, old, mb, step_inputs["first_epoch"], sums) if step_inputs["tis"] else None
    loss, stats = policy_loss(
        logprobs,
        old,
        mb["advantages"],
        mb["completion_mask"],
        clip_eps_low=cfg.clip_eps_low,
        clip_eps_high=cfg.clip_eps_high,
        importance_ratio=cfg.importance_ratio,
        loss_agg=cfg.loss_agg,
        ref_logprobs=step_inputs["ref"],
        kl_coef=cfg.kl_coef,
        num_tokens=step_inputs["num_tokens"],
        num_sequences=step_inputs["num_sequences"],
        tis_weights=tis,
    )
    # accelerate divides by grad_accum; our denominators already span the mini-batch.
    accelerator.backward(loss * cfg.grad_accum)
    if accelerator.device.type == "cpu":
        # The pass's activations are freed now; without this glibc keeps their pages resident and the
        # next pass (and AdamW's moments) grow the heap beside them: 0.3-0.45 GiB of the default run's peak.
        trim_heap()
    if on_policy:
        sums.entropy += (entropy * mb["completion_mask"]).sum()
    sums.loss += float(loss.detach())
    sums.clip_frac += float(stats["clip_frac"])
    sums.kl += float(stats["kl"])
    sums.ratio += float(stats["ratio"])
    sums.micro += 1
    return _sequence_mean(old.float(), mb["completion_mask"])


def micro_step(cfg, accelerator, model, optimizer, scheduler, mb: dict, step_inputs: dict, sums: UpdateSums, rows: int):
    """One micro-batch: backward over chunks of ``rows`` rows, then (when gradients sync) clipping and the
    optimizer/scheduler step.

    ``step_inputs``: old (π_old log-probs of these rows), ref (or None), num_tokens, num_sequences,
    on_policy, first_epoch, tis. Returns the rows' sequence-mean log-prob under π_old."""
    total = mb["advantages"].shape[0]
    sequence_logp = []
    with accelerator.accumulate(model):
        for start in range(0, total, rows):
            part = slice(start, start + rows)
            chunk = {k: v[part] for k, v in mb.items()}
            inputs = {**step_inputs, "old": step_inputs["old"][part]}
            inputs["ref"] = step_inputs["ref"][part] if step_inputs["ref"] is not None else None
            # Only the last chunk's backward may all-reduce (DDP); the earlier ones only accumulate.
            last = start + rows >= total
            with contextlib.nullcontext() if last else accelerator.no_sync(model):
                sequence_logp.append(chunk_backward(cfg, accelerator, model, chunk, inputs, sums))
        if accelerator.sync_gradients:
            if cfg.max_grad_norm > 0:
                norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                if hasattr(norm, "full_tensor"):  # FSDP2: a DTensor
                    norm = norm.full_tensor()
                sums.grad_norm += float(norm) if norm is not None else math.nan  # DeepSpeed clips inside
            sums.updates += 1
        optimizer.step()
        if accelerator.sync_gradients:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return torch.cat(sequence_logp)


def reduce_metrics(cfg, accelerator, sums: UpdateSums, tokens: float, seq_logp, advantages, tis: bool) -> dict:
    """The step's update metrics: per-rank means averaged over ranks, token ratios of global sums,
    and Cov(sequence mean log-prob under π_θ', advantage) over the global batch (RiskPO Prop. 1)."""
    device = accelerator.device
    local = {
        "loss": sums.loss / max(cfg.ppo_epochs * cfg.mini_batches, 1),
        "clip_frac": sums.clip_frac / sums.micro,
        "kl": sums.kl / sums.micro,
        "ratio_mean": sums.ratio / sums.micro,
        "grad_norm": sums.grad_norm / max(sums.updates, 1),
        "entropy_sum": float(sums.entropy),
        "tokens": tokens,
        "mismatch_abs": sums.mismatch_abs,
        "mismatch_truncated": sums.mismatch_truncated,
        "mismatch_tokens": sums.mismatch_tokens,
    }
    local_tensor = torch.tensor([local[k] for k in SUMMED_OVER_RANKS], device=device, dtype=torch.float64)
    # Each rank's loss is scaled by world/global-count, so the global loss is the mean over ranks.
    summed = dict(zip(SUMMED_OVER_RANKS, accelerator.reduce(local_tensor.clone(), "sum")))
    metrics = {k: float(summed[k] / accelerator.num_processes) for k in ("loss", "clip_frac", "kl", "ratio_mean")}
    metrics["grad_norm"] = float(summed["grad_norm"] / accelerator.num_processes)
    metrics["entropy"] = float(summed["entropy_sum"] / summed["tokens"].clamp(min=1.0))
    logp_all = accelerator.gather(seq_logp.double()).cpu()
    adv_all = accelerator.gather(advantages.double()).cpu()
    metrics["cov_logp_adv"] = float(covariance(logp_all, adv_all, torch.full_like(adv_all, 1.0 / adv_all.numel())))
    if tis:
        mismatch_tokens = max(float(summed["mismatch_tokens"]), 1.0)
        worst = accelerator.gather(torch.tensor([sums.mismatch_max], device=device, dtype=torch.float64)).max(0).values
        metrics["mismatch/mean_abs_logp_diff"] = float(summed["mismatch_abs"]) / mismatch_tokens
        metrics["mismatch/tis_truncated_frac"] = float(summed["mismatch_truncated"]) / mismatch_tokens
        metrics["mismatch/max_ratio"] = float(worst)
    return metrics


def ppo_update(cfg, accelerator, model, reference, optimizer, scheduler, batch: dict) -> dict[str, float]:
    """Update the policy on ``batch`` (this rank's rows); returns metrics averaged over ranks.

    ``batch`` holds prompt_ids/prompt_mask (N, Lp), completion_ids/completion_mask
    (N, Lc), advantages (N,) and, when the rollout backend reports them,
    sampled_logprobs (N, Lc): the rollout engine's log-probs of the sampled tokens.
    """
    device = accelerator.device
    batch = {k: v.to(device) for k, v in batch.items()}
    rows, mask = batch["advantages"].shape[0], batch["completion_mask"]
    micro_size = rows // (cfg.mini_batches * cfg.grad_accum)
    # One epoch, one mini-batch: the policy cannot move before its own update, so
    # π_old = π_θ.detach() and the extra no-grad forward is skipped (as in TRL).
    on_policy = cfg.ppo_epochs == 1 and cfg.mini_batches == 1
    tis = cfg.tis_cap > 0 and "sampled_logprobs" in batch
    sums = UpdateSums(entropy=torch.zeros((), device=device))
    rows_per_pass = min(chunk_rows(cfg, accelerator, batch), micro_size)  # micro_batch_max_tokens
    old_logprobs, ref_logprobs = frozen_logprobs(cfg, model, reference, batch, rows_per_pass, on_policy, sums)

    seq_logp = torch.zeros(rows, device=device)  # π_θ' sequence mean log-prob, for cov_logp_adv
    generator = torch.Generator().manual_seed(step_seed(cfg.seed, int(scheduler.last_epoch), accelerator.process_index))
    mini_size = rows // cfg.mini_batches
    for epoch in range(cfg.ppo_epochs):
        shuffled = cfg.mini_batches > 1
        order = torch.randperm(rows, generator=generator).to(device) if shuffled else torch.arange(rows, device=device)
        for m in range(cfg.mini_batches):
            mini = order[m * mini_size : (m + 1) * mini_size]
            num_tokens, num_sequences = mini_batch_denominators(accelerator, mask, mini)
            for idx, mb in _micro_batches(batch, mini, micro_size):
                step_inputs = {
                    "old": old_logprobs[idx],
                    "ref": ref_logprobs[idx] if ref_logprobs is not None else None,
                    "num_tokens": num_tokens,
                    "num_sequences": num_sequences,
                    "on_policy": on_policy,
                    "first_epoch": epoch == 0,
                    "tis": tis,
                }
                sequence_logp = micro_step(
                    cfg, accelerator, model, optimizer, scheduler, mb, step_inputs, sums, rows_per_pass
                )
                if epoch == 0:
                    seq_logp[idx] = sequence_logp
    return reduce_metrics(cfg, accelerator, sums, float(mask.sum()), seq_logp, batch["advantages"], tis)

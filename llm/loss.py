"""The trainer's loss: token log-probs of a causal LM and the clipped surrogate from theory/.

No formula of the surrogate lives here: ``theory.surrogate`` owns the ratio,
the clipping, the aggregation and the KL estimator (the tabular simulator
calls the same functions). This module adds the model forward pass and the
trainer's glue (KL term, rollout-mismatch weights).
"""

from __future__ import annotations

import torch

from theory.surrogate import (
    IMPORTANCE_RATIOS,
    LOSS_AGGREGATIONS,
    aggregate,
    clipped_surrogate,
    k3_kl,
    truncated_importance_weights,
)

__all__ = [
    "IMPORTANCE_RATIOS",
    "LOSS_AGGREGATIONS",
    "completion_logprobs",
    "policy_loss",
    "truncated_importance_weights",
]


def completion_logprobs(
    model,
    prompt_ids,
    prompt_mask,
    completion_ids,
    completion_mask,
    temperature: float = 1.0,
    with_entropy: bool = False,
):
    """log π(y_t | x, y_<t) for every completion token, (N, Lc); optionally the token entropies too.

    Positions follow the attention mask (cumsum − 1), exactly as ``generate``
    numbers left-padded prompts. Logits are divided by the sampling temperature
    so that ratios compare the distributions the tokens were drawn from.

    The entropy reuses the log-normaliser of the log-probs: H = log Z − Σ_a p_a z_a
    with p = softmax(z), one extra (N, Lc, V) tensor (p) instead of the two of
    log_softmax + exp, and no gradient.
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    num_completion = completion_ids.shape[1]
    # logits_to_keep skips the vocabulary projection over the prompt, the largest matmul here.
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        logits_to_keep=num_completion + 1,
        use_cache=False,
    ).logits[:, :-1]
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # log-softmax over 50k entries in half precision loses the ratio's precision
    if temperature != 1.0:
        logits = logits / temperature
    log_normaliser = torch.logsumexp(logits, dim=-1)
    logprobs = logits.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1) - log_normaliser
    entropy = None
    if with_entropy:
        with torch.no_grad():
            z = logits.detach()
            p = torch.exp(z - log_normaliser.detach().unsqueeze(-1))
            # Σ_a p_a z_a as a batched dot product: no third (N, Lc, V) temporary.
            expected_logit = torch.matmul(p.unsqueeze(-2), z.unsqueeze(-1)).squeeze(-1).squeeze(-1)
            entropy = log_normaliser.detach() - expected_logit
    return logprobs, entropy


def policy_loss(
    logprobs,
    old_logprobs,
    advantages,
    mask,
    *,
    clip_eps_low: float,
    clip_eps_high: float,
    importance_ratio: str = "token",
    loss_agg: str = "token-mean",
    ref_logprobs=None,
    kl_coef: float = 0.0,
    num_tokens=None,
    num_sequences=None,
    tis_weights=None,
):
    """Clipped surrogate (+ kl_coef · k3 KL to a reference), optionally re-weighted by TIS, aggregated.

    ``tis_weights`` (N, L) are the truncated rollout/trainer importance weights
    (``truncated_importance_weights``); they multiply the surrogate term only
    (the KL term is an expectation under π_θ, not under the rollout engine).
    Returns (loss, stats) with detached masked means ``clip_frac``, ``ratio``, ``kl``.
    """
    out = clipped_surrogate(
        logprobs,
        old_logprobs,
        advantages,
        mask,
        clip_eps_low=clip_eps_low,
        clip_eps_high=clip_eps_high,
        importance_ratio=importance_ratio,
    )
    per_token = out.per_token_loss
    if tis_weights is not None:
        per_token = per_token * tis_weights.to(per_token.dtype)
    kl_mean = torch.zeros((), dtype=logprobs.dtype)
    if ref_logprobs is not None and kl_coef > 0:
        kl = k3_kl(logprobs, ref_logprobs)
        per_token = per_token + kl_coef * kl
        with torch.no_grad():
            mask_f = mask.to(kl.dtype)
            kl_mean = (kl * mask_f).sum() / mask_f.sum().clamp(min=1.0)
    loss = aggregate(per_token, mask, loss_agg, num_tokens=num_tokens, num_sequences=num_sequences)
    return loss, {"clip_frac": out.clip_frac, "ratio": out.ratio_mean, "kl": kl_mean.detach()}

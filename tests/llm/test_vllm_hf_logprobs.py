"""Rollout.sampled_logprobs of the HF backend (no vLLM needed: runs in the default suite).

The vLLM half of the same contract is in test_vllm_rollout.py. Both backends must
report log π_rollout(token) under the distribution the token was drawn from
(temperature, then top-p renormalisation), 0 on masked positions.
"""

import torch

from llm.model import SMOLLM2, build_tiny_model, load_tokenizer
from llm.rollout import HFGenerateBackend, encode_prompts

PROMPTS = ["Hello", "What is 2+2? Answer briefly please"]


def recompute_logits(model, rollout, temperature):
    """Full-sequence forward (no KV cache), left padding handled with explicit positions as generate does."""
    ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], dim=1)
    mask = torch.cat([rollout.prompt_mask, torch.ones_like(rollout.completion_ids)], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float()
    return logits[:, rollout.prompt_ids.shape[1] - 1 : -1] / temperature


def test_hf_sampled_logprobs_equal_the_temperature_scaled_policy():
    tokenizer = load_tokenizer(SMOLLM2)
    model = build_tiny_model(tokenizer, seed=0)
    backend = HFGenerateBackend(tokenizer, max_new_tokens=10, temperature=0.7, top_p=1.0)
    rollout = backend.generate(model, PROMPTS, group_size=3, seed=11)
    logits = recompute_logits(model, rollout, 0.7)
    expected = torch.log_softmax(logits, -1).gather(-1, rollout.completion_ids[..., None]).squeeze(-1)
    expected = expected * rollout.completion_mask
    assert rollout.sampled_logprobs.shape == rollout.completion_ids.shape
    assert rollout.sampled_logprobs.dtype == torch.float32
    assert bool((rollout.sampled_logprobs[rollout.completion_mask == 0] == 0).all())
    # fp32, same weights; only the KV-cache vs full-forward summation order differs (~1e-6).
    torch.testing.assert_close(rollout.sampled_logprobs, expected, atol=1e-4, rtol=0)


def test_hf_sampled_logprobs_include_the_top_p_renormalisation():
    tokenizer = load_tokenizer(SMOLLM2)
    model = build_tiny_model(tokenizer, seed=1)
    top_p = 0.5
    rollout = HFGenerateBackend(tokenizer, max_new_tokens=10, temperature=1.0, top_p=top_p).generate(
        model, PROMPTS, group_size=3, seed=3
    )
    probs = torch.softmax(recompute_logits(model, rollout, 1.0), -1)
    # Nucleus by hand: keep the most probable tokens until their mass reaches top_p
    # (a token is dropped when the mass strictly above it already reaches top_p).
    sorted_probs, _ = probs.sort(-1, descending=True)
    mass_above = sorted_probs.cumsum(-1) - sorted_probs
    nucleus_mass = (sorted_probs * (mass_above < top_p)).sum(-1)
    p_token = probs.gather(-1, rollout.completion_ids[..., None]).squeeze(-1)
    expected = (p_token.log() - nucleus_mass.log()) * rollout.completion_mask
    # The renormalisation is real (not a no-op) on this random model ...
    assert float(((nucleus_mass.log().abs()) * rollout.completion_mask).max()) > 0.05
    # ... and matches up to fp32 summation-order noise (the nucleus boundary is not near a tie here).
    torch.testing.assert_close(rollout.sampled_logprobs, expected, atol=1e-4, rtol=0)


def test_both_backends_share_the_truncating_tokenisation():
    tokenizer = load_tokenizer(SMOLLM2)
    long_prompt = "one two three " * 30
    ids, mask = encode_prompts(tokenizer, ["Hi", long_prompt], max_prompt_tokens=16)
    assert ids.shape == (2, 16) and int(mask[1].sum()) == 16
    full = tokenizer(long_prompt, add_special_tokens=False)["input_ids"]
    assert ids[1].tolist() == full[:16]  # truncated, not silently dropped
    assert mask[0].tolist() == [0] * (16 - int(mask[0].sum())) + [1] * int(mask[0].sum())  # left padding

"""llm/rollout.py: completion masks, reproducible HF sampling, vLLM mapping and its import error."""

import importlib.util

import pytest
import torch

from llm.rollout import HFGenerateBackend, completion_mask
from llm.rollout_vllm import vllm_sampling_kwargs


def test_completion_mask_keeps_tokens_through_first_eos():
    ids = torch.tensor([[5, 6, 2, 9, 2], [5, 6, 7, 8, 9], [2, 4, 4, 4, 4], [5, 3, 6, 2, 2]])
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]])
    # EOS ids 2 and 3 (several stop tokens): row 3 stops at the 3.
    expected[3] = torch.tensor([1, 1, 0, 0, 0])
    assert torch.equal(completion_mask(ids, [2, 3]), expected)


def test_hf_backend_is_reproducible_and_masks_after_eos():
    from llm.model import SMOLLM2, build_tiny_model, load_tokenizer

    tokenizer = load_tokenizer(SMOLLM2)
    model = build_tiny_model(tokenizer, seed=0)
    backend = HFGenerateBackend(tokenizer, max_new_tokens=8, temperature=1.0, top_p=1.0)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = backend.generate(model, ["Hello", "What is 2+2? Answer briefly please"], group_size=3, seed=7)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG stream is untouched
    b = backend.generate(model, ["Hello", "What is 2+2? Answer briefly please"], group_size=3, seed=7)
    c = backend.generate(model, ["Hello", "What is 2+2? Answer briefly please"], group_size=3, seed=8)
    assert torch.equal(a.completion_ids, b.completion_ids) and a.completions == b.completions
    assert not torch.equal(a.completion_ids, c.completion_ids)
    assert a.completion_ids.shape[0] == 6 and a.completion_ids.shape[1] <= 8
    # prompt rows are repeated G times, prompt-major
    assert torch.equal(a.prompt_ids[0], a.prompt_ids[2]) and not torch.equal(a.prompt_ids[0], a.prompt_ids[3])
    # masked positions hold the pad token; the mask is a prefix of ones
    assert bool((a.completion_ids[a.completion_mask == 0] == tokenizer.pad_token_id).all())
    assert bool((a.completion_mask[:, 1:] <= a.completion_mask[:, :-1]).all())


def test_vllm_sampling_kwargs_mapping():
    assert vllm_sampling_kwargs(max_new_tokens=64, temperature=0.7, top_p=0.9, group_size=8, seed=3) == {
        "n": 8,
        "max_tokens": 64,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": -1,
        "seed": 3,
    }


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_says_how_to_install():
    from llm.backends import build_backend

    with pytest.raises(ImportError, match=r"riskrl\[vllm\] on a CUDA machine"):
        build_backend("vllm", tokenizer=None, model_path="x", max_new_tokens=8, temperature=1.0, top_p=1.0)
    with pytest.raises(ValueError, match="rollout_backend='tgi'"):
        build_backend("tgi", tokenizer=None, model_path="x", max_new_tokens=8, temperature=1.0, top_p=1.0)


def test_hf_backend_bf16_rollout_copy_samples_from_synced_bf16_weights():
    """rollout_dtype: the copy's log-probs are the bf16 model's, and sync_weights refreshes the copy."""
    from llm.model import SMOLLM2, build_tiny_model, load_tokenizer

    tokenizer = load_tokenizer(SMOLLM2)
    policy = build_tiny_model(tokenizer, seed=0)
    backend = HFGenerateBackend(tokenizer, max_new_tokens=6, temperature=1.0, top_p=1.0, rollout_dtype="bfloat16")
    backend.sync_weights(policy)
    rollout = backend.generate(policy, ["Hello", "What is 2+2?"], group_size=2, seed=3)
    assert next(policy.parameters()).dtype == torch.float32  # the policy itself is untouched
    assert backend.calls[-1].element_size == 2
    # the copy's own full forward gives the same log-probs (bf16 KV cache vs full forward: ~1e-2 in bf16)
    copy = policy.to(torch.bfloat16)  # same values the backend's copy holds (round to nearest)
    ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], 1)
    mask = torch.cat([rollout.prompt_mask, torch.ones_like(rollout.completion_ids)], 1)
    with torch.no_grad():
        logits = copy(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    logits = logits.float()[:, rollout.prompt_ids.shape[1] - 1 : -1]
    expected = torch.log_softmax(logits, -1).gather(-1, rollout.completion_ids[..., None]).squeeze(-1)
    torch.testing.assert_close(rollout.sampled_logprobs, expected * rollout.completion_mask, atol=0.1, rtol=0)
    # a changed policy reaches the copy only through sync_weights
    policy = policy.float()
    with torch.no_grad():
        policy.model.norm.weight.mul_(3.0)
    assert not torch.equal(backend._copy.model.norm.weight.float(), policy.model.norm.weight)
    backend.sync_weights(policy)
    assert torch.equal(backend._copy.model.norm.weight.float(), policy.model.norm.weight)
    with pytest.raises(ValueError, match="rollout_dtype"):
        HFGenerateBackend(tokenizer, max_new_tokens=6, temperature=1.0, top_p=1.0, rollout_dtype="bf17")


def test_recorder_gathers_each_sampled_token_and_keeps_one_step_of_scores():
    from llm.rollout import SampledLogprobRecorder

    g = torch.Generator().manual_seed(0)
    steps = [torch.randn(3, 11, generator=g) for _ in range(4)]
    sampled = torch.randint(0, 11, (3, 4), generator=g)
    recorder = SampledLogprobRecorder()
    ids = torch.zeros(3, 2, dtype=torch.long)  # the prompt
    for t, scores in enumerate(steps):
        assert recorder(ids, scores) is scores  # a pass-through processor
        ids = torch.cat([ids, sampled[:, t : t + 1]], 1)
        assert len(recorder.logprobs) == t  # step t's token is gathered when step t + 1 arrives
    got = recorder.finish(sampled)
    expected = torch.stack([torch.log_softmax(s, -1)[torch.arange(3), sampled[:, t]] for t, s in enumerate(steps)], 1)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)  # fp32 logsumexp vs log_softmax
    assert recorder._scores is None  # nothing (N, V) survives the call

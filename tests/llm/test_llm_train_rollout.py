"""llm/rollout.py: completion masks, reproducible HF sampling, vLLM mapping and its import error."""

import importlib.util

import pytest
import torch

from llm.rollout import HFGenerateBackend, completion_mask, vllm_sampling_kwargs


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
    from llm.rollout import build_backend

    with pytest.raises(ImportError, match=r"riskrl\[vllm\] on a CUDA machine"):
        build_backend("vllm", tokenizer=None, model_path="x", max_new_tokens=8, temperature=1.0, top_p=1.0)
    with pytest.raises(ValueError, match="rollout_backend='tgi'"):
        build_backend("tgi", tokenizer=None, model_path="x", max_new_tokens=8, temperature=1.0, top_p=1.0)

"""The rollout backend chosen by name (``rollout_backend`` in the config): one ``if`` per backend, no registry
(docs/extending.md says where a new backend goes)."""

from __future__ import annotations

from llm.rollout import HFGenerateBackend
from llm.rollout_vllm import VLLMBackend

__all__ = ["build_backend"]


def build_backend(
    name: str,
    tokenizer,
    model_path: str | None,
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    max_prompt_tokens: int | None = None,
    seed: int = 0,
    vllm_gpu_memory_utilization: float = 0.3,
    dtype: str = "float32",
):
    if name == "hf":
        return HFGenerateBackend(
            tokenizer,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            max_prompt_tokens=max_prompt_tokens,
        )
    if name == "vllm":
        return VLLMBackend(
            model_path,
            tokenizer,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            max_prompt_tokens=max_prompt_tokens,
            gpu_memory_utilization=vllm_gpu_memory_utilization,
            seed=seed,
            dtype=dtype,
        )
    raise ValueError(f"rollout_backend={name!r} must be 'hf' or 'vllm'")

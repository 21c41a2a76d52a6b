"""Rollout backends: turn prompts into G sampled completions each.

Both backends return a :class:`Rollout` whose tensors are laid out prompt-major:
row ``p * G + g`` is completion ``g`` of prompt ``p``.

* :class:`HFGenerateBackend` — ``model.generate`` (CPU or GPU), left padding,
  seeded per call so a step's samples are reproducible and independent of the
  training RNG stream.
* :class:`VLLMBackend` — colocated vLLM engine whose weights are overwritten
  from the training model before every generation. UNTESTED ON CPU: vLLM needs
  CUDA, so only its import error and sampling-parameter mapping are unit-tested.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["Rollout", "HFGenerateBackend", "VLLMBackend", "build_backend", "completion_mask", "vllm_sampling_kwargs"]


@dataclass
class Rollout:
    prompt_ids: torch.Tensor        # (N, Lp) left-padded, N = prompts * G
    prompt_mask: torch.Tensor       # (N, Lp) 1 on real prompt tokens
    completion_ids: torch.Tensor    # (N, Lc) right-padded with pad_token_id
    completion_mask: torch.Tensor   # (N, Lc) 1 up to and including the first EOS
    completions: list[str]          # decoded completions, special tokens removed

    @property
    def completion_lengths(self) -> torch.Tensor:
        return self.completion_mask.sum(-1)


def completion_mask(completion_ids: torch.Tensor, eos_token_ids: list[int]) -> torch.Tensor:
    """1 for every token up to and including the first EOS, 0 after it (the padding generate appends)."""
    is_eos = torch.zeros_like(completion_ids, dtype=torch.bool)
    for eos in eos_token_ids:
        is_eos |= completion_ids == eos
    # A token is kept when no EOS occurred strictly before it.
    eos_before = torch.cumsum(is_eos.long(), dim=-1) - is_eos.long()
    return (eos_before == 0).long()


def _eos_ids(tokenizer, model=None) -> list[int]:
    ids = []
    sources = [getattr(tokenizer, "eos_token_id", None)]
    if model is not None and getattr(model, "generation_config", None) is not None:
        sources.append(model.generation_config.eos_token_id)
    for src in sources:
        if src is None:
            continue
        ids.extend(src if isinstance(src, (list, tuple)) else [src])
    return sorted(set(int(i) for i in ids))


class HFGenerateBackend:
    """Sampling with ``transformers`` ``generate`` on the training model itself (no weight copy)."""

    def __init__(self, tokenizer, *, max_new_tokens: int, temperature: float, top_p: float, max_prompt_tokens: int | None = None):
        self.tokenizer = tokenizer
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_prompt_tokens = max_prompt_tokens

    def sync_weights(self, model) -> None:
        """Nothing to do: generation uses the live training model."""

    @torch.inference_mode()
    def generate(self, model, prompts: list[str], group_size: int, seed: int) -> Rollout:
        tok = self.tokenizer
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False,
                  truncation=self.max_prompt_tokens is not None, max_length=self.max_prompt_tokens)
        device = next(model.parameters()).device
        prompt_ids = enc["input_ids"].repeat_interleave(group_size, dim=0).to(device)
        prompt_mask = enc["attention_mask"].repeat_interleave(group_size, dim=0).to(device)
        eos = _eos_ids(tok, model)
        was_training = model.training
        model.eval()
        # A private RNG stream per call: samples depend only on (seed, weights), and the
        # global torch RNG that dropout/shuffling use is left exactly as it was.
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            out = model.generate(
                input_ids=prompt_ids,
                attention_mask=prompt_mask,
                do_sample=True,
                temperature=self.temperature,
                top_p=self.top_p,
                top_k=0,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=tok.pad_token_id,
                eos_token_id=eos,
            )
        model.train(was_training)
        completion_ids = out[:, prompt_ids.shape[1]:]
        if completion_ids.shape[1] == 0:  # max_new_tokens reached nothing (cannot happen with >= 1)
            raise RuntimeError("generate returned no new tokens")
        mask = completion_mask(completion_ids, eos).to(device)
        completion_ids = completion_ids.masked_fill(mask == 0, tok.pad_token_id)
        texts = tok.batch_decode(completion_ids, skip_special_tokens=True)
        return Rollout(prompt_ids, prompt_mask, completion_ids, mask, texts)


def vllm_sampling_kwargs(*, max_new_tokens: int, temperature: float, top_p: float, group_size: int, seed: int) -> dict:
    """Our sampling settings in ``vllm.SamplingParams`` terms (n samples per prompt, no top-k)."""
    return {
        "n": int(group_size),
        "max_tokens": int(max_new_tokens),
        "temperature": float(temperature),
        "top_p": float(top_p),
        "top_k": -1,
        "seed": int(seed),
    }


class VLLMBackend:
    """Colocated vLLM: one engine per process sharing the GPU with training.

    UNTESTED ON CPU. Weights are pushed from the training model into the engine
    before each generation (``sync_weights``), following the colocate pattern
    of TRL: with ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` the engine core lives in
    this process and its model is reachable through the driver worker.
    """

    def __init__(self, model_path: str, tokenizer, *, max_new_tokens: int, temperature: float, top_p: float,
                 gpu_memory_utilization: float = 0.3, max_model_len: int | None = None, seed: int = 0):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as err:
            raise ImportError(
                "rollout_backend='vllm' needs vLLM, which is not installed: "
                "install riskrl[vllm] on a CUDA machine (pip install 'riskrl[vllm]'), or use rollout_backend='hf'"
            ) from err
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self._sampling_params = SamplingParams
        self.tokenizer = tokenizer
        self.max_new_tokens, self.temperature, self.top_p = int(max_new_tokens), float(temperature), float(top_p)
        self.llm = LLM(model=model_path, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                       seed=seed, enable_prefix_caching=True, distributed_executor_backend="external_launcher")

    # Where the in-process engine keeps its torch model differs across vLLM versions.
    _MODEL_PATHS = (
        "llm_engine.model_executor.driver_worker.worker.model_runner.model",   # V1, in-process engine core
        "llm_engine.engine_core.model_executor.driver_worker.worker.model_runner.model",
        "llm_engine.model_executor.driver_worker.model_runner.model",          # V0
    )

    def _engine_model(self):
        for path in self._MODEL_PATHS:
            obj = self.llm
            try:
                for attr in path.split("."):
                    obj = getattr(obj, attr)
            except AttributeError:
                continue
            return obj
        raise RuntimeError(
            "cannot reach the vLLM engine's model to sync weights (tried "
            f"{', '.join(self._MODEL_PATHS)}); is VLLM_ENABLE_V1_MULTIPROCESSING=0 set before vLLM starts?")

    @torch.no_grad()
    def sync_weights(self, model) -> None:
        unwrapped = getattr(model, "module", model)
        self._engine_model().load_weights(unwrapped.state_dict().items())
        if hasattr(self.llm, "reset_prefix_cache"):
            self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights

    def generate(self, model, prompts: list[str], group_size: int, seed: int) -> Rollout:
        tok = self.tokenizer
        params = self._sampling_params(**vllm_sampling_kwargs(
            max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
            group_size=group_size, seed=seed))
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        device = next(model.parameters()).device
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        prompt_ids = enc["input_ids"].repeat_interleave(group_size, 0).to(device)
        prompt_mask = enc["attention_mask"].repeat_interleave(group_size, 0).to(device)
        seqs = [list(c.token_ids) for out in outputs for c in out.outputs]
        width = max(1, max(len(s) for s in seqs))
        completion_ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
        for i, s in enumerate(seqs):
            completion_ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask = completion_mask(completion_ids, _eos_ids(tok))
        lengths = torch.tensor([len(s) for s in seqs])
        mask = mask * (torch.arange(width)[None, :] < lengths[:, None]).long()
        texts = [c.text for out in outputs for c in out.outputs]
        return Rollout(prompt_ids, prompt_mask, completion_ids.to(device), mask.to(device), texts)


def build_backend(name: str, tokenizer, model_path: str | None, *, max_new_tokens: int, temperature: float, top_p: float,
                  max_prompt_tokens: int | None = None, seed: int = 0, vllm_gpu_memory_utilization: float = 0.3):
    if name == "hf":
        return HFGenerateBackend(tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                 max_prompt_tokens=max_prompt_tokens)
    if name == "vllm":
        return VLLMBackend(model_path, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                           gpu_memory_utilization=vllm_gpu_memory_utilization, seed=seed)
    raise ValueError(f"rollout_backend={name!r} must be 'hf' or 'vllm'")

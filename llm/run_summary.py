"""What the trainer prints and logs about the run as a whole: the end-of-run summary, the evaluation it
suggests, and the peak memory metric."""

from __future__ import annotations

import resource
from pathlib import Path

import torch

from llm.config import TrainConfig

__all__ = ["EVAL_TOKEN_BUDGET", "heldout_eval_command", "peak_memory_gb", "run_summary"]

# Generated-token budget of the suggested evaluation: SmolLM2-135M generates ~100 tokens/s on 2 cores
# (batched), so 4096 tokens take ~40 s plus ~15 s of loading: well inside 2 minutes.
EVAL_TOKEN_BUDGET = 4096
_HELDOUT_SPLIT = {"gsm8k": "gsm8k_test", "gsm8k_train": "gsm8k_test"}


def heldout_eval_command(cfg: TrainConfig, n: int = 4) -> str:
    """The ``llm.evaluate`` command the summary suggests: the training task's held-out prompts, small and quick.

    Held out: a benchmark's test split (GSM8K train -> test), or for a generated task
    (reasoning_gym) the same generator with another seed. The question count keeps
    the generated tokens within ``EVAL_TOKEN_BUDGET`` (at least 4 questions).
    """
    import shlex

    dataset, seed = _HELDOUT_SPLIT.get(cfg.dataset.strip().lower(), cfg.dataset), cfg.seed
    if cfg.dataset.startswith("reasoning_gym:"):
        seed = cfg.seed + 1000  # another generator seed: prompts not drawn in training
    limit = max(4, min(16, EVAL_TOKEN_BUDGET // (n * cfg.max_new_tokens)))
    return (
        f"python -m llm.evaluate --model {shlex.quote(str(cfg.output_dir))} --datasets {shlex.quote(dataset)} "
        f"--limit {limit} --n {n} --k 1,{n} --max-new-tokens {cfg.max_new_tokens} --temperature {cfg.temperature} "
        f"--top-p {cfg.top_p} --seed {seed}"
    )


def run_summary(cfg: TrainConfig, first: dict | None, last: dict, seconds: float, checkpoint: Path | None) -> str:
    """What a user wants to read when the run ends: progress, where the weights are, how to evaluate them."""
    if not last:
        return "[riskrl] no step ran"
    lines = [
        f"[riskrl] done: step {last['step']}/{cfg.steps} in {seconds / 60:.1f} min; "
        f"reward_mean {first['reward_mean']:.3f} (step {first['step']}) -> {last['reward_mean']:.3f} "
        f"(step {last['step']}); entropy {last['entropy']:.3f}",
        f"[riskrl] checkpoint: {checkpoint}"
        + (f"; weights: {Path(cfg.output_dir) / 'model'}" if cfg.save_model else ""),
        f"[riskrl] evaluate (held-out prompts of the training task, about a minute on 2 cores): "
        f"{heldout_eval_command(cfg)}",
        f"[riskrl] continue: accelerate launch llm/train.py --output_dir {cfg.output_dir} --resume latest "
        f"--steps {cfg.steps * 2}",
    ]
    return "\n".join(lines)


def peak_memory_gb(accelerator) -> float:
    """Largest over ranks of: peak accelerator memory allocated this step (CUDA, reset after reading) or,
    on CPU, the process's peak resident set size since it started (the kernel keeps no per-step peak)."""
    if accelerator.device.type == "cuda":
        used = torch.cuda.max_memory_allocated(accelerator.device)
        torch.cuda.reset_peak_memory_stats(accelerator.device)
    else:
        used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return float(accelerator.gather(torch.tensor([used / 2**30], device=accelerator.device, dtype=torch.float64)).max())

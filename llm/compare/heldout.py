"""Held-out evaluation for ``llm.compare``: n samples per prompt, pass@k with bootstrap bands, entropy.

Every policy (the base model and each trained one) is sampled on the SAME
held-out prompts with the SAME per-chunk seeds (common random numbers), so
differences between policies are paired over prompts:

* ``correct[i, j]`` - 0/1 score of sample j on prompt i (the accuracy reward);
* pass@k per prompt - the unbiased estimator 1 − C(n−c, k)/C(n, k)
  (``theory.passk.pass_at_k``), averaged over prompts;
* bootstrap - prompts are resampled with replacement; the same resampled
  index sets are reused for every policy, so the interval of a difference
  between two policies is the paired bootstrap interval;
* hierarchical bootstrap - for methods trained with several seeds, each
  resample first draws every method's training seeds with replacement, then
  the held-out prompts (one draw shared by both methods), so the interval of a
  difference covers training randomness and prompt sampling together;
* entropy - mean token entropy of the policy's next-token distribution
  (at the sampling temperature) over its own sampled tokens, per prompt.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from theory.passk import pass_at_k

__all__ = [
    "heldout_examples",
    "sample_policy",
    "passk_per_prompt",
    "bootstrap_indices",
    "bootstrap_mean",
    "passk_table",
    "paired_difference",
    "hierarchical_difference",
]


def heldout_examples(spec: str, count: int, seed: int, exclude_questions: set[str]):
    """``count`` prompts of ``spec`` generated with ``seed`` whose question text is in no training set.

    Small arithmetic tasks repeat questions across generator seeds, so overlap is
    removed by text, not by seed; too few distinct prompts is a ValueError.
    """
    from llm.data import load_dataset_examples

    if count < 1:
        raise ValueError(f"eval.num_prompts={count} must be >= 1")
    pool = load_dataset_examples(spec, limit=None, seed=seed)
    chosen, seen = [], set()
    for example in pool:
        if example.question in exclude_questions or example.question in seen:
            continue
        seen.add(example.question)
        chosen.append(example)
        if len(chosen) == count:
            return chosen
    raise ValueError(
        f"eval.num_prompts={count}: only {len(chosen)} held-out prompts of {spec!r} (seed {seed}) "
        "are distinct and absent from the training prompts; raise the dataset size or lower num_prompts"
    )


@torch.no_grad()
def _token_entropy(model, rollout, rows: torch.Tensor, temperature: float, rows_per_forward: int) -> torch.Tensor:
    """Mean token entropy of the given completion rows: H(softmax(logits / T)) over each completion's
    own tokens, from the trainer's forward pass (``llm.loss.completion_logprobs``)."""
    from llm.loss import completion_logprobs

    out = []
    with torch.no_grad():
        for start in range(0, len(rows), rows_per_forward):
            rows_now = rows[start : start + rows_per_forward]
            completion_mask = rollout.completion_mask[rows_now]
            _, entropy = completion_logprobs(
                model,
                rollout.prompt_ids[rows_now],
                rollout.prompt_mask[rows_now],
                rollout.completion_ids[rows_now],
                completion_mask,
                temperature,
                with_entropy=True,
            )
            mask = completion_mask.to(entropy.dtype)
            out.append((entropy * mask).sum(-1) / mask.sum(-1).clamp(min=1.0))
    return torch.cat(out)


def sample_policy(
    model,
    tokenizer,
    examples,
    *,
    n: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    system_prompt: str,
    reward_pipeline,
    accuracy_reward: str,
    seed: int,
    prompts_per_call: int,
    entropy_samples: int = 0,
    label: str = "eval",
) -> dict:
    """Sample n completions per example; returns correct (E, n), entropy (E,), mean length, and a few samples.

    Entropy needs one more forward pass over the samples; ``entropy_samples`` = m > 0
    uses the first m of the n samples of each prompt (an unbiased estimate, as the
    samples are i.i.d.), 0 uses all of them.
    """
    from llm.data import format_prompt
    from llm.rollout import HFGenerateBackend

    backend = HFGenerateBackend(tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
    correct = np.zeros((len(examples), n))
    entropy = np.zeros(len(examples))
    lengths, shown = [], []
    model.eval()
    bar = tqdm(range(0, len(examples), prompts_per_call), desc=label, unit="chunk", dynamic_ncols=True)
    for chunk_index, start in enumerate(bar):
        chunk = examples[start : start + prompts_per_call]
        prompts = [format_prompt(tokenizer, e.question, system_prompt) for e in chunk]
        # Seed by chunk position only: every policy sees the same random stream (paired comparison).
        rollout = backend.generate(model, prompts, n, seed=seed + chunk_index)
        flat_examples = [e for e in chunk for _ in range(n)]
        _, per_function, _ = reward_pipeline(rollout.completions, flat_examples)
        scores = per_function[accuracy_reward].double().view(len(chunk), n).numpy()
        if not np.isin(scores, (0.0, 1.0)).all():
            raise ValueError(f"accuracy reward {accuracy_reward!r} must score 0 or 1 for pass@k")
        correct[start : start + len(chunk)] = scores
        m = n if entropy_samples <= 0 else min(entropy_samples, n)
        rows = (torch.arange(len(chunk)).unsqueeze(1) * n + torch.arange(m)).reshape(-1)
        row_entropy = _token_entropy(model, rollout, rows, temperature, rows_per_forward=32).view(len(chunk), m)
        entropy[start : start + len(chunk)] = row_entropy.mean(-1).numpy()
        lengths.append(rollout.completion_lengths.double().mean().item())
        if len(shown) < 3:
            shown.append(
                {
                    "question": chunk[0].question,
                    "answer": chunk[0].answer,
                    "completion": rollout.completions[0],
                    "correct": float(scores[0, 0]),
                }
            )
        bar.set_postfix(acc=f"{correct[: start + len(chunk)].mean():.3f}")
    return {"correct": correct, "entropy": entropy, "completion_length": float(np.mean(lengths)), "samples": shown}


def passk_per_prompt(correct: np.ndarray, ks) -> np.ndarray:
    """(E, K) unbiased pass@k of every prompt for every k (each k <= n)."""
    correct = np.asarray(correct, dtype=float)
    n = correct.shape[1]
    c = torch.as_tensor(correct.sum(1))
    return np.stack([pass_at_k(torch.full_like(c, float(n)), c, int(k)).numpy() for k in ks], axis=1)


def bootstrap_indices(num_prompts: int, resamples: int, seed: int) -> np.ndarray:
    """(B, E) prompt indices drawn with replacement; shared by all policies (paired intervals)."""
    if resamples < 1:
        raise ValueError(f"eval.bootstrap={resamples} must be >= 1")
    return np.random.default_rng(seed).integers(0, num_prompts, size=(resamples, num_prompts))


def bootstrap_mean(
    values: np.ndarray, indices: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over prompts (axis 0) and its percentile bootstrap interval: (mean, low, high)."""
    values = np.asarray(values, dtype=float)
    means = values[indices].mean(axis=1)  # (B, ...)
    tail = (1.0 - level) / 2 * 100
    return values.mean(axis=0), np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)


def passk_table(correct: np.ndarray, ks, indices: np.ndarray) -> list[dict]:
    """Rows {k, pass_at_k, ci_low, ci_high} for one policy."""
    mean, low, high = bootstrap_mean(passk_per_prompt(correct, ks), indices)
    return [
        {"k": int(k), "pass_at_k": float(m), "ci_low": float(lo), "ci_high": float(hi)}
        for k, m, lo, hi in zip(ks, mean, low, high)
    ]


def paired_difference(values_a: np.ndarray, values_b: np.ndarray, indices: np.ndarray) -> tuple[float, float, float]:
    """mean(a − b) over prompts with its paired bootstrap interval (same prompts resampled for both)."""
    mean, low, high = bootstrap_mean(np.asarray(values_a, float) - np.asarray(values_b, float), indices)
    return float(mean), float(low), float(high)


def hierarchical_difference(
    values_a: np.ndarray, values_b: np.ndarray, resamples: int, seed: int, level: float = 0.95
) -> tuple[float, float, float]:
    """mean(a) − mean(b) over seeds and prompts, with a two-level (seeds, then prompts) bootstrap interval.

    ``values_a`` (Sa, E) and ``values_b`` (Sb, E): one row per training seed of
    each method, one column per held-out prompt (the same prompts for both). Each
    of the ``resamples`` draws picks Sa rows of a and Sb rows of b with
    replacement (the seeds of the two methods are independent trainings), then E
    prompt columns with replacement, shared by a and b (prompts are paired), and
    takes the difference of the means. Percentile interval at ``level``.
    """
    a, b = np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"values must be (seeds, prompts) with the same prompts: got {a.shape} and {b.shape}")
    if resamples < 1:
        raise ValueError(f"eval.bootstrap={resamples} must be >= 1")
    rng = np.random.default_rng(seed)
    seeds_a = rng.integers(0, a.shape[0], size=(resamples, a.shape[0]))
    seeds_b = rng.integers(0, b.shape[0], size=(resamples, b.shape[0]))
    prompts = rng.integers(0, a.shape[1], size=(resamples, a.shape[1]))
    per_prompt = a[seeds_a].mean(axis=1) - b[seeds_b].mean(axis=1)  # (B, E): seed-averaged difference per prompt
    draws = np.take_along_axis(per_prompt, prompts, axis=1).mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    estimate = float(a.mean() - b.mean())
    return estimate, float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))

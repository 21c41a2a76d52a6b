"""Sampling evaluation: pass@k, avg@n and mean reward on math benchmarks.

    python -m llm.evaluate --model smollm2-135m-instruct --datasets gsm8k_test --limit 16 \\
        --n 4 --k 1,2,4 --max-new-tokens 256 --out outputs/eval/smollm2

For every question, n completions are sampled; each is scored by the
accuracy reward (default ``math_verify``: math-verify on the last \\boxed{}
answer; any 0/1 reward by name or ``module:function``). Per dataset:

* ``pass@k`` - mean over questions of the unbiased estimator
  1 - C(n-c, k)/C(n, k) (``theory.passk.pass_at_k``), c = correct samples;
* ``avg@n`` - mean accuracy over all n samples (the unbiased estimate of
  avg@k for every k <= n, so one number covers them all);
* ``mean_reward`` - mean total reward of the ``--rewards`` pipeline (default:
  the accuracy reward alone, so it equals avg@n unless other rewards are added);
* ``boxed_rate`` - fraction of completions that contain a \\boxed{} answer.

``--model`` may be a training run folder (``output_dir`` of ``llm/train.py``):
its exported ``model/`` (or the latest checkpoint's) is evaluated, and unless
``--accuracy-reward`` / ``--rewards`` / ``--system-prompt`` are given, the
run's own rewards (accuracy = the one with the largest weight) and system
prompt are used, so a run is scored by what it was trained on.

Outputs: ``results.json`` (config, metrics, timing), ``results.md`` (the
table, also printed) and ``samples.jsonl`` (every completion with its score).
``evaluate()`` takes the generator as an argument, so tests (or another
serving stack) can plug in any ``generate_fn(examples, n) -> n completions each``.

Generation is batched across questions: each call samples ``--batch-size``
questions x n completions at once (transformers ``generate`` on padded
prompts, or one vLLM ``generate`` call). ``--backend auto`` (the default) uses
vLLM when it is installed and transformers otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from theory.checks import check_choice, check_finite_number, check_int, check_k, check_positive, check_probability
from theory.passk import pass_at_k

from .data import DEFAULT_SYSTEM_PROMPT, Example, load_dataset_examples
from .eval_generators import HFGenerator, VLLMGenerator
from .model import SMOLLM2
from .rewards import RewardPipeline, count_boxed

__all__ = [
    "EvalConfig",
    "GenerateFn",
    "HFGenerator",
    "VLLMGenerator",
    "evaluate",
    "evaluate_dataset",
    "format_table",
    "parse_args",
    "main",
    "resolve_backend",
]

GenerateFn = Callable[[list[Example], int], list[list[str]]]


@dataclass
class EvalConfig:
    model: str = SMOLLM2
    datasets: list[str] = field(default_factory=lambda: ["math500", "aime24", "amc23", "gsm8k_test"])
    k: list[int] = field(default_factory=lambda: [1, 4, 8])
    n: int = 8
    max_new_tokens: int = 512
    limit: int | None = None
    out: str | None = None
    backend: str = "auto"  # auto: vllm when it is installed, else hf (both batch across questions)
    temperature: float = 0.6
    top_p: float = 0.95
    batch_size: int = 8  # questions per generate call (batch_size * n sequences)
    seed: int = 0
    dtype: str = "float32"
    device: str | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    accuracy_reward: str = "math_verify"  # its 0/1 scores define "correct" for pass@k and avg@n
    rewards: list[tuple[str, float]] | None = None  # None: [(accuracy_reward, 1.0)]
    reward_workers: int = 2
    reward_timeout_s: float = 5.0

    def validate(self) -> None:
        if not self.datasets:
            raise ValueError("datasets must name at least one dataset")
        for name in ("n", "max_new_tokens", "batch_size"):
            check_int(name, getattr(self, name), 1)
        if self.limit is not None:
            check_int("limit", self.limit, 1)
        if not self.k:
            raise ValueError("k must list at least one value")
        for k in self.k:
            check_k(k, self.n)
        check_choice("backend", self.backend, ("auto", "hf", "vllm"))
        check_finite_number("temperature", self.temperature)
        check_positive("temperature", self.temperature)  # pass@k needs sampled completions
        check_probability("top_p", self.top_p, open_low=True)
        if not isinstance(getattr(torch, self.dtype, None), torch.dtype):
            raise ValueError(f"dtype={self.dtype!r} is not a torch dtype name (float32, bfloat16, float16)")
        if self.rewards is None:
            self.rewards = [(self.accuracy_reward, 1.0)]
        if self.accuracy_reward not in [name for name, _ in self.rewards]:
            raise ValueError(
                f"rewards must include accuracy_reward={self.accuracy_reward!r}: pass@k is computed from its 0/1 scores"
            )


# ----------------------------------------------------------------------------- metrics


def evaluate_dataset(
    name: str,
    examples: list[Example],
    generate_fn: GenerateFn,
    *,
    n: int,
    ks: Sequence[int],
    reward_pipeline: RewardPipeline,
    batch_size: int = 8,
    accuracy_reward: str = "math_verify",
) -> tuple[dict, list[dict]]:
    """(metrics, per-sample records) for one dataset; ``accuracy_reward`` must score 0 or 1."""
    correct = torch.zeros(len(examples), n, dtype=torch.float64)
    total_reward = torch.zeros(len(examples), n, dtype=torch.float64)
    records: list[dict] = []
    error_totals: dict[str, int] = {}
    function_sums: dict[str, float] = {}
    boxed = 0
    timing = {"generate_s": 0.0, "reward_s": 0.0}
    progress = tqdm(total=len(examples), desc=f"eval {name}", unit="q", dynamic_ncols=True)
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        began = time.perf_counter()
        samples = generate_fn(chunk, n)
        timing["generate_s"] += time.perf_counter() - began
        if len(samples) != len(chunk) or any(len(s) != n for s in samples):
            raise ValueError(f"generate_fn must return {n} completions for each of the {len(chunk)} examples")
        flat_completions = [c for group in samples for c in group]
        flat_examples = [e for e in chunk for _ in range(n)]
        began = time.perf_counter()
        total, per_function, errors = reward_pipeline(flat_completions, flat_examples)
        timing["reward_s"] += time.perf_counter() - began
        for key, value in errors.items():
            error_totals[key] = error_totals.get(key, 0) + value
        rows = slice(start, start + len(chunk))
        correct[rows] = per_function[accuracy_reward].to(torch.float64).view(len(chunk), n)
        for key, values in per_function.items():
            function_sums[key] = function_sums.get(key, 0.0) + values.to(torch.float64).sum().item()
        total_reward[rows] = total.to(torch.float64).view(len(chunk), n)
        for index, (example, completion) in enumerate(zip(flat_examples, flat_completions)):
            has_box = count_boxed(completion) > 0
            boxed += has_box
            records.append(
                {
                    "dataset": name,
                    "id": example.id,
                    "sample": index % n,
                    "answer": example.answer,
                    "correct": float(per_function[accuracy_reward][index]),
                    "reward": float(total[index]),
                    "rewards": {key: float(values[index]) for key, values in per_function.items()},
                    "boxed": has_box,
                    "completion": completion,
                }
            )
        progress.update(len(chunk))
        progress.set_postfix(acc=f"{correct[: start + len(chunk)].mean().item():.3f}")
    progress.close()
    if not bool(((correct == 0) | (correct == 1)).all()):
        raise ValueError(f"accuracy reward {accuracy_reward!r} must score 0 or 1 for pass@k")
    num_correct = correct.sum(-1)
    metrics: dict = {"num_questions": len(examples), "n": n}
    for k in ks:
        metrics[f"pass@{k}"] = pass_at_k(torch.full_like(num_correct, n), num_correct, k).mean().item()
    metrics[f"avg@{n}"] = correct.mean().item()
    metrics["mean_reward"] = total_reward.mean().item()
    metrics["boxed_rate"] = boxed / correct.numel()
    metrics["reward_means"] = {key: value / correct.numel() for key, value in function_sums.items()}
    metrics["reward_errors"] = error_totals
    metrics["timing"] = timing
    return metrics, records


def evaluate(
    datasets: dict[str, list[Example]],
    generate_fn: GenerateFn,
    *,
    n: int,
    ks: Sequence[int],
    reward_pipeline: RewardPipeline,
    batch_size: int = 8,
    accuracy_reward: str = "math_verify",
) -> tuple[dict[str, dict], list[dict]]:
    """Metrics per dataset name, and every sample's record."""
    results, records = {}, []
    for name, examples in datasets.items():
        results[name], dataset_records = evaluate_dataset(
            name,
            examples,
            generate_fn,
            n=n,
            ks=ks,
            reward_pipeline=reward_pipeline,
            batch_size=batch_size,
            accuracy_reward=accuracy_reward,
        )
        records.extend(dataset_records)
    return results, records


def format_table(results: dict[str, dict], ks: Sequence[int], n: int) -> str:
    """Markdown table: one row per dataset."""
    columns = [f"pass@{k}" for k in ks] + [f"avg@{n}", "mean_reward", "boxed_rate"]
    lines = [
        "| dataset | questions | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for name, metrics in results.items():
        cells = " | ".join(f"{metrics[column]:.3f}" for column in columns)
        lines.append(f"| {name} | {metrics['num_questions']} | {cells} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI


def _int_list(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _reward_list(text: str) -> list[tuple[str, float]]:
    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.rpartition("=")
        if not name:
            name, weight = weight, "1.0"
        try:
            specs.append((name, float(weight)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"reward {item!r}: weight {weight!r} is not a number") from None
    return specs


def run_folder(path: str) -> tuple[str, dict] | None:
    """(weights directory, training config) when ``path`` is a training run folder, else None."""
    import yaml

    from .checkpoint import resolve_checkpoint

    root = Path(path)
    if not (root / "config.yaml").is_file():
        return None
    train_config = yaml.safe_load((root / "config.yaml").read_text()) or {}
    if (root / "model").is_dir():
        return str(root / "model"), train_config
    try:
        return str(resolve_checkpoint("latest", root / "checkpoints") / "model"), train_config
    except FileNotFoundError:
        raise ValueError(f"--model {path}: a run folder without model/ or a finished checkpoint") from None


def parse_args(argv: Sequence[str] | None = None) -> EvalConfig:
    defaults = EvalConfig()
    parser = argparse.ArgumentParser(prog="python -m llm.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=defaults.model, help="alias, local directory, .gguf file or hub id")
    parser.add_argument(
        "--datasets",
        default=",".join(defaults.datasets),
        help="comma-separated specs: math500, aime24, amc23, gsm8k_test, a .jsonl path, fixture:<name>",
    )
    parser.add_argument("--k", type=_int_list, default=defaults.k, help="comma-separated k for pass@k (each <= n)")
    parser.add_argument("--n", type=int, default=defaults.n, help="samples per question")
    parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens)
    parser.add_argument("--limit", type=int, default=None, help="first N questions of each dataset")
    parser.add_argument("--out", default=None, help="output directory (default outputs/eval/<time>)")
    parser.add_argument(
        "--backend",
        choices=["auto", "hf", "vllm"],
        default=defaults.backend,
        help="auto (default): vLLM when it is installed, else transformers generate",
    )
    parser.add_argument("--temperature", type=float, default=defaults.temperature)
    parser.add_argument("--top-p", type=float, default=defaults.top_p)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="questions per generate call")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--dtype", default=defaults.dtype)
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--system-prompt",
        default=None,
        help="default: the run's (for a run folder), else llm.data.DEFAULT_SYSTEM_PROMPT",
    )
    parser.add_argument(
        "--accuracy-reward",
        default=None,
        help="reward whose 0/1 scores count as correct (built-in name or module:function); "
        f"default: the run's largest-weight reward (for a run folder), else {defaults.accuracy_reward}",
    )
    parser.add_argument(
        "--rewards",
        type=_reward_list,
        default=None,
        help="name=weight,... for mean_reward (must include the accuracy reward; default: the "
        "run's rewards for a run folder, else the accuracy reward alone), e.g. math_verify=1,format=0.1",
    )
    parser.add_argument("--reward-workers", type=int, default=defaults.reward_workers)
    parser.add_argument("--reward-timeout-s", type=float, default=defaults.reward_timeout_s)
    args = parser.parse_args(argv)
    found = run_folder(args.model)
    if found is not None:
        args.model, trained = found
        run_rewards = [(str(name), float(weight)) for name, weight in trained.get("rewards") or []]
        if args.rewards is None and args.accuracy_reward is None and run_rewards:
            args.rewards = run_rewards
            args.accuracy_reward = max(run_rewards, key=lambda spec: spec[1])[0]  # first of the largest weight
        if args.system_prompt is None and trained.get("system_prompt"):
            args.system_prompt = trained["system_prompt"]
    if args.accuracy_reward is None:
        args.accuracy_reward = defaults.accuracy_reward
    if args.system_prompt is None:
        args.system_prompt = defaults.system_prompt
    config = EvalConfig(**{**vars(args), "datasets": [d.strip() for d in args.datasets.split(",") if d.strip()]})
    config.validate()
    return config


def main(argv: Sequence[str] | None = None, generate_fn: GenerateFn | None = None) -> dict[str, dict]:
    """Runs the CLI; ``generate_fn`` replaces model loading and generation (tests)."""
    config = parse_args(argv)
    config.backend = resolve_backend(config.backend)
    if config.backend == "vllm" and generate_fn is None and importlib.util.find_spec("vllm") is None:
        raise ImportError(
            "--backend vllm needs vLLM, which is not installed: pip install 'riskrl[vllm]' on a CUDA machine, "
            "or use --backend hf"
        )
    # every input is checked (datasets, rewards, output dir) before the model is loaded
    datasets = {spec: load_dataset_examples(spec, limit=config.limit, seed=config.seed) for spec in config.datasets}
    out_dir = Path(config.out or os.path.join("outputs", "eval", time.strftime("%Y%m%d-%H%M%S")))
    out_dir.mkdir(parents=True, exist_ok=True)
    with RewardPipeline(
        config.rewards, num_workers=config.reward_workers, timeout_s=config.reward_timeout_s
    ) as rewards:
        started = time.perf_counter()
        if generate_fn is None:
            generate_fn = _build_generator(config)
        load_s = time.perf_counter() - started
        results, records = evaluate(
            datasets,
            generate_fn,
            n=config.n,
            ks=config.k,
            reward_pipeline=rewards,
            batch_size=config.batch_size,
            accuracy_reward=config.accuracy_reward,
        )
    table = format_table(results, config.k, config.n)
    summary = {
        "config": asdict(config),
        "results": results,
        "timing": {"model_load_s": load_s, "total_s": time.perf_counter() - started},
    }
    (out_dir / "results.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "results.md").write_text(table + "\n")
    with open(out_dir / "samples.jsonl", "w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    print(table)
    print(f"wrote {out_dir / 'results.json'}, results.md and samples.jsonl")
    return results


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``vllm`` when the package is importable, else ``hf``; explicit choices are kept."""
    if backend != "auto":
        return backend
    return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"


def _build_generator(config: EvalConfig) -> GenerateFn:
    from .model import load_model_and_tokenizer, load_tokenizer, resolve_model_path

    if config.backend == "vllm":
        return VLLMGenerator(resolve_model_path(config.model), load_tokenizer(config.model), config)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_model_and_tokenizer(config.model, dtype=getattr(torch, config.dtype), device=device)
    return HFGenerator(model, tokenizer, config)


if __name__ == "__main__":
    main()

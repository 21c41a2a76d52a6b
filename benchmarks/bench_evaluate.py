"""``llm.evaluate`` throughput: one question per generate call (before) vs questions batched (after).

    nice -n 5 python benchmarks/bench_evaluate.py [--model tiny-random|smollm2-135m-instruct]
        [--questions 8] [--n 4] [--max-new-tokens 32] [--batch-size 8] [--repeats 2] [--json out.json]

Both settings run in ONE process on the SAME questions (the first ``--questions``
prompts of ``--dataset``), the same model, n, token budget and seed; they differ
only in ``batch_size`` (questions per ``generate`` call): 1 is the
one-question-at-a-time loop, ``--batch-size`` is the batched default. Modes
alternate over ``--repeats`` rounds and the minimum time of each is kept (a
shared machine only ever adds time). Reported: questions/s of each mode and
their ratio, the generate share, and the accuracy of each mode (a sanity check
that both evaluated the same task, not a benchmark number). The machine is
shared: read the ratio, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from llm.data import load_dataset_examples  # noqa: E402
from llm.eval_generators import HFGenerator  # noqa: E402
from llm.evaluate import EvalConfig, evaluate_dataset  # noqa: E402
from llm.model import SMOLLM2, build_tiny_model, load_model_and_tokenizer, load_tokenizer  # noqa: E402
from llm.rewards import RewardPipeline  # noqa: E402

TASK = "reasoning_gym:basic_arithmetic?max_terms=2&max_digits=1&size=200"


def load(model_name: str):
    if model_name == "tiny-random":
        tokenizer = load_tokenizer(SMOLLM2)
        return build_tiny_model(tokenizer, seed=0), tokenizer
    return load_model_and_tokenizer(model_name, dtype=torch.float32)


def run_mode(model, tokenizer, examples, batch_size: int, args) -> dict:
    config = EvalConfig(
        model=args.model, n=args.n, max_new_tokens=args.max_new_tokens, batch_size=batch_size, seed=args.seed
    )
    config.temperature, config.top_p = 1.0, 1.0
    generator = HFGenerator(model, tokenizer, config)
    with RewardPipeline([(args.accuracy_reward, 1.0)], num_workers=0) as rewards:
        began = time.perf_counter()
        metrics, _ = evaluate_dataset(
            "bench",
            examples,
            generator,
            n=args.n,
            ks=[1],
            reward_pipeline=rewards,
            batch_size=batch_size,
            accuracy_reward=args.accuracy_reward,
        )
        seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "generate_s": metrics["timing"]["generate_s"],
        "generate_calls": generator.calls,
        "accuracy": metrics[f"avg@{args.n}"],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--dataset", default=TASK)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accuracy-reward", default="llm.rewards.builtin:final_answer_reward")
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if args.batch_size < 2 or args.questions < args.batch_size:
        parser.error("--batch-size must be >= 2 and <= --questions (batched vs one question per call)")

    examples = load_dataset_examples(args.dataset, limit=args.questions, seed=args.seed)
    model, tokenizer = load(args.model)
    model.eval()
    runs: dict[str, list[dict]] = {"one_question_per_call": [], "batched": []}
    for _ in range(args.repeats):
        runs["one_question_per_call"].append(run_mode(model, tokenizer, examples, 1, args))
        runs["batched"].append(run_mode(model, tokenizer, examples, args.batch_size, args))
    best = {mode: min(results, key=lambda r: r["seconds"]) for mode, results in runs.items()}
    before, after = best["one_question_per_call"], best["batched"]
    result = {
        "model": args.model,
        "dataset": args.dataset,
        "questions": len(examples),
        "n": args.n,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "before_questions_per_s": len(examples) / before["seconds"],
        "after_questions_per_s": len(examples) / after["seconds"],
        "speedup": before["seconds"] / after["seconds"],
        "before": before,
        "after": after,
        "all_runs": runs,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()

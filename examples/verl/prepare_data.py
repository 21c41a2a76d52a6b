"""Writes riskrl datasets as the parquet files verl's RLHFDataset reads (one row per prompt).

    python examples/verl/prepare_data.py --train gsm8k --val math500 --out ~/data/riskrl
    python examples/verl/prepare_data.py --train /path/to/math_train.jsonl --val math500 --out ~/data/riskrl

A dataset is any ``llm.data.load_dataset_examples`` spec: ``gsm8k`` (train split; ``gsm8k_test`` for
the test split), ``math500``, ``aime24``, ``amc23`` (files under RISKRL_DATA_DIR), ``fixture:gsm8k``
(the tiny test copy), or a JSONL path with ``question``/``answer`` fields (e.g. the MATH training
set). Columns follow verl's own preprocessing scripts: ``data_source``, ``prompt`` (chat messages),
``ability``, ``reward_model`` {style, ground_truth} and ``extra_info`` {split, index, id}; the reward
(``llm.integrations.verl:math_verify_score``) reads ``ground_truth``.
"""

from __future__ import annotations

import argparse
import os

from datasets import Dataset

from llm.data import load_dataset_examples

# The instruction both papers append to every question (RS-GRPO appendix E; RiskPO follows the same
# boxed-answer convention, scored by math-verify).
INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."


def verl_rows(spec: str, split: str, limit: int | None = None) -> list[dict]:
    examples = load_dataset_examples(spec, limit=limit)
    return [
        {
            "data_source": example.source or spec,
            "prompt": [{"role": "user", "content": example.question + INSTRUCTION}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(example.answer)},
            "extra_info": {"split": split, "index": i, "id": str(example.id)},
        }
        for i, example in enumerate(examples)
    ]


def main(argv: list[str] | None = None) -> dict[str, str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default="gsm8k", help="training dataset spec (default: gsm8k train split)")
    parser.add_argument("--val", default="math500", help="validation dataset spec (default: math500)")
    parser.add_argument("--out", default=os.path.expanduser("~/data/riskrl"), help="output directory")
    parser.add_argument("--limit", type=int, default=None, help="keep the first N rows of each (smoke runs)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    written = {}
    for split, spec in (("train", args.train), ("val", args.val)):
        path = os.path.join(args.out, f"{split}.parquet")
        rows = verl_rows(spec, split, args.limit)
        Dataset.from_list(rows).to_parquet(path)
        written[split] = path
        print(f"{path}: {len(rows)} rows from {spec}")
    return written


if __name__ == "__main__":
    main()

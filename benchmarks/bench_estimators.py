"""Micro-benchmark of every registered advantage estimator.

    python benchmarks/bench_estimators.py                  # 512×16 rewards, table on stdout
    python benchmarks/bench_estimators.py --repeats 50 --out bench.json

Times ``est(rewards)`` (validation, advantages and metrics included) on binary
and graded rewards, median over ``--repeats`` calls after ``--warmup`` calls.
Bundle estimators use ``--bundle-size`` (must divide ``--prompts``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

# Run as a file, Python puts benchmarks/ (not the repo root) on sys.path; the
# repo root first makes ``theory`` resolve to this checkout in every install mode.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from theory import estimator_parameters, get_estimator, list_estimators


def make_rewards(kind: str, prompts: int, group: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if kind == "binary":
        return torch.randint(0, 2, (prompts, group), generator=gen).float()
    if kind == "graded":
        return torch.rand(prompts, group, generator=gen)
    raise ValueError(f"kind={kind!r} must be 'binary' or 'graded'")


def time_estimator(name: str, rewards: torch.Tensor, bundle_size: int, repeats: int, warmup: int) -> float:
    """Median seconds per call."""
    params = {"bundle_size": bundle_size} if "bundle_size" in estimator_parameters(name) else {}
    est = get_estimator(name, **params)
    for _ in range(warmup):
        est(rewards)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        est(rewards)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--bundle-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    # One thread by default: on 8k-element tensors intra-op threads add only
    # overhead, and on a loaded machine they spin (one run measured 8 ms instead of 0.1 ms).
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=str, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.prompts < 1 or args.group < 2:
        raise ValueError(f"prompts={args.prompts} must be >= 1 and group={args.group} >= 2")
    if args.prompts % args.bundle_size != 0:
        raise ValueError(f"bundle_size={args.bundle_size} must divide prompts={args.prompts}")
    if args.repeats < 1:
        raise ValueError(f"repeats={args.repeats} must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)

    results = []
    jobs = [(name, kind) for name in sorted(list_estimators()) for kind in ("binary", "graded")]
    for name, kind in tqdm(jobs, desc="estimators"):
        rewards = make_rewards(kind, args.prompts, args.group, args.seed)
        seconds = time_estimator(name, rewards, args.bundle_size, args.repeats, args.warmup)
        results.append(
            {
                "estimator": name,
                "rewards": kind,
                "us_per_call": seconds * 1e6,
                "m_rewards_per_s": rewards.numel() / seconds / 1e6,
            }
        )

    header = "| estimator | rewards | µs/call | M rewards/s |\n|---|---|---:|---:|"
    rows = [
        f"| {r['estimator']} | {r['rewards']} | {r['us_per_call']:.0f} | {r['m_rewards_per_s']:.2f} |" for r in results
    ]
    print(
        f"\n{args.prompts}×{args.group} rewards, bundle_size={args.bundle_size}, median of {args.repeats}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    print("\n".join([header, *rows]))
    if args.out:
        meta = {k: v for k, v in vars(args).items() if k != "out"}
        meta.update(torch=torch.__version__, threads=torch.get_num_threads(), python=platform.python_version())
        with open(args.out, "w") as f:
            json.dump({"config": meta, "results": results}, f, indent=2)
    return results


if __name__ == "__main__":
    main()

"""Peak RSS and CPU time of the policy update alone, for memory settings of the default run, in one run.

    python benchmarks/bench_update_memory.py                                  # default shapes: 20 rows, 56 + 64 tokens
    python benchmarks/bench_update_memory.py --variants base,accum4,ckpt,ckpt+accum4 --out runs/bench_update_memory.json

Each variant runs in its own subprocess (peak RSS is per process): SmolLM2-135M-Instruct
fp32, AdamW, ``llm.update.ppo_update`` with the default config (one epoch, one
mini-batch, entropy on) on a synthetic batch of the default run's shape (prompts of
``--prompt-len`` tokens, completions of ``--completion-len``), ``--updates`` updates
(the first allocates AdamW's state). Reported: the process's peak RSS after the
updates (``ru_maxrss``), the RSS before the first update (weights + libraries), the
parameters' bytes (weights + grads + AdamW = 4×), and the median CPU / wall seconds of
the updates after the first, as ratios to the first variant.

Variants (comma-separated; ``+`` combines): ``base`` (the whole batch in one pass, no recomputation), ``accumN``
(grad_accum=N micro-batches), ``tokensN`` (micro_batch_max_tokens=N: row chunks of at most N
padded tokens per forward/backward), ``ckpt`` (gradient_checkpointing), ``tiedgrad``
(tied_embedding_grad_in_place), ``foreach`` (AdamW's multi-tensor path instead of the trainer's choice),
``fused`` (fused AdamW).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GB = 2**30


def worker(args) -> dict:
    import torch
    from accelerate import Accelerator

    from llm.config import TrainConfig
    from llm.model import (
        SMOLLM2,
        accumulate_tied_grad_in_place,
        enable_activation_checkpointing,
        load_model_and_tokenizer,
    )
    from llm.update import ppo_update

    torch.set_num_threads(args.threads)
    parts = args.worker.split("+")
    overrides = {}
    for part in parts:
        if part.startswith("accum"):
            overrides["grad_accum"] = int(part[len("accum") :])
        if part.startswith("tokens"):
            overrides["micro_batch_max_tokens"] = int(part[len("tokens") :])
    cfg = TrainConfig(**{"micro_batch_max_tokens": 0, "tied_embedding_grad_in_place": "tiedgrad" in parts, **overrides})
    acc = Accelerator(gradient_accumulation_steps=cfg.grad_accum)
    model, tok = load_model_and_tokenizer(SMOLLM2)
    if "ckpt" in parts:
        enable_activation_checkpointing(model)
    if cfg.tied_embedding_grad_in_place:
        accumulate_tied_grad_in_place(model)
    model.train()
    optim_kwargs = {"foreach": True} if "foreach" in parts else {"fused": True} if "fused" in parts else {}
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **optim_kwargs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    model, optimizer = acc.prepare(model, optimizer)
    rows = cfg.prompts_per_step * cfg.group_size
    g = torch.Generator().manual_seed(0)
    batch = {
        "prompt_ids": torch.randint(0, len(tok), (rows, args.prompt_len), generator=g),
        "prompt_mask": torch.ones(rows, args.prompt_len, dtype=torch.long),
        "completion_ids": torch.randint(0, len(tok), (rows, args.completion_len), generator=g),
        "completion_mask": torch.ones(rows, args.completion_len, dtype=torch.long),
        "advantages": torch.randn(rows, generator=g),
        "sampled_logprobs": -torch.rand(rows, args.completion_len, generator=g),
    }
    params_gb = sum(p.numel() * p.element_size() for p in model.parameters()) / GB
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    walls, cpus = [], []
    for _ in range(args.updates):
        t0, c0 = time.perf_counter(), time.process_time()
        ppo_update(cfg, acc, model, None, optimizer, scheduler, batch)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {
        "variant": args.worker,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "rss_before_update_gb": rss_before,
        "param_gb": params_gb,
        "wall_s": walls,
        "cpu_s": cpus,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="base,fused,accum4,ckpt")
    parser.add_argument("--prompt-len", type=int, default=56)
    parser.add_argument("--completion-len", type=int, default=64)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench_update_memory.json")
    parser.add_argument("--reuse", action="store_true", help="reuse a variant's result left by an earlier run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        Path(args.result).write_text(json.dumps(worker(args)))
        return
    results = []
    for variant in args.variants.split(","):
        result_path = Path(f"/tmp/bench_update_memory-{variant}.json")
        cmd = [sys.executable, __file__, "--worker", variant, "--result", str(result_path)]
        cmd += [f"--prompt-len={args.prompt_len}", f"--completion-len={args.completion_len}"]
        cmd += [f"--updates={args.updates}", f"--threads={args.threads}"]
        if not (args.reuse and result_path.is_file()):
            subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        results.append(json.loads(result_path.read_text()))
        r = results[-1]
        print(f"  {variant} done: peak {r['peak_rss_gb']:.2f} GiB", flush=True)
    base = results[0]
    base_cpu, base_wall = statistics.median(base["cpu_s"][1:]), statistics.median(base["wall_s"][1:])
    print(
        f"{'variant':16s} {'peak GiB':>8s} {'pre GiB':>7s} {'4×params':>8s} {'cpu s':>6s} {'cpu ×':>6s} {'wall ×':>6s}"
    )
    for r in results:
        cpu, wall = statistics.median(r["cpu_s"][1:]), statistics.median(r["wall_s"][1:])
        r["cpu_ratio_vs_first"], r["wall_ratio_vs_first"] = cpu / base_cpu, wall / base_wall
        print(
            f"{r['variant']:16s} {r['peak_rss_gb']:8.2f} {r['rss_before_update_gb']:7.2f} {4 * r['param_gb']:8.2f} "
            f"{cpu:6.1f} {r['cpu_ratio_vs_first']:6.2f} {r['wall_ratio_vs_first']:6.2f}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "results": results}, indent=1))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

"""Where the policy update's peak RSS is: RSS sampled every 5 ms, marked at every forward/backward chunk
and optimizer step, for two updates of SmolLM2-135M on the default run's batch shape.

    python benchmarks/profile_update_memory.py --max-tokens 240 [--checkpointing]

Prints each mark with the RSS at that moment, then the largest RSS between consecutive marks (GiB),
and the process's peak (``ru_maxrss``). The second update is the one to read (AdamW's moments exist).
docs/llm_train.md ("Where the remaining ~3 GiB is") reads its output.
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GiB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-tokens", type=int, default=240, help="micro_batch_max_tokens")
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing")
    parser.add_argument("--tied-grad-in-place", action="store_true", help="tied_embedding_grad_in_place")
    parser.add_argument("--prompt-len", type=int, default=56)
    parser.add_argument("--completion-len", type=int, default=64)
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()

    import psutil
    import torch
    from accelerate import Accelerator

    import llm.update as update
    from llm.config import TrainConfig
    from llm.model import (
        SMOLLM2,
        accumulate_tied_grad_in_place,
        enable_activation_checkpointing,
        load_model_and_tokenizer,
    )

    process, samples, marks, done = psutil.Process(), [], [], threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter(), process.memory_info().rss / GiB))
            time.sleep(0.005)

    def mark(name: str) -> None:
        marks.append((time.perf_counter(), name, process.memory_info().rss / GiB))

    threading.Thread(target=sample, daemon=True).start()
    cfg = TrainConfig(micro_batch_max_tokens=args.max_tokens, tied_embedding_grad_in_place=args.tied_grad_in_place)
    acc = Accelerator()
    model, tok = load_model_and_tokenizer(SMOLLM2)
    if args.checkpointing:
        enable_activation_checkpointing(model)
    if args.tied_grad_in_place:
        accumulate_tied_grad_in_place(model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    model, optimizer = acc.prepare(model, optimizer)
    mark("prepared")

    chunk_backward, optimizer_step = update.chunk_backward, optimizer.step

    def marked_chunk(*a, **k):
        mark("chunk start")
        out = chunk_backward(*a, **k)
        mark("chunk end")
        return out

    def marked_step(*a, **k):
        mark("optimizer step start")
        out = optimizer_step(*a, **k)
        mark("optimizer step end")
        return out

    update.chunk_backward, optimizer.step = marked_chunk, marked_step
    g = torch.Generator().manual_seed(0)
    rows, lp, lc = args.rows, args.prompt_len, args.completion_len
    batch = {
        "prompt_ids": torch.randint(0, len(tok), (rows, lp), generator=g),
        "prompt_mask": torch.ones(rows, lp, dtype=torch.long),
        "completion_ids": torch.randint(0, len(tok), (rows, lc), generator=g),
        "completion_mask": torch.ones(rows, lc, dtype=torch.long),
        "advantages": torch.randn(rows, generator=g),
        "sampled_logprobs": -torch.rand(rows, lc, generator=g),
    }
    for u in range(2):
        mark(f"update {u}")
        update.ppo_update(cfg, acc, model, None, optimizer, scheduler, batch)
        mark(f"update {u} end")
    done.set()
    t0 = marks[0][0]
    for t, name, rss in marks:
        print(f"{t - t0:8.2f} s  {name:22s} {rss:.2f} GiB")
    for (a, name_a, _), (b, name_b, _) in zip(marks, marks[1:]):
        window = [rss for ts, rss in samples if a <= ts <= b]
        if window:
            print(f"  max in [{name_a} -> {name_b}]: {max(window):.2f} GiB")
    print(f"peak RSS (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()

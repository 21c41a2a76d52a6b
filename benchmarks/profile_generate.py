"""Where HF-backend decoding spends its time, and the matmul throughput its shapes actually get.

    python benchmarks/profile_generate.py --out docs/perf/profile_generate.json

Two measurements in one run, on the default run's batch (5 prompts × G = 4 rows, exactly
``--new-tokens`` tokens, as ``bench_generate.py``):

1. ``torch.profiler`` of one ``HFGenerateBackend.generate`` (after a warm-up call): the top
   aten ops by self CPU time, their share and call counts.
2. The decode-shape matmul probe: for every distinct ``nn.Linear`` weight of the model (and the
   tied LM head), ``F.linear`` of a (rows × in) activation, best of ``--repeats``, in GFLOP/s
   and as a fraction of the square 2048² matmul peak that the roofline account uses
   (``llm.roofline.measure_peaks``). From these, the matmul time of one decode forward
   (Σ over the layers' linears + the LM head) — what the weights' matmuls cost at the shapes
   decoding runs, against the bandwidth bound (weights bytes / copy bandwidth) and the
   square-matmul bound.

If the per-shape throughput is far below the square peak, decoding is bound by small-M GEMM
efficiency, not by memory bandwidth, and the roofline's bound (max of the two peaks) is not
reachable with these kernels.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_generate import FixedLength  # noqa: E402

from llm.data import format_prompt, load_dataset_examples  # noqa: E402
from llm.model import SMOLLM2, load_model_and_tokenizer  # noqa: E402
from llm.roofline import ModelShapes, _best_seconds, measure_peaks  # noqa: E402


def top_ops(prof, limit: int) -> list[dict]:
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [
        {
            "op": e.key,
            "self_cpu_s": e.self_cpu_time_total / 1e6,
            "share": e.self_cpu_time_total / total,
            "calls": e.count,
        }
        for e in events[:limit]
    ]


def linear_shapes(model) -> Counter:
    """(out, in) of every nn.Linear (the tied LM head included once), with its count."""
    shapes = Counter()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            shapes[tuple(module.weight.shape)] += 1
    return shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--dataset", default="reasoning_gym:basic_arithmetic?max_terms=2&max_digits=1")
    parser.add_argument("--out", default="runs/profile_generate.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from torch.profiler import ProfilerActivity, profile

    model, tok = load_model_and_tokenizer(SMOLLM2)
    model.eval()
    examples = load_dataset_examples(args.dataset, limit=args.prompts, seed=0)
    prompts = [format_prompt(tok, e.question) for e in examples]
    backend = FixedLength(tok, max_new_tokens=args.new_tokens, temperature=1.0, top_p=1.0, max_prompt_tokens=256)
    rows = args.prompts * args.group_size
    backend.generate(model, prompts, args.group_size, 0)  # warm-up
    began, cpu_began = time.perf_counter(), time.process_time()
    backend.generate(model, prompts, args.group_size, 1)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    print(f"generate: {rows} rows x {args.new_tokens} tokens in {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        backend.generate(model, prompts, args.group_size, 2)
    ops = top_ops(prof, args.top)
    print(f"{'op':52s} {'self CPU s':>10s} {'share':>6s} {'calls':>6s}")
    for op in ops:
        print(f"{op['op'][:52]:52s} {op['self_cpu_s']:10.3f} {op['share']:6.1%} {op['calls']:6d}")

    peaks = measure_peaks(torch.device("cpu"), torch.float32)
    per_shape, decode_matmul_s = [], 0.0
    with torch.no_grad():
        for (out_features, in_features), count in sorted(linear_shapes(model).items()):
            weight = torch.randn(out_features, in_features)
            x = torch.randn(rows, in_features)
            linear = lambda x=x, weight=weight: torch.nn.functional.linear(x, weight)  # noqa: E731
            seconds = _best_seconds(linear, torch.device("cpu"), args.repeats)
            gflops = 2 * rows * out_features * in_features / seconds / 1e9
            decode_matmul_s += count * seconds
            per_shape.append(
                {"out": out_features, "in": in_features, "count": count, "seconds": seconds, "gflops": gflops}
            )
            print(
                f"linear ({rows} x {in_features}) @ ({in_features} x {out_features}) x{count}: "
                f"{seconds * 1e6:.0f} us, {gflops:.0f} GFLOP/s = {gflops / peaks.matmul_gflops:.0%} of the "
                f"{peaks.matmul_gflops:.0f} GFLOP/s square peak"
            )
    shapes = ModelShapes.of(model)
    decode_flops = 2 * rows * (shapes.matmul_params + shapes.vocab_size * shapes.hidden_size)
    bandwidth_s = shapes.weight_bytes / (peaks.copy_gbps * 1e9)
    square_s = decode_flops / (peaks.matmul_gflops * 1e9)
    print(
        f"one decode forward's matmuls at these shapes: {decode_matmul_s * 1e3:.1f} ms "
        f"(bandwidth bound {bandwidth_s * 1e3:.1f} ms, square-peak bound {square_s * 1e3:.1f} ms); "
        f"measured per decoded token: {wall / args.new_tokens * 1e3:.1f} ms wall"
    )
    result = {
        "settings": vars(args),
        "generate_wall_s": wall,
        "generate_cpu_s": cpu,
        "top_ops": ops,
        "peaks": {"matmul_gflops": peaks.matmul_gflops, "copy_gbps": peaks.copy_gbps, "key": peaks.key},
        "linear_shapes": per_shape,
        "decode_forward_matmul_s": decode_matmul_s,
        "decode_forward_bandwidth_bound_s": bandwidth_s,
        "decode_forward_square_peak_bound_s": square_s,
        "measured_per_token_s": wall / args.new_tokens,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

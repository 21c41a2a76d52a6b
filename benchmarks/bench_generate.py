"""HF-backend generation variants against each other and against their roofline bound, in one run.

    python benchmarks/bench_generate.py                                   # 5 prompts × G=4, 64 tokens (default run)
    python benchmarks/bench_generate.py --variants scores,recorder,bf16 --reps 3 --out runs/bench_generate.json

Every variant decodes the same batch (SmolLM2-135M-Instruct, chat-formatted prompts,
G copies each) for exactly ``--new-tokens`` tokens (EOS ignored, so all do the same work),
with the same seed. Variants:

* ``scores``    — ``generate(output_scores=True)`` then log-softmax of every step's scores
                  (the HF backend before this change);
* ``recorder``  — ``HFGenerateBackend`` as it is (sampled-token log-prob gathered per step);
* ``bf16``      — the same on a bfloat16 copy of the weights (rollouts only; the policy stays
                  fp32 and truncated importance sampling corrects the mismatch, reported here as
                  the mean |log π_bf16 − log π_fp32| of the sampled tokens);
* ``static``    — ``cache_implementation="static"`` (preallocated KV cache);
* ``compile``   — static cache + ``torch.compile`` of the forward (compile time reported apart).

Reps alternate the variants' order; the first rep is warm-up. Reported per variant: median
wall and CPU seconds (``time.process_time``: steadier on a shared machine), tokens/s, its
ratio to ``recorder`` in this run, and the fraction of the roofline bound (llm/roofline.py:
weights + KV bytes per forward at the measured copy bandwidth, or its FLOPs at the measured
matmul peak, whichever is slower).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llm.data import format_prompt, load_dataset_examples  # noqa: E402
from llm.model import SMOLLM2, load_model_and_tokenizer  # noqa: E402
from llm.rollout import HFGenerateBackend, encode_prompts  # noqa: E402
from llm.roofline import ModelShapes, generation_work, measure_peaks  # noqa: E402


class FixedLength(HFGenerateBackend):
    """The HF backend decoding exactly max_new_tokens (no EOS), optionally with extra generate kwargs."""

    def __init__(self, *args, generate_kwargs=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.generate_kwargs = generate_kwargs or {}

    def generate(self, model, prompts, group_size, seed):
        original = model.generate

        def fixed(**kwargs):
            kwargs.update(min_new_tokens=self.max_new_tokens, **self.generate_kwargs)
            return original(**kwargs)

        model.generate = fixed
        try:
            return super().generate(model, prompts, group_size, seed)
        finally:
            del model.generate


@torch.inference_mode()
def scores_variant(model, tok, prompts, group_size, new_tokens, seed):
    """The previous HF backend: output_scores, one (N, V) tensor per step, log-softmax afterwards."""
    ids, mask = encode_prompts(tok, prompts, 256)
    ids, mask = ids.repeat_interleave(group_size, 0), mask.repeat_interleave(group_size, 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            pad_token_id=tok.pad_token_id,
            output_scores=True,
            return_dict_in_generate=True,
        )
    completion = out.sequences[:, ids.shape[1] :]
    logprobs = torch.stack(
        [
            torch.log_softmax(s.float(), -1).gather(-1, completion[:, t : t + 1]).squeeze(-1)
            for t, s in enumerate(out.scores)
        ],
        1,
    )
    return completion, logprobs, ids.shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3, help="timed reps per variant (plus one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default="scores,recorder,bf16,static")
    parser.add_argument("--dataset", default="reasoning_gym:basic_arithmetic?max_terms=2&max_digits=1")
    parser.add_argument("--out", default="runs/bench_generate.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")

    model, tok = load_model_and_tokenizer(SMOLLM2)
    model.eval()
    examples = load_dataset_examples(args.dataset, limit=args.prompts, seed=0)
    prompts = [format_prompt(tok, e.question) for e in examples]
    common = dict(max_new_tokens=args.new_tokens, temperature=1.0, top_p=1.0, max_prompt_tokens=256)
    models = {}
    compiled_s = None
    if "compile" in variants:
        began = time.perf_counter()
        models["compile"] = copy.deepcopy(model)
        models["compile"].forward = torch.compile(models["compile"].forward, dynamic=False)
        compiled_s = time.perf_counter() - began  # compilation itself happens in the warm-up rep

    static = {"cache_implementation": "static"}
    backends = {
        name: FixedLength(
            tok,
            generate_kwargs=static if name in ("static", "compile") else None,
            rollout_dtype="bfloat16" if name == "bf16" else None,  # the backend's own bf16 copy, synced once
            **common,
        )
        for name in variants
        if name != "scores"
    }

    def run(name, rep):
        seed = 1000 + rep
        if name == "scores":
            completion, logprobs, prompt_len = scores_variant(
                model, tok, prompts, args.group_size, args.new_tokens, seed
            )
            return completion, logprobs, prompt_len, 4
        backend = backends[name]
        r = backend.generate(models.get(name, model), prompts, args.group_size, seed)
        return r.completion_ids, r.sampled_logprobs, r.prompt_ids.shape[1], backend.calls[-1].element_size

    timings = {v: {"wall": [], "cpu": []} for v in variants}
    info = {}
    for rep in range(args.reps + 1):
        order = variants if rep % 2 == 0 else variants[::-1]
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            completion, logprobs, prompt_len, element_size = run(name, rep)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"  rep {rep} {name}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
            if rep == 0:
                info[name] = {"warmup_s": wall, "prompt_len": prompt_len, "element_size": element_size}
                if name == "bf16":  # mismatch of the bf16 rollout's log-probs against the fp32 policy
                    from llm.loss import completion_logprobs

                    ids, mask = encode_prompts(tok, prompts, 256)
                    ids, mask = ids.repeat_interleave(args.group_size, 0), mask.repeat_interleave(args.group_size, 0)
                    with torch.no_grad():
                        fp32, _ = completion_logprobs(model, ids, mask, completion, torch.ones_like(completion))
                    info[name]["mean_abs_logp_diff_vs_fp32"] = float((fp32 - logprobs).abs().mean())
                    info[name]["max_ratio_vs_fp32"] = float((fp32 - logprobs).exp().max())
                continue
            timings[name]["wall"].append(wall)
            timings[name]["cpu"].append(cpu)
        print(f"rep {rep}/{args.reps} done", flush=True)

    shapes = ModelShapes.of(model)
    rows = args.prompts * args.group_size
    result = {"settings": vars(args), "variants": {}, "compile_setup_s": compiled_s}
    base = statistics.median(timings["recorder"]["wall"]) if "recorder" in timings else None
    base_cpu = statistics.median(timings["recorder"]["cpu"]) if "recorder" in timings else None
    print(f"{'variant':9s} {'wall s':>7s} {'cpu s':>7s} {'tok/s':>7s} {'vs rec':>7s} {'cpu vs':>7s} {'of bound':>8s}")
    for name in variants:
        e = info[name]["element_size"]
        peaks = measure_peaks("cpu", {2: torch.bfloat16, 4: torch.float32}[e])
        scaled = shapes.with_dtype_bytes(e, 4)
        work = generation_work(scaled, rows, info[name]["prompt_len"], args.new_tokens, e)
        bound = sum(max(b / (peaks.copy_gbps * 1e9), f / (peaks.matmul_gflops * 1e9)) for b, f in work)
        bw_only = sum(b for b, _ in work) / (peaks.copy_gbps * 1e9)
        wall, cpu = statistics.median(timings[name]["wall"]), statistics.median(timings[name]["cpu"])
        row = {
            **info[name],
            "wall_s_median": wall,
            "cpu_s_median": cpu,
            "wall_all": timings[name]["wall"],
            "cpu_all": timings[name]["cpu"],
            "tokens_per_s": rows * args.new_tokens / wall,
            "ratio_wall_vs_recorder": wall / base if base else None,
            "ratio_cpu_vs_recorder": cpu / base_cpu if base_cpu else None,
            "roofline_bound_s": bound,
            "bandwidth_only_bound_s": bw_only,
            "frac_of_bound": bound / wall,
            "peaks": {"matmul_gflops": peaks.matmul_gflops, "copy_gbps": peaks.copy_gbps},
        }
        result["variants"][name] = row
        print(
            f"{name:9s} {wall:7.2f} {cpu:7.2f} {row['tokens_per_s']:7.1f} {row['ratio_wall_vs_recorder'] or 0:7.2f} "
            f"{row['ratio_cpu_vs_recorder'] or 0:7.2f} {row['frac_of_bound']:8.0%}"
        )
    if "bf16" in info:
        print(
            f"bf16 rollout log-prob mismatch vs fp32 policy: mean |Δ log p| "
            f"{info['bf16']['mean_abs_logp_diff_vs_fp32']:.4f}, max ratio {info['bf16']['max_ratio_vs_fp32']:.3f}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

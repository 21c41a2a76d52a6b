"""Step time of llm/train.py vs TRL's GRPOTrainer on CPU, same model, prompts and sampling, in one run.

    pip install trl            # the `bench` extra
    python benchmarks/bench_vs_trl.py --steps 4 --prompts 4 --group-size 4 --max-new-tokens 48

Both trainers: SmolLM2-135M-Instruct (dense fp32 cache), the same chat-formatted
prompts in the same order, G completions per prompt at temperature 1 / top-p 1
/ no top-k, GRPO advantages, token-level ratio, token-mean loss, one update per
step (no PPO epochs, so π_old = π_θ.detach() in both), no KL/reference model,
the same reward function (llm.answer_rewards.final_answer_reward, in-process),
AdamW at the same learning rate, float32 (TRL: bf16=False, use_cpu=True).

The first step of each trainer run is warm-up and excluded. The machine may be
shared, so the two trainers alternate for ``--rounds`` rounds and the median
and minimum step times over all rounds are compared. Completion lengths are
random, so the table also reports generated tokens per second. Our breakdown
comes from the per-step timers train.py logs (time/generate, time/reward,
time/train); TRL's total comes from a callback around each optimizer step.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llm.answer_rewards import final_answer_reward  # noqa: E402
from llm.data import format_prompt, load_dataset_examples  # noqa: E402
from llm.model import SMOLLM2, load_tokenizer, resolve_model_path  # noqa: E402


def reset_accelerate() -> None:
    from accelerate.state import AcceleratorState, GradientState, PartialState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    PartialState._reset_state()


def run_ours(args, examples_path: Path, out_dir: Path) -> dict:
    from llm.train import TrainConfig, train

    cfg = TrainConfig(
        model=SMOLLM2, dataset=str(examples_path), estimator="grpo", estimator_params={},
        prompts_per_step=args.prompts, group_size=args.group_size, max_new_tokens=args.max_new_tokens,
        temperature=1.0, top_p=1.0, rewards=[["llm.answer_rewards:final_answer_reward", 1.0]], reward_workers=0,
        lr=args.lr, importance_ratio="token", loss_agg="token-mean", kl_coef=0.0, clip_eps_low=0.2, clip_eps_high=0.2,
        steps=args.steps, seed=args.seed, output_dir=str(out_dir), report_to="none", save_model=False,
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
    }


def run_trl(args, prompts: list[str], answers: list[str], out_dir: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from llm.data import Example

    def reward(prompts, completions, answer, **kwargs):
        examples = [Example(id=str(i), question="", answer=a, source="bench") for i, a in enumerate(answer)]
        return final_answer_reward(completions, examples)

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.lengths, self._t0 = [], [], None

        def on_step_begin(self, *a, **k):
            self._t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter() - self._t0)

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
        output_dir=str(out_dir), bf16=False, use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
        max_steps=args.steps, learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0,
        per_device_train_batch_size=args.prompts * args.group_size, num_generations=args.group_size,
        gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=1,
        max_completion_length=args.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0,
        beta=0.0, epsilon=0.2, loss_type="dapo", scale_rewards="group", max_grad_norm=1.0,
        shuffle_dataset=False, seed=args.seed, disable_tqdm=True, dataloader_num_workers=0,
    )
    dataset = Dataset.from_dict({"prompt": prompts, "answer": answers})
    timer = StepTimer()
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[timer])
    trainer.train()
    reset_accelerate()
    return {"step_times": timer.times[1:], "lengths": timer.lengths[1:], "rewards": getattr(timer, "rewards", [])[1:]}


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
    for key in ("generate", "reward", "train"):
        if f"{key}_times" in pooled:
            out[f"{key}_s_median"] = statistics.median(pooled[f"{key}_times"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="steps per trainer; the first is warm-up")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating ours/TRL rounds (load on a shared machine drifts)")
    parser.add_argument("--dataset", default="reasoning_gym:basic_arithmetic?max_terms=2&max_digits=1")
    parser.add_argument("--out", default="runs/bench_vs_trl.json")
    args = parser.parse_args()
    if args.steps < 2:
        raise ValueError(f"--steps={args.steps} must be >= 2 (the first step is warm-up)")
    torch.set_num_threads(args.threads)

    tokenizer = load_tokenizer(SMOLLM2)
    examples = load_dataset_examples(args.dataset, limit=args.prompts * args.steps, seed=args.seed)
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

        ours_runs, trl_runs = [], []
        for round_ in range(args.rounds):
            ours_runs.append(run_ours(args, data_path, tmp / f"ours{round_}"))
            trl_runs.append(run_trl(args, prompts, answers, tmp / f"trl{round_}"))
    ours, trl = summarize(ours_runs, args), summarize(trl_runs, args)

    ratio = ours["step_s_median"] / trl["step_s_median"]
    result = {"settings": vars(args), "ours": ours, "trl": trl, "step_time_ratio_ours_over_trl": ratio,
              "step_time_ratio_min": ours["step_s_min"] / trl["step_s_min"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"\n{'':12s} {'median s':>9s} {'min s':>7s} {'tokens/s':>9s} {'len':>6s} {'reward':>7s}")
    for name, r in (("riskrl", ours), ("TRL GRPO", trl)):
        print(f"{name:12s} {r['step_s_median']:9.2f} {r['step_s_min']:7.2f} {r['tokens_per_s']:9.1f} "
              f"{r['completion_length']:6.1f} {r['reward_mean']:7.3f}")
    print(f"ratio ours/TRL step time: median {ratio:.2f}, min {result['step_time_ratio_min']:.2f}")
    print(f"our breakdown (median s/step): generate {ours['generate_s_median']:.2f}, reward {ours['reward_s_median']:.2f}, "
          f"train (fwd/bwd/opt) {ours['train_s_median']:.2f}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

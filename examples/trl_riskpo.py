"""RiskPO through TRL: SmolLM2-135M-Instruct on easy arithmetic, 2 steps on CPU.

    pip install -e '.[llm,trl]'
    python examples/trl_riskpo.py                      # ~8 CPU-minutes (docs/trl.md)
    python examples/trl_riskpo.py --estimator rs_grpo --estimator_params '{"beta": 2.0}'
    accelerate launch --num_processes 2 examples/trl_riskpo.py --prompts_per_step 10   # 2 GPUs (not run here)

With several processes the bundles span them; the 2-process CPU launch flags
(gloo) are in tests/llm/test_trl_distributed.py, which exercises exactly that.

Same task, rewards and estimator as llm/configs/default.yaml (our own trainer),
but generation, loss and optimisation are TRL's GRPOTrainer; only the
advantages come from theory.get_estimator (llm/integrations/trl.py).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

DEFAULT_DATASET = "reasoning_gym:basic_arithmetic?max_terms=2&max_digits=1"
DEFAULT_PARAMS = '{"alpha": 0.2, "beta": 0.8, "omega": 0.5, "bundle_size": 5}'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="alias, local directory or .gguf (llm.model)")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="llm.data dataset spec")
    parser.add_argument("--dataset_limit", type=int, default=200)
    parser.add_argument("--estimator", default="riskpo", help="theory.list_estimators() name")
    parser.add_argument("--estimator_params", default=DEFAULT_PARAMS, help="JSON object of estimator parameters")
    parser.add_argument("--prompts_per_step", type=int, default=5, help="GLOBAL prompts per optimiser step")
    parser.add_argument("--group_size", type=int, default=4, help="completions per prompt (TRL num_generations)")
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-6)
    parser.add_argument("--reward_workers", type=int, default=2, help="processes scoring with a per-item deadline")
    parser.add_argument("--output_dir", default="runs/trl_riskpo")
    parser.add_argument("--report_to", default="none", help="TRL/transformers report_to (none, tensorboard, wandb)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from accelerate import PartialState
    from trl import GRPOConfig

    from llm.data import load_dataset_examples
    from llm.integrations.trl import RiskGRPOTrainer, riskrl_reward, trl_dataset
    from llm.model import load_model_and_tokenizer

    try:
        estimator_params = json.loads(args.estimator_params)
    except json.JSONDecodeError as error:
        raise ValueError(f"--estimator_params must be a JSON object: {error}") from None
    world = PartialState().num_processes
    if args.prompts_per_step * args.group_size % world:
        raise ValueError(
            f"--prompts_per_step x --group_size = {args.prompts_per_step * args.group_size} completions "
            f"must split evenly over {world} processes"
        )
    model, tokenizer = load_model_and_tokenizer(args.model, dtype=torch.float32)
    examples = load_dataset_examples(args.dataset, limit=args.dataset_limit, seed=args.seed)
    config = GRPOConfig(
        output_dir=args.output_dir,
        # one generation batch per optimiser step: P = prompts_per_step prompts x G completions, all processes
        per_device_train_batch_size=args.prompts_per_step * args.group_size // world,
        num_generations=args.group_size,
        steps_per_generation=1,
        max_completion_length=args.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        # the policy loss of llm/configs/default.yaml: sequence-level ratio clipped at 0.2, token-mean
        importance_sampling_level="sequence",
        epsilon=0.2,
        loss_type="dapo",
        max_grad_norm=1.0,
        gradient_checkpointing=False,  # TRL's default True re-runs the forward; pointless for 135M on CPU
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        max_steps=args.steps,
        scale_rewards="none",  # the estimator owns the advantage's baseline and scale
        reward_weights=[1.0, 0.1],  # final answer + format, as in llm/configs/default.yaml
        beta=0.0,  # no reference model (kl_coef 0 in our default config)
        use_cpu=not torch.cuda.is_available(),
        logging_steps=1,
        save_strategy="no",
        report_to=args.report_to,
        seed=args.seed,
        disable_tqdm=False,
    )
    trainer = RiskGRPOTrainer(
        model,
        reward_funcs=[
            riskrl_reward("llm.rewards.builtin:final_answer_reward", num_workers=args.reward_workers),
            riskrl_reward("format"),
        ],
        args=config,
        train_dataset=trl_dataset(examples),
        processing_class=tokenizer,
        estimator=args.estimator,
        estimator_params=estimator_params,
    )
    start = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - start
    history = [entry for entry in trainer.state.log_history if "reward" in entry]
    summary = {
        "train_seconds": round(elapsed, 1),
        "steps": trainer.state.global_step,
        "reward": [entry["reward"] for entry in history],
        **{key: history[-1][key] for key in history[-1] if key.startswith("riskrl/q_")},
    }
    if trainer.accelerator.is_main_process:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()

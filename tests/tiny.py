"""The tiny trainer set-up the llm tests share (importable by name, also from subprocess drivers):
``tiny_args`` (the command line of a seconds-long run on the tiny random model), ``read_jsonl``,
``update_setup`` (a tiny model, optimizer and hand-made batch for ``llm.update.ppo_update``) and
``reset_accelerate_state``. tests/conftest.py exposes them as fixtures."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import torch


def tiny_args(output_dir, **overrides) -> list[str]:
    """llm/train.py flags of a tiny run: tiny random model, 4 prompts x 4 completions of <= 12 tokens,
    2 steps, deterministic in-process stub rewards (tests/llm/test_llm_train_stubs.py)."""
    values = {
        "model": "tiny-random",
        "dataset": "fixture:gsm8k",
        "rewards": "[[test_llm_train_stubs:crc_reward, 1.0]]",
        "reward_workers": "0",
        "estimator": "riskpo",
        "estimator_params": "{alpha: 0.2, beta: 0.8, omega: 0.5, bundle_size: 2}",
        "prompts_per_step": "4",
        "group_size": "4",
        "max_new_tokens": "12",
        "steps": "2",
        "lr": "1e-3",
        "report_to": "none",
        "save_model": "false",
        "output_dir": str(output_dir),
    }
    values.update({k: str(v) for k, v in overrides.items()})
    args = []
    for key, value in values.items():
        args += [f"--{key}", value]
    return args


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def reset_accelerate_state() -> None:
    """Each in-process run builds its own Accelerator; this resets the process-wide singletons."""
    from accelerate.state import AcceleratorState, GradientState, PartialState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    PartialState._reset_state()


@lru_cache(maxsize=1)
def tokenizer():
    """The SmolLM2 tokenizer, loaded once per test process (it is only read)."""
    from llm.model import SMOLLM2, load_tokenizer

    return load_tokenizer(SMOLLM2)


def tiny_model(seed: int = 0):
    """A fresh tiny random Llama (hidden 64, 2 layers) on the SmolLM2 tokenizer, in train mode."""
    from llm.model import build_tiny_model

    return build_tiny_model(tokenizer(), seed=seed).train()


#: advantages of the hand-made batch, one per row
_ADVANTAGES = (1.0, -0.5, 0.25, 0.0, 2.0, -1.5, 0.75, -1.0)


def update_setup(rows: int = 6, **overrides):
    """(cfg, accelerator, model, optimizer, scheduler, batch) for one ``ppo_update`` call: a tiny
    model, AdamW, a constant schedule, and ``rows`` random prompt/completion rows (two of them
    shorter) with fixed advantages. The accelerator accumulates ``cfg.grad_accum`` micro-batches
    and, as in the trainer, has prepared the model and optimizer."""
    from accelerate import Accelerator
    from transformers import get_scheduler

    from llm.config import TrainConfig

    cfg = TrainConfig(**{"lr": 1e-3, "max_grad_norm": 0.0, "temperature": 1.0, **overrides})
    model = tiny_model(seed=0)
    if cfg.tied_embedding_grad_in_place:  # as the trainer does (the default)
        from llm.model import accumulate_tied_grad_in_place

        accumulate_tied_grad_in_place(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    scheduler = get_scheduler("constant", optimizer)
    gen = torch.Generator().manual_seed(5)
    prompt_len, completion_len = 5, 7
    completion_mask = torch.ones(rows, completion_len, dtype=torch.long)
    completion_mask[1, 4:] = 0
    completion_mask[4, 2:] = 0
    batch = {
        "prompt_ids": torch.randint(10, 500, (rows, prompt_len), generator=gen),
        "prompt_mask": torch.ones(rows, prompt_len, dtype=torch.long),
        "completion_ids": torch.randint(10, 500, (rows, completion_len), generator=gen),
        "completion_mask": completion_mask,
        "advantages": torch.tensor(_ADVANTAGES[:rows]),
    }
    reset_accelerate_state()
    accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum)
    # prepared as the trainer prepares them: the wrapped optimizer steps only when gradients sync
    model, optimizer = accelerator.prepare(model, optimizer)
    return cfg, accelerator, model, optimizer, scheduler, batch

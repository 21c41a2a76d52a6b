"""Made-up comparison results shared by the llm.compare tests and the explorer's comparison view tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FIXTURE_RUN = Path(__file__).resolve().parent / "fixtures" / "compare_run" / "riskpo-run"


def synthetic_correct(rng, num_prompts: int, n: int) -> np.ndarray:
    rates = rng.uniform(0.0, 0.6, size=(num_prompts, 1))
    return (rng.random((num_prompts, n)) < rates).astype(int)


def synthetic_results(folder: Path, seed: int = 0) -> dict:
    """A results folder as llm.compare writes it, from made-up evaluations (no model)."""
    rng = np.random.default_rng(seed)
    runs = folder / "runs"
    for method in ("grpo", "riskpo", "rs_grpo"):
        (runs / f"{method}-s0").mkdir(parents=True)
        lines = [
            json.dumps(
                {
                    "step": s,
                    "reward_mean": float(rng.random()),
                    "entropy": float(1 + rng.random()),
                    "frac_zero_adv_groups": 0.5,
                }
            )
            for s in (1, 2, 3)
        ]
        (runs / f"{method}-s0" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    evaluations = {}
    for name, method, seed_value in [
        ("base", "base", None),
        ("grpo-s0", "grpo", 0),
        ("riskpo-s0", "riskpo", 0),
        ("rs_grpo-s0", "rs_grpo", 0),
    ]:
        evaluations[name] = {
            "method": method,
            "seed": seed_value,
            "correct": synthetic_correct(rng, 12, 8).tolist(),
            "entropy": (1 + rng.random(12)).tolist(),
            "completion_length": 10.0,
        }
    return evaluations


def write_eval_folder(folder: Path, counts: dict, n: int, rewards: dict | None = None, prompt_ids=None) -> Path:
    """A results folder with hand-made evaluations: ``counts`` maps a policy ``<method>-s<seed>`` (or
    "base", the untrained policy) to its number of correct samples per prompt (sample j of prompt i is
    correct iff j < counts[i], so pass@1 of the prompt is counts[i] / n and pass@n is counts[i] > 0);
    ``rewards`` maps a policy to its reward_mean at steps 1, 2, ... (written as runs/<policy>/metrics.jsonl,
    as llm.compare copies them)."""
    folder = Path(folder)
    (folder / "eval").mkdir(parents=True)
    for policy, per_prompt in counts.items():
        method, _, seed = ("base", "", None) if policy == "base" else policy.rpartition("-s")
        correct = (np.arange(n)[None, :] < np.asarray(per_prompt)[:, None]).astype(int)
        ids = prompt_ids or [f"p{i}" for i in range(len(per_prompt))]
        record = {"policy": policy, "method": method, "seed": None if seed is None else int(seed), "prompt_ids": ids}
        record.update(correct=correct.tolist(), entropy=[1.0] * len(per_prompt), completion_length=10.0)
        (folder / "eval" / f"{policy}.json").write_text(json.dumps(record))
    for policy, values in (rewards or {}).items():
        run = folder / "runs" / policy
        run.mkdir(parents=True)
        lines = [json.dumps({"step": s, "reward_mean": v}) for s, v in enumerate(values, start=1)]
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        (run / "config.yaml").write_text(f"seed: {policy.rpartition('-s')[2]}\n")
    return folder

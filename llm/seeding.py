"""Every seed of a run: the global RNGs at start-up, one derived seed per (step, rank, round) for
rollouts and mini-batch shuffles, and the RNG state a checkpoint saves and restores."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch global RNGs (the model's initialisation reads torch's)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def step_seed(seed: int, step: int, rank: int, round_: int = 0) -> int:
    """Independent, reproducible seed for one rank's rollouts (or shuffles) of one step."""
    return int(np.random.SeedSequence([seed, step, rank, round_]).generate_state(1)[0])


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
